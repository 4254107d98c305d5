"""URLs: / and /healthz."""

from django.http import HttpResponse, JsonResponse
from django.urls import path


def index(request):
    return JsonResponse({"app": "django"})


def healthz(request):
    return HttpResponse("ok\n", content_type="text/plain")


urlpatterns = [
    path("", index),
    path("healthz", healthz),
]
