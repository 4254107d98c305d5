"""A Falcon WSGI app, served by waitress."""

import falcon


class Health:
    def on_get(self, req, resp):
        resp.media = {"status": "ok", "app": "falcon"}


app = falcon.App()
app.add_route("/healthz", Health())
