"""A Sanic app in server.py, served by Sanic's own server."""

from sanic import Sanic
from sanic.response import json

app = Sanic("pyslip_demo")


@app.get("/healthz")
async def healthz(request):
    return json({"status": "ok", "app": "sanic"})
