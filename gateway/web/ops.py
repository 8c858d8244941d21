"""``GET /healthz`` and ``GET /metrics``: for monitoring, load balancers and Prometheus.

``/healthz`` needs no token and keeps the contract of the first release: 200 with
``"status": "ok"`` while the service runs, 503 with ``"status": "stopping"`` during a graceful
shutdown, plus the version, the start time and what the service's probe reports.

``/metrics`` is the Prometheus text format (``gateway.metrics``). It needs a ``read`` token,
unless ``[http] metrics_public = true`` (a Prometheus on a trusted network scraping without
credentials). The queue depth is counted in the receipt log at each scrape.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from gateway import __version__
from gateway.clock import iso_vn
from gateway.metrics import CONTENT_TYPE
from gateway.web.auth import require
from gateway.web.deps import Health, WebDeps, deps

__all__ = ["router"]

router = APIRouter(tags=["operations"])
_read = require("read")


@router.get("/healthz", summary="Is the gateway up (no token needed)")
async def healthz(web: Annotated[WebDeps, Depends(deps)]) -> JSONResponse:
    """200 ``{"status": "ok", ...}`` while serving; 503 ``{"status": "stopping", ...}`` while shutting down."""
    health = web.health
    if health is None:  # create_app always sets one; a hand-built WebDeps may not
        health = web.health = Health(started_at=web.clock.now())
    body: dict[str, Any] = {
        "status": "stopping" if health.stopping else "ok",
        "version": __version__,
        "started_at": iso_vn(health.started_at),
    }
    if health.probe is not None:
        body.update(await health.probe())
    return JSONResponse(body, status_code=503 if health.stopping else 200)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format 0.0.4"}},
)
async def metrics(request: Request, web: Annotated[WebDeps, Depends(deps)]) -> Response:
    """Messages by direction and verdict, findings by code, queue depth, latencies, TSA/OCSP errors."""
    if not web.settings.http.metrics_public:
        await _read(request)
    depth = await web.store.count_by_state()
    return Response(web.metrics.render(depth), media_type=CONTENT_TYPE)
