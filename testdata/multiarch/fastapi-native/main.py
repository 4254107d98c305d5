"""A FastAPI app whose dependencies are compiled (pydantic-core, uvloop, httptools,
watchfiles); `/healthz` names the CPU it runs on and proves the extensions import."""

import platform

import httptools
import pydantic_core
import uvloop
import watchfiles
from fastapi import FastAPI

app = FastAPI()


@app.get("/healthz")
def healthz():
    modules = [m.__name__ for m in (httptools, pydantic_core, uvloop, watchfiles)]
    return {"ok": True, "machine": platform.machine(), "modules": modules}
