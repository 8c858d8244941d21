"""The HTTP surfaces: one ASGI app with the read-only JSON API, pre-flight, the archivist pages,
``/metrics`` and ``/healthz``; served by ``gateway serve`` on ``[http] listen`` or alone.

Entry points::

    app = create_app(WebDeps(store=..., spool=..., settings=..., config_dir=..., tokens=TokenStore.load(path),
                             verifier=..., clock=...))
    server = WebServer(app, host, port); await server.start(); ...; await server.stop()
"""

from gateway.web.app import API_PREFIX, create_app
from gateway.web.auth import SCOPES, TokenInfo, TokenStore, authenticate, require
from gateway.web.deps import Health, WebDeps
from gateway.web.server import WebServer

__all__ = [
    "API_PREFIX",
    "SCOPES",
    "Health",
    "TokenInfo",
    "TokenStore",
    "WebDeps",
    "WebServer",
    "authenticate",
    "create_app",
    "require",
]
