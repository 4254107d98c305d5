"""A Litestar app bound to a name other than `app`: found by its constructor, served by uvicorn."""

from litestar import Litestar, get


@get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok", "app": "litestar"}


application = Litestar(route_handlers=[healthz])
