"""A plain program with a dependency but no web framework: it runs as `python app.py`."""

import json
import os

from markupsafe import escape
from wsgiref.simple_server import make_server


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/healthz":
        body, status = b"ok\n", "200 OK"
    else:
        body, status = json.dumps({"app": "generic", "path": str(escape(path))}).encode(), "200 OK"
    start_response(status, [("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    make_server("0.0.0.0", int(os.environ.get("PORT", "8000")), application).serve_forever()
