"""A Django site whose front page needs a database that only exists where it is deployed
(a volume at /data); /healthz needs none."""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-test-key-only-for-pyslip-testdata")
DEBUG = False
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "site_db.urls"
WSGI_APPLICATION = "site_db.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DATABASE_PATH", "/data/db.sqlite3"),
    }
}

USE_TZ = True
