"""Serve a development PKI over real HTTP: OCSP, CRLs, the certificate repository and the TSA.

certomancer's *Animator* (a WSGI application) answers the requests; werkzeug's threaded WSGI
server runs it in a background thread on a socket the caller has already bound. Binding first
matters: the URLs baked into the certificates must name the port *before* the PKI is generated,
so tests bind port 0, read the port, generate, then serve on that very socket (no race with
other processes for the port).

Invariants:

* every connection carries one request (HTTP/1.0), and handler threads are joined on
  ``close()``: nothing outlives the server, which keeps pytest's ``filterwarnings = error``
  free of ResourceWarnings and stray threads;
* answers are as of the injected clock, to the whole second: certomancer would otherwise
  put microseconds into OCSP ``producedAt``, which strict DER parsers (``cryptography``) refuse;
* a client may ask for another time with the header ``X-Certomancer-Fake-Time: <ISO 8601 with
  offset>`` (back-dated time stamps and OCSP answers for revocation tests). That is a test
  feature and is why this server must only ever listen on loopback or a development network.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from certomancer.integrations.animator import Animator, AnimatorArchStore
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from gateway.clock import Clock, SystemClock
from gateway.devpki.pki import DevPKI
from gateway.smtpserver.listen import bind_socket

__all__ = ["FAKE_TIME_HEADER", "PKIServer", "bind_listener", "serve_pki"]

FAKE_TIME_HEADER = "X-Certomancer-Fake-Time"
"""Request header that makes the OCSP responder, CRL and TSA answer as of another time."""

_FAKE_TIME_ENV = "HTTP_" + FAKE_TIME_HEADER.upper().replace("-", "_")

_log = logging.getLogger(__name__)


class _AtClockTime:
    """WSGI middleware: tell certomancer the time to answer as of (the clock's, whole seconds)."""

    def __init__(self, app: WSGIApplication, clock: Clock, *, allow_time_override: bool) -> None:
        self._app = app
        self._clock = clock
        self._allow = allow_time_override

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if not (self._allow and _FAKE_TIME_ENV in environ):
            environ[_FAKE_TIME_ENV] = self._clock.now().replace(microsecond=0).isoformat()
        return self._app(environ, start_response)


class _Handler(WSGIRequestHandler):
    # One request per connection: clients never keep a connection that close() would wait on.
    protocol_version = "HTTP/1.0"
    # A client that connects and says nothing must not block close() for ever.
    timeout = 10

    def log(self, type: str, message: str, *args: Any) -> None:
        # Route werkzeug's request lines to our logger instead of its own stderr handler.
        level = logging.ERROR if type == "error" else logging.INFO
        _log.log(level, "%s " + message, self.address_string(), *args)


class _Server(ThreadedWSGIServer):
    daemon_threads = False  # so server_close() joins the request threads

    def log(self, type: str, message: str, *args: Any) -> None:
        _log.log(logging.ERROR if type == "error" else logging.INFO, message, *args)


class PKIServer:
    """A development PKI answering HTTP in a background thread. Use as a context manager."""

    def __init__(self, server: _Server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self._closed = False
        host, port = server.server_address[:2]
        self.host = str(host)
        self.port = int(port)

    @property
    def url(self) -> str:
        """Where the server listens, e.g. ``http://127.0.0.1:8790``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        """Stop serving, wait for requests in flight, close the socket (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()  # returns once serve_forever() has left its loop ...
        self._thread.join()  # ... whose finally: clause closed the socket and joined handlers

    def __enter__(self) -> PKIServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def bind_listener(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """Bind and listen on ``host:port`` (port 0: the system picks a free one).

    Args:
        host: address to listen on; keep it loopback (see the module docstring).
        port: TCP port, 0 for any free port (read it back with ``getsockname()``).

    Returns:
        A listening socket; pass it to ``serve_pki``, which takes it over.

    Raises:
        ConfigError: when the address cannot be bound (in use, not local, no permission).
    """
    return bind_socket(host, port, hint="choose another --port, or stop the program that uses it")


def serve_pki(
    pki: DevPKI, listener: socket.socket, *, clock: Clock | None = None, allow_time_override: bool = True
) -> PKIServer:
    """Serve ``pki`` on an already listening socket, in a background thread.

    Args:
        pki: the development PKI to animate.
        listener: from ``bind_listener``; the server takes it over (this function closes the
            caller's handle, the server closes its own on ``PKIServer.close()``).
        clock: the time OCSP, CRL and TSA answers are made at (default: the system clock).
        allow_time_override: honour ``X-Certomancer-Fake-Time`` (see ``FAKE_TIME_HEADER``).

    Returns:
        The running server.
    """
    animator = Animator(
        AnimatorArchStore({pki.architecture.arch_label: pki.architecture}),
        with_web_ui=False,  # the web UI needs Jinja2 and offers private keys for download
        allow_time_override=True,  # the middleware below decides which time reaches it
    )
    app = _AtClockTime(animator, clock or SystemClock(), allow_time_override=allow_time_override)
    host, port = listener.getsockname()[:2]
    try:
        # werkzeug duplicates the descriptor (socket.fromfd), so our handle can go at once.
        server = _Server(str(host), int(port), app, _Handler, fd=listener.fileno())
    finally:
        listener.close()
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=f"devpki-http-{port}", daemon=True
    )
    thread.start()
    return PKIServer(server, thread)
