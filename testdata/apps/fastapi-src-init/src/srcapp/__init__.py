"""The app object lives in the package itself, as in uv's Docker example."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/healthz")
def healthz():
    return {"status": "ok", "app": "srcapp"}
