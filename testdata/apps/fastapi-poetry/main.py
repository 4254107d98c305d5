"""FastAPI app managed by poetry. GET /healthz answers {"status": "ok"}."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
def index():
    return {"app": "fastapi-poetry"}


@app.get("/healthz")
def healthz():
    return {"status": "ok"}
