"""The access log: one line per HTTP request (method, path, status, token name, duration).

A plain ASGI middleware (Starlette's ``BaseHTTPMiddleware`` would buffer streamed evidence
bundles). The line goes through ``logging`` like every other (``gateway.app.logs`` renders it
with the +07:00 time); the fields are bound with ``structlog.contextvars`` for the request, so
lines a handler logs carry them too. Query values whose name suggests a secret are replaced by
``***`` (tokens are never accepted there, but a confused client may still send one).
"""

from __future__ import annotations

import logging
import time
from typing import Final
from urllib.parse import parse_qsl, urlencode

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["AccessLog", "shown_query"]

log = logging.getLogger("gateway.web.access")

_SECRET_NAMES: Final = ("token", "access_token", "password", "secret", "key", "authorization")


def shown_query(raw: bytes) -> str:
    """The query string as logged: values of secret-looking parameters masked."""
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    return urlencode([(k, "***" if k.lower() in _SECRET_NAMES else v) for k, v in pairs])


class AccessLog:
    """Log every HTTP request once it has been answered (or has failed)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering
        state = scope.setdefault("state", {})

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        path = scope.get("path", "")
        query = shown_query(scope.get("query_string", b""))
        with structlog.contextvars.bound_contextvars(http_method=scope.get("method"), http_path=path):
            try:
                await self.app(scope, receive, sending)
            finally:
                log.info(
                    "%s %s%s %d token=%s %.1f ms",
                    scope.get("method"),
                    path,
                    f"?{query}" if query else "",
                    status,
                    state.get("token", "-"),
                    (time.perf_counter() - started) * 1000,
                )
