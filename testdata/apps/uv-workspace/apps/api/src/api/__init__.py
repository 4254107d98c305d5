"""The API member: a FastAPI app that uses the workspace's shared library."""

from fastapi import FastAPI
from shared import greeting

app = FastAPI()


@app.get("/healthz")
def healthz():
    return {"status": "ok", "app": "api", "shared": greeting()}
