"""URLs: / counts the users (needs the database), /healthz does not."""

from django.contrib.auth.models import User
from django.http import HttpResponse, JsonResponse
from django.urls import path


def index(request):
    return JsonResponse({"users": User.objects.count()})


def healthz(request):
    return HttpResponse("ok\n", content_type="text/plain")


urlpatterns = [
    path("", index),
    path("healthz", healthz),
]
