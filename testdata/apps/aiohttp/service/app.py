"""The aiohttp application object, served by aiohttp's own server (web.run_app)."""

from aiohttp import web


async def healthz(request):
    return web.json_response({"status": "ok", "app": "aiohttp"})


app = web.Application()
app.add_routes([web.get("/healthz", healthz)])
