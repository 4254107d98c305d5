"""Serves on $PORT, but only on 127.0.0.1: nothing outside the container can reach it."""

import os
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok\n")


HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
