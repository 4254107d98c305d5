"""A Starlette app: `app = Starlette(...)` in main.py, served by uvicorn."""

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def healthz(request):
    return JSONResponse({"status": "ok", "app": "starlette"})


app = Starlette(routes=[Route("/healthz", healthz)])
