"""A Quart app in api.py; Quart depends on hypercorn, which serves it."""

from quart import Quart

app = Quart(__name__)


@app.get("/healthz")
async def healthz():
    return {"status": "ok", "app": "quart"}
