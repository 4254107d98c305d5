"""A Flask application factory in a flat-layout package: served as `myapp:create_app()`."""

from flask import Flask


def create_app(config=None):
    app = Flask(__name__)
    app.config.update(config or {})

    @app.get("/healthz")
    def healthz():
        return {"status": "ok", "app": "flask-factory"}

    return app
