"""``GET /healthz``: is the gateway up, and what is waiting (for monitoring and load balancers).

One small aiohttp application on ``[http] listen``; the archivist API will join it later.
200 with ``"status": "ok"`` while the service runs; 503 with ``"status": "stopping"`` during a
graceful shutdown (load balancers stop sending). No endpoint here changes anything.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from gateway import __version__
from gateway.clock import iso_vn

__all__ = ["HealthServer"]

Probe = Callable[[], Awaitable[Mapping[str, Any]]]


class HealthServer:
    """Serves ``/healthz`` with whatever the probe reports."""

    def __init__(self, host: str, port: int, *, started_at: datetime, probe: Probe) -> None:
        self._host, self._port = host, port
        self._started_at = started_at
        self._probe = probe
        self.stopping = False
        self._runner: web.AppRunner | None = None
        self._address: tuple[str, int] | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``.

        Raises:
            RuntimeError: not started.
        """
        if self._address is None:
            raise RuntimeError("the health endpoint is not listening")
        return self._address

    async def _healthz(self, _request: web.Request) -> web.Response:
        body: dict[str, Any] = {
            "status": "stopping" if self.stopping else "ok",
            "version": __version__,
            "started_at": iso_vn(self._started_at),
        }
        body.update(await self._probe())
        return web.json_response(body, status=503 if self.stopping else 200)

    async def start(self) -> None:
        """Listen (``port`` 0 picks a free one; ``address`` tells which)."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._address = (str(host), int(port))

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
