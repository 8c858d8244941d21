"""Serving the app with uvicorn on the running event loop (HOUSE.md rule 4: one loop).

uvicorn's ``Server.serve`` would install its own SIGINT/SIGTERM handlers (and re-raise the
signal after its shutdown); the gateway's service owns its signals, so ``_LoopServer`` captures
none. We bind the socket ourselves: uvicorn answers a bind failure with ``sys.exit``, and port
0 (tests) must be read back before ``ready`` is called. uvicorn is told to leave logging alone
(``gateway.app.logs`` has configured it) and not to log access lines (``gateway.web.access``
does, with the token's name).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from gateway.smtpserver.listen import bind_socket

__all__ = ["WebServer", "bind"]

_START_SECONDS = 30.0


class _LoopServer(uvicorn.Server):
    """A uvicorn server that leaves the process's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(host: str, port: int, *, key: str = "[http] listen") -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free one).

    Raises:
        ConfigError: the address cannot be bound (in use, not local, no permission).
    """
    listener = bind_socket(host, port, key=key)
    listener.setblocking(False)
    return listener


class WebServer:
    """The ASGI app on one listening address.

    Args:
        app: the app (``create_app``).
        host, port: where to listen (port 0: any free one; ``address`` tells which).
        grace: seconds requests in flight get to finish at ``stop``.
    """

    def __init__(self, app: ASGIApp, host: str, port: int, *, grace: float = 10.0) -> None:
        self._app = app
        self._host, self._port = host, port
        self._grace = grace
        self._server: _LoopServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._address: tuple[str, int] | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``.

        Raises:
            RuntimeError: not started.
        """
        if self._address is None:
            raise RuntimeError("the HTTP server is not listening")
        return self._address

    async def start(self) -> None:
        """Bind and start serving; returns once connections are accepted.

        Raises:
            ConfigError: the address cannot be bound.
            RuntimeError: uvicorn did not start (its log says why).
        """
        listener = bind(self._host, self._port)
        host, port = listener.getsockname()[:2]
        config = uvicorn.Config(
            self._app,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=max(int(self._grace), 1),
            proxy_headers=False,
        )
        self._server = _LoopServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[listener]), name="http")
        deadline = asyncio.get_running_loop().time() + _START_SECONDS
        while not self._server.started:
            if self._task.done() or asyncio.get_running_loop().time() > deadline:
                listener.close()
                if self._task.done() and self._task.exception() is not None:
                    raise RuntimeError("the HTTP server did not start") from self._task.exception()
                raise RuntimeError("the HTTP server did not start")
            await asyncio.sleep(0.01)
        self._address = (str(host), int(port))

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish (up to ``grace``), then return."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await self._task
        finally:
            self._server = self._task = None

    async def wait(self) -> None:
        """Return when the server stops by itself (it should not; a crash raises here)."""
        if self._task is not None:
            await asyncio.shield(self._task)
