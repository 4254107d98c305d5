"""FastAPI app in a src/ layout. GET /healthz answers {"status": "ok"}."""

from fastapi import FastAPI

api = FastAPI(title="uvapp")


@api.get("/")
def index():
    return {"app": "fastapi-uv"}


@api.get("/healthz")
def healthz():
    return {"status": "ok"}
