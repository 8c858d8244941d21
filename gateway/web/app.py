"""``create_app``: the one ASGI app of the HTTP surfaces.

Routes:

* ``/healthz`` (no token) and ``/metrics`` (``read``, or public by ``[http] metrics_public``);
* ``/api/v1/...``: the archivist's read-only JSON API (``read``; rule replay: ``admin``);
* ``POST /preflight``: a sender's package judged as we would, nothing kept (``preflight``);
* the archivist's pages (``gateway.web.pages``);
* ``/openapi.json``: the schema of all of the above. ``/docs`` and ``/redoc`` are off: they load
  their scripts from a CDN, and a gateway on a government network has no route to one.

Every request is logged (``gateway.web.access``). No route writes to the receipt log: the
standalone server (``gateway web``) even opens it without migrating, and the API has no method
but ``GET`` except pre-flight and replay, which judge in memory.
"""

from __future__ import annotations

from fastapi import FastAPI

from gateway import __version__
from gateway.web.access import AccessLog
from gateway.web.api import router as api_router
from gateway.web.deps import Health, WebDeps
from gateway.web.errors import install_error_handlers
from gateway.web.ops import router as ops_router
from gateway.web.pages import router as pages_router
from gateway.web.preflight import router as preflight_router

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/api/v1"

_DESCRIPTION = """\
Read-only access to the gateway's receipt log: search, a document's record, its original mail
and evidence bundle, the partner report and rule replay; pre-flight verification of a package.

Authenticate with `Authorization: Bearer <token>` (tokens: `gateway token add NAME --scope read`).
Times are ISO 8601 in Vietnam time (+07:00).
"""


def create_app(deps: WebDeps) -> FastAPI:
    """Build the app over ``deps`` (kept on ``app.state.deps``).

    Args:
        deps: the store, spool, settings, tokens, verifier, clock and metrics to serve.

    Returns:
        The ASGI app; serve it with uvicorn (``gateway.web.server``) or test it with httpx.
    """
    if deps.health is None:
        deps.health = Health(started_at=deps.clock.now())
    app = FastAPI(
        title="edXML gateway",
        version=__version__,
        description=_DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.deps = deps
    install_error_handlers(app)
    app.include_router(ops_router)
    app.include_router(api_router, prefix=API_PREFIX)
    app.include_router(preflight_router)
    app.include_router(pages_router)
    app.add_middleware(AccessLog)
    return app
