"""A Bottle app, which pyslip does not know as a framework: it runs as `python app.py`."""

import os

from bottle import Bottle, run

app = Bottle()


@app.get("/")
def index():
    return {"app": "generic"}


@app.get("/healthz")
def healthz():
    return "ok\n"


if __name__ == "__main__":
    run(app, host="0.0.0.0", port=int(os.environ.get("PORT", "8000")), quiet=True)
