"""Tornado app. GET /healthz answers "ok"; the port comes from $PORT."""

import asyncio
import os
import signal

import tornado.web


class Health(tornado.web.RequestHandler):
    def get(self):
        self.write("ok\n")


class Index(tornado.web.RequestHandler):
    def get(self):
        self.write({"app": "tornado"})


async def main():
    app = tornado.web.Application([(r"/", Index), (r"/healthz", Health)])
    app.listen(int(os.environ.get("PORT", "8888")), address="0.0.0.0")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
