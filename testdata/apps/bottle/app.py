"""A Bottle app: `app = Bottle()` is found in the source and served by gunicorn."""

from bottle import Bottle

app = Bottle()


@app.get("/")
def index():
    return {"app": "bottle"}


@app.get("/healthz")
def healthz():
    return "ok\n"
