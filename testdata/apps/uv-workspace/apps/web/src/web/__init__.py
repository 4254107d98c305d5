"""The web member: a Flask app that uses the workspace's shared library."""

from flask import Flask
from shared import greeting

app = Flask(__name__)


@app.get("/healthz")
def healthz():
    return {"status": "ok", "app": "web", "shared": greeting()}
