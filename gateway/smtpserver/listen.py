"""Binding a listener on the running event loop, and stopping it gracefully."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError
from gateway.smtpserver.handler import EdgeHandler
from gateway.smtpserver.protocol import Connections, EdgeSMTP

__all__ = ["ListenerEdge", "SmtpListener", "bind_socket", "parse_listen", "server_tls_context"]

_SETTLE_SECONDS = 30.0
"""How long ``stop`` waits for intake calls still writing after their connection was closed."""
_CLOSE_SECONDS = 5.0


def parse_listen(value: str, *, key: str = "listen") -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` for IPv6) into its parts.

    Args:
        value: the configured address, e.g. ``127.0.0.1:2525`` or ``[::1]:2525``; port 0 binds
            an ephemeral port (tests).
        key: the settings key, for the error message.

    Returns:
        ``(host, port)``.

    Raises:
        ConfigError: the value is not ``host:port`` with a port in 0..65535.
    """
    host, sep, port_text = value.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    bad_host = not host or "[" in host or "]" in host or (":" in host and not bracketed)
    if not sep or bad_host or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(f"{key} = {value!r} is not host:port", hint='e.g. "127.0.0.1:2525" or "[::1]:2525"')
    return host, int(port_text)


def bind_socket(host: str, port: int, *, key: str | None = None, hint: str | None = None) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: the system picks a free one).

    For servers that take a ready socket (the HTTP app under uvicorn, the development PKI):
    binding first makes a wrong address a configuration error at start, not a crash later.

    Args:
        host: the address to listen on.
        port: the TCP port, 0 for any free one (read it back with ``getsockname()``).
        key: the settings key or option that named the address, for the error message.
        hint: how to fix a failure to bind (default: choose another address).

    Returns:
        A listening, blocking socket (``socket.socket.setblocking`` is the caller's choice).

    Raises:
        ConfigError: the address cannot be bound (in use, not local, no permission).
    """
    where = f"{key}: " if key else ""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        listener = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"{where}cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(128)
    except OSError as exc:
        listener.close()
        raise ConfigError(
            f"{where}cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint=hint or "choose another address, or stop the program that uses it",
        ) from exc
    return listener


def server_tls_context(cert: Path | None, key: Path | None, *, section: str) -> ssl.SSLContext | None:
    """A server-side TLS context for STARTTLS, or None when neither file is configured.

    Args:
        cert: PEM certificate chain.
        key: PEM private key.
        section: ``smtp`` or ``submission``, for the error message.

    Returns:
        A TLS 1.2+ server context, or None.

    Raises:
        ConfigError: only one of the two is set, or the files cannot be loaded.
    """
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigError(f"[{section}] needs both tls_cert and tls_key for STARTTLS", hint="set both or neither")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(f"[{section}] cannot load tls_cert/tls_key: {error}", path=cert) from error
    return context


class SmtpListener:
    """An aiosmtpd server bound with ``loop.create_server`` on the running loop (HOUSE.md rule 4).

    aiosmtpd's ``Controller`` would run a second event loop in a thread; this serves the same
    protocol on the gateway's one loop, next to IMAP, HTTP and the workers.

    Args:
        handler: the hooks (inbound or submission).
        listen: ``host:port``.
        listen_key: the setting ``listen`` came from (e.g. ``[smtp] listen``), for the error.
        hostname: the name in the greeting and the EHLO reply.
        max_message_bytes: the DATA limit (announced as SIZE; over it: 552).
        tls_context: offer STARTTLS with it, or None.
        log: where to log.
        smtp_options: more keyword arguments for aiosmtpd's ``SMTP`` (e.g. ``auth_require_tls``).

    Raises:
        ConfigError: a bad ``listen`` value.
    """

    def __init__(
        self,
        handler: EdgeHandler,
        *,
        listen: str,
        hostname: str,
        max_message_bytes: int,
        tls_context: ssl.SSLContext | None,
        log: logging.Logger,
        listen_key: str = "listen",
        **smtp_options: Any,
    ) -> None:
        self.handler = handler
        self.host, self.port = parse_listen(listen, key=listen_key)
        self.hostname = hostname
        self.max_message_bytes = max_message_bytes
        self.tls_context = tls_context
        self.log = log
        self.smtp_options = smtp_options
        self.connections = Connections()
        self._server: asyncio.Server | None = None

    def _protocol(self) -> EdgeSMTP:
        return EdgeSMTP(
            self.handler,
            connections=self.connections,
            hostname=self.hostname,
            ident="edXML gateway ESMTP",
            data_size_limit=self.max_message_bytes,
            tls_context=self.tls_context,
            loop=asyncio.get_running_loop(),
            **self.smtp_options,
        )

    async def start(self) -> None:
        """Bind and start serving on the running loop.

        Raises:
            OSError: the address cannot be bound (in use, no permission).
        """
        loop = asyncio.get_running_loop()
        self.connections = Connections()
        self._server = await loop.create_server(self._protocol, self.host, self.port)
        self.log.info("listening on %s:%d", *self.address)

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)`` (the real port when configured with port 0).

        Raises:
            RuntimeError: not started.
        """
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the listener is not started")
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def stop(self, grace: float) -> None:
        """Stop accepting, let DATA in flight finish (at most ``grace`` seconds), then close.

        Idle sessions are told ``421``; a DATA still running after the grace period is cut off
        (the client got no 250, so it will send again: nothing is lost). Intake calls already
        under way are not cut: ``stop`` waits for them (bounded) before it returns, so the store
        may be closed afterwards.

        Args:
            grace: seconds to wait for DATA in flight.
        """
        server, self._server = self._server, None
        if server is None:
            return
        book = self.connections
        book.draining = True
        server.close()
        try:
            await asyncio.wait_for(book.idle.wait(), timeout=grace)
        except TimeoutError:
            self.log.warning("%d DATA still in flight after %.1f s; closing them", book.busy, grace)
        tasks = [c._handler_coroutine for c in book.open if c._handler_coroutine is not None]
        for connection in list(book.open):
            connection.shut()
        if tasks:
            await asyncio.wait(tasks, timeout=_CLOSE_SECONDS)
        await self.handler.settle(_SETTLE_SECONDS)
        await server.wait_closed()
        self.log.info("stopped")


class ListenerEdge:
    """Start, stop and address of an edge that serves one ``SmtpListener`` (``self.listener``)."""

    listener: SmtpListener

    async def start(self) -> None:
        """Bind ``listen`` and serve.

        Raises:
            OSError: the address cannot be bound.
        """
        await self.listener.start()

    async def stop(self, grace: float = 30.0) -> None:
        """Stop accepting, let DATA in flight finish within ``grace`` seconds, close the rest.

        Args:
            grace: seconds to wait for DATA in flight.
        """
        await self.listener.stop(grace)

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``.

        Raises:
            RuntimeError: not started.
        """
        return self.listener.address
