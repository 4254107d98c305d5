"""A Flask app pinning numpy 2.2.6, which has wheels up to CPython 3.13 only: with no Python
pin, the build chooses 3.13 and says why."""

import platform

import numpy
from flask import Flask

app = Flask(__name__)


@app.get("/healthz")
def healthz():
    return {
        "status": "ok",
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "sum": int(numpy.arange(4).sum()),
    }
