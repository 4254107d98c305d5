"""Flask app locked with pipenv and served by waitress. GET /healthz answers "ok"."""

from flask import Flask

application = Flask(__name__)


@application.get("/")
def index():
    return {"app": "flask-pipenv"}


@application.get("/healthz")
def healthz():
    return "ok\n"
