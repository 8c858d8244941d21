"""Test plumbing for the SMTP edges: run an async body, build a mail, serve a listener, send."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Protocol, TypeVar

import aiosmtplib

__all__ = ["CLIENT_NAME", "RCPT", "Listener", "mail", "run", "send", "serving"]

CLIENT_NAME = "client.test"
"""EHLO name of the test clients (aiosmtplib would otherwise ask DNS for the FQDN)."""
RCPT = "vanthu@tayninh.gov.vn"
T = TypeVar("T")
L = TypeVar("L", bound="Listener")


class Listener(Protocol):
    async def start(self) -> None: ...
    async def stop(self, grace: float = ...) -> None: ...
    @property
    def address(self) -> tuple[str, int]: ...


def run(main: Callable[[], Awaitable[T]], *, timeout: float = 60.0) -> T:
    """Run an async test body on a fresh loop, with a deadline."""

    async def bounded() -> T:
        return await asyncio.wait_for(main(), timeout)

    return asyncio.run(bounded())


def mail(subject: str = "test", *, body: str = "Xin chao.\r\n", message_id: str | None = None) -> bytes:
    """A small RFC 5322 mail with CRLF line ends."""
    mid = message_id or f"<{hashlib.sha256(subject.encode()).hexdigest()[:16]}@axis.test>"
    head = f"From: a@axis.test\r\nTo: {RCPT}\r\nSubject: {subject}\r\nMessage-ID: {mid}\r\n\r\n"
    return (head + body).encode("utf-8")


@asynccontextmanager
async def serving(listener: L, *, grace: float = 5.0) -> AsyncIterator[L]:
    """Start a listener for the body of the ``async with``; always stop it."""
    await listener.start()
    try:
        yield listener
    finally:
        await listener.stop(grace)


async def send(
    port: int,
    message: bytes,
    *,
    rcpt: Sequence[str] = (RCPT,),
    sender: str = "a@axis.test",
    tls: ssl.SSLContext | None = None,
    login: tuple[str, str] | None = None,
) -> str:
    """Send one mail over a fresh connection (STARTTLS only when ``tls`` is given).

    Returns:
        The server's reply to DATA, e.g. ``2.0.0 Ok: queued as 1``.

    Raises:
        aiosmtplib.SMTPResponseException: a refusal (``.code``, ``.message``).
    """
    async with aiosmtplib.SMTP(
        hostname="127.0.0.1",
        port=port,
        start_tls=tls is not None,
        tls_context=tls,
        local_hostname=CLIENT_NAME,
        timeout=60,
    ) as client:
        if login is not None:
            await client.login(*login)
        _, reply = await client.sendmail(sender, list(rcpt), message)
        return reply
