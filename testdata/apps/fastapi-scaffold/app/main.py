"""FastAPI scaffold: GET / and GET /healthz."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
def read_root():
    return {"Hello": "World"}


@app.get("/healthz")
def healthz():
    return {"status": "ok"}
