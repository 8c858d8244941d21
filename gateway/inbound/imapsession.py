"""One IMAP connection for the poller: aioimaplib behind deadlines, and nothing else.

aioimaplib leaves a waiting command pending forever when the server goes away (its issue #110:
``idle_start()`` never returns after a drop), and several of its calls carry no timeout at all
(``uid('move', ...)``, ``idle()``). So every await here goes through ``_call``, which races the
command against **two** things: a deadline (``timeout`` seconds) and the connection-lost callback.
A peer that closes is noticed at once; a peer that goes silent is noticed at the deadline. Either
way the session is finished: it raises ``ImapUnavailable`` and the caller closes it and
reconnects. A session is never reused after an error, because a cancelled aioimaplib command
leaves the protocol's bookkeeping (the pending command, the tag) in an unknown state.

Mailbox names travel in modified UTF-7 (RFC 3501 §5.1.3), quoted: "Đã xử lý" is sent as
``"&ARAA4w- x&Hu0- l&AP0-"``. STARTTLS, which aioimaplib does not implement, is done here with
``loop.start_tls`` on the protocol's transport; a server that does not offer it is refused rather
than spoken to in clear.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import socket
import ssl
from collections.abc import Awaitable, Sequence
from typing import Any, Literal, TypeVar

from aioimaplib import aioimaplib as _aioimaplib  # type: ignore[import-untyped]

from gateway.errors import TransientError

__all__ = ["IdleEnd", "ImapSession", "ImapUnavailable", "decode_mailbox", "encode_mailbox", "quote"]

_log = logging.getLogger(__name__)

T = TypeVar("T")

IdleEnd = Literal["exists", "renew", "woken"]
"""Why an IDLE ended: the server announced mail, the renew time came, or an event was set."""

# What aioimaplib and the socket layer raise for a broken or refusing peer (ssl.SSLError and
# TimeoutError are OSErrors; ValueError is aioimaplib refusing CR/LF in an argument).
_WIRE_ERRORS = (OSError, EOFError, ValueError, _aioimaplib.AioImapException)

_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_FETCH_HEAD = re.compile(rb"^\d+ FETCH \((?P<items>.*)\{(?P<size>\d+)\}$")
_FETCH_UID = re.compile(rb"UID (\d+)")
_CLOSE_GRACE = 2.0
"""Seconds we give LOGOUT and the transport's close before we stop waiting for them."""


class ImapUnavailable(TransientError):
    """The IMAP server could not be reached, refused us, or stopped answering. Reconnect later."""


def encode_mailbox(name: str) -> str:
    """Encode a mailbox name in IMAP's modified UTF-7 (RFC 3501 §5.1.3).

    Printable ASCII stands for itself (``&`` becomes ``&-``); every other run of characters is
    ``&`` + base64 of its UTF-16BE bytes, ``,`` for ``/``, no padding, + ``-``.
    """
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            data = "".join(run).encode("utf-16-be")
            out.append("&" + base64.b64encode(data).decode("ascii").rstrip("=").replace("/", ",") + "-")
            run.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            run.append(char)
    flush()
    return "".join(out)


def decode_mailbox(name: str) -> str:
    """Decode a modified UTF-7 mailbox name (the inverse of ``encode_mailbox``).

    Raises:
        ValueError: a shifted run that is not valid base64 of UTF-16BE.
    """

    def one(found: re.Match[str]) -> str:
        text = found.group(1)
        if not text:
            return "&"
        data = text.replace(",", "/")
        return base64.b64decode(data + "=" * (-len(data) % 4), validate=True).decode("utf-16-be")

    return re.sub(r"&([^-]*)-", one, name)


def quote(text: str) -> str:
    """An IMAP quoted string (RFC 3501 §9): backslash and double quote escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapSession:
    """A logged-in connection with a selected mailbox; built by ``ImapSession.open``.

    Every method raises ``ImapUnavailable`` when the server does not answer within ``timeout``
    seconds, closes the connection, or answers NO/BAD; the session is then unusable: ``close()``
    it and open another.
    """

    def __init__(self, host: str, port: int, *, timeout: float, ssl_context: ssl.SSLContext | None) -> None:
        self._host = host
        self._timeout = timeout
        self._lost = asyncio.Event()
        self._client: Any = _aioimaplib.IMAP4(
            host=host,
            port=port,
            timeout=timeout,
            conn_lost_cb=lambda _exc: self._lost.set(),
            ssl_context=ssl_context,
        )
        self.uidvalidity = 0
        """UIDVALIDITY of the selected mailbox (RFC 3501 §2.3.1.1)."""

    # ------------------------------------------------------------------ opening
    @classmethod
    async def open(
        cls,
        *,
        host: str,
        port: int,
        security: Literal["tls", "starttls", "none"],
        user: str,
        password: str,
        timeout_seconds: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> ImapSession:
        """Connect, greet, secure (``tls`` / ``starttls``), log in and read the capabilities.

        Raises:
            ImapUnavailable: any failure on the way; the half-open connection is closed.
        """
        context = (ssl_context or ssl.create_default_context()) if security != "none" else None
        session = cls(host, port, timeout=timeout_seconds, ssl_context=context if security == "tls" else None)
        try:
            await session._call(session._client.wait_hello_from_server(), "greeting")
            session._keepalive()
            if security == "starttls":
                assert context is not None  # noqa: S101 - set above for every secured mode
                await session._starttls(context)
            await session._login(user, password)
            # The capabilities after login are the ones that count (MOVE, UIDPLUS, IDLE).
            await session._call(session._client.protocol.capability(), "CAPABILITY")
        except BaseException:
            await session.close(logout=False)
            raise
        return session

    async def _starttls(self, context: ssl.SSLContext) -> None:
        protocol = self._client.protocol
        if "STARTTLS" not in protocol.capabilities:
            raise ImapUnavailable(f"{self._host} does not offer STARTTLS; refusing to log in in clear")
        command = _aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        self._check(await self._call(protocol.execute(command), "STARTTLS"), "STARTTLS")
        loop = asyncio.get_running_loop()
        start = loop.start_tls(protocol.transport, protocol, context, server_hostname=self._host)
        protocol.transport = await self._call(start, "TLS handshake")
        # RFC 3501 §6.2.1: forget what was announced in clear, ask again.
        await self._call(protocol.capability(), "CAPABILITY")

    async def _login(self, user: str, password: str) -> None:
        """LOGIN with both arguments quoted.

        Not aioimaplib's ``login()``: it sends the user unquoted, and it masks the password in its
        debug log only as typed, so a password with a quote or a backslash (escaped on the wire)
        would be logged in clear. Here the mask is exactly what is sent.
        """
        protocol = self._client.protocol
        secret = quote(password)
        command = _aioimaplib.Command("LOGIN", protocol.new_tag(), quote(user), secret, loop=protocol.loop)
        async with protocol.state_condition:
            response = await self._call(protocol.execute(command, scrub=secret), "LOGIN")
            if response.result == "OK":
                protocol.state = _aioimaplib.AUTH
            protocol.state_condition.notify_all()
        self._check(response, "LOGIN")

    def _keepalive(self) -> None:
        """TCP keepalive, so that a peer that vanished is noticed even without traffic."""
        sock = self._client.protocol.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)

    # ------------------------------------------------------------------ capabilities
    def has(self, capability: str) -> bool:
        """Whether the server announced ``capability`` (after login)."""
        return capability.upper() in {c.upper() for c in self._client.protocol.capabilities}

    # ------------------------------------------------------------------ mailboxes
    async def ensure_mailbox(self, name: str) -> None:
        """Create mailbox ``name`` (and subscribe to it) unless it exists."""
        encoded = quote(encode_mailbox(name))
        if await self._exists(encoded):
            return
        created = await self._call(self._client.create(encoded), "CREATE")
        if created.result != "OK" and not await self._exists(encoded):  # lost a race: fine
            raise ImapUnavailable(f"cannot create mailbox {name!r}: {_text(created)}")
        _log.info("imap: created mailbox %r", name)
        await self._call(self._client.subscribe(encoded), "SUBSCRIBE")  # for people's mail clients

    async def _exists(self, encoded: str) -> bool:
        listed = self._check(await self._call(self._client.list('""', encoded), "LIST"), "LIST")
        return any(isinstance(line, bytes) and line.startswith(b"(") for line in listed.lines)

    async def select(self, name: str) -> int:
        """SELECT mailbox ``name`` read-write; returns (and keeps) its UIDVALIDITY."""
        selected = self._check(await self._call(self._client.select(quote(encode_mailbox(name))), "SELECT"), "SELECT")
        for line in selected.lines:
            found = _UIDVALIDITY.search(bytes(line))
            if found:
                self.uidvalidity = int(found.group(1))
                return self.uidvalidity
        raise ImapUnavailable(f"SELECT {name!r} gave no UIDVALIDITY")

    # ------------------------------------------------------------------ messages
    async def search_all(self) -> list[int]:
        """UIDs of every message in the selected mailbox, ascending."""
        found = self._check(await self._call(self._client.uid_search("ALL", charset=None), "UID SEARCH"), "UID SEARCH")
        uids: set[int] = set()
        for line in found.lines[:-1]:
            uids.update(int(word) for word in bytes(line).split() if word.isdigit())
        return sorted(uids)

    async def fetch(self, uid: int) -> bytes | None:
        """The whole message ``uid`` as stored, without setting ``\\Seen`` (``BODY.PEEK[]``).

        Returns ``None`` when the message is gone (expunged by someone else). aioimaplib resets
        its own inactivity timer on every chunk, so a big message on a slow link is not cut
        while bytes still flow; our deadline is ten times the timeout, for the whole message.
        """
        fetched = self._check(
            await self._call(
                self._client.uid("fetch", str(uid), "(UID BODY.PEEK[])"), "UID FETCH", limit=self._timeout * 10
            ),
            "UID FETCH",
        )
        lines: Sequence[bytes | bytearray] = fetched.lines
        for index, line in enumerate(lines[:-1]):
            head = _FETCH_HEAD.match(bytes(line)) if isinstance(line, bytes) else None
            if head is None or b"BODY[]" not in head.group("items"):
                continue
            uid_seen = _FETCH_UID.search(head.group("items"))
            if uid_seen is not None and int(uid_seen.group(1)) != uid:
                continue  # an unsolicited FETCH about another message
            body = bytes(lines[index + 1])
            if len(body) != int(head.group("size")):
                raise ImapUnavailable(f"UID FETCH {uid}: {len(body)} bytes for a literal of {int(head.group('size'))}")
            return body
        return None

    async def move(self, uid: int, target: str) -> None:
        """Move message ``uid`` to mailbox ``target``.

        UID MOVE (RFC 6851) when announced; otherwise UID COPY, then ``+FLAGS.SILENT (\\Deleted)``,
        then UID EXPUNGE of that one message (UIDPLUS), or a plain EXPUNGE without UIDPLUS (which
        also removes other messages already marked deleted in this mailbox, as any client would).
        """
        encoded = quote(encode_mailbox(target))
        if self.has("MOVE"):
            self._check(await self._call(self._client.uid("move", str(uid), encoded), "UID MOVE"), "UID MOVE")
            return
        self._check(await self._call(self._client.uid("copy", str(uid), encoded), "UID COPY"), "UID COPY")
        stored = self._client.uid("store", str(uid), "+FLAGS.SILENT", "(\\Deleted)")
        self._check(await self._call(stored, "UID STORE"), "UID STORE")
        if self.has("UIDPLUS"):
            self._check(await self._call(self._client.uid("expunge", str(uid)), "UID EXPUNGE"), "UID EXPUNGE")
        else:
            self._check(await self._call(self._client.expunge(), "EXPUNGE"), "EXPUNGE")

    async def noop(self) -> None:
        """NOOP: lets the server tell us about new mail when IDLE is not available."""
        self._check(await self._call(self._client.noop(), "NOOP"), "NOOP")

    # ------------------------------------------------------------------ IDLE
    async def idle(self, seconds: float, wakers: Sequence[asyncio.Event]) -> IdleEnd:
        """IDLE (RFC 2177) for at most ``seconds``, or until new mail or one of ``wakers`` is set.

        The server's other pushes (``* OK Still here``, flag changes, expunges) are ignored; a
        ``* BYE`` or a closed connection raises ``ImapUnavailable`` at once, and a silent one is
        caught when DONE is not answered within the deadline.
        """
        protocol = self._client.protocol
        queue: asyncio.Queue[list[bytes]] = protocol.idle_queue
        while not queue.empty():  # pushes left over from an earlier IDLE; we rescan anyway
            queue.get_nowait()
        # aioimaplib's own stop timer is only a backstop: the loop below keeps the time.
        idle = await self._call(self._client.idle_start(timeout=seconds + self._timeout), "IDLE")
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        end: IdleEnd = "renew"
        while (remaining := until - loop.time()) > 0:
            push = asyncio.ensure_future(queue.get())
            watchers = [asyncio.ensure_future(event.wait()) for event in (*wakers, self._lost)]
            try:
                await asyncio.wait([push, *watchers], timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (push, *watchers):
                    task.cancel()
            if push.done() and not push.cancelled():
                lines = [bytes(line) for line in push.result()]
                if any(line.startswith(b"BYE") for line in lines):
                    raise ImapUnavailable(f"server said {lines[0]!r}")
                if any(line.endswith(b"EXISTS") for line in lines):
                    end = "exists"
                    break
                continue  # "* OK Still here", FETCH flags, EXPUNGE: keep idling
            if self._lost.is_set():
                raise ImapUnavailable("connection lost during IDLE")
            if any(event.is_set() for event in wakers):
                end = "woken"
                break
        self._client.idle_done()
        self._check(await self._call(idle, "DONE"), "IDLE")
        return end

    # ------------------------------------------------------------------ closing
    async def close(self, *, logout: bool = True) -> None:
        """LOGOUT (when asked and still connected), then close the transport. Never raises."""
        client = self._client
        if logout and not self._lost.is_set() and client.protocol.transport is not None:
            try:
                await self._call(client.logout(), "LOGOUT", limit=min(self._timeout, _CLOSE_GRACE))
            except ImapUnavailable as exc:
                _log.debug("imap: LOGOUT failed: %s", exc)
        if client._idle_waiter is not None:
            client._idle_waiter.cancel()
        connecting: asyncio.Task[Any] = client._client_task
        if not connecting.done():
            connecting.cancel()
        transport = client.protocol.transport
        if transport is not None and not self._lost.is_set():
            transport.close()
            try:
                await asyncio.wait_for(self._lost.wait(), _CLOSE_GRACE)
            except TimeoutError:
                transport.abort()
        leftovers = [task for task in (connecting, *client.tasks, *client.protocol.tasks) if not task.done()]
        for task in leftovers:
            task.cancel()
        if leftovers:
            await asyncio.wait(leftovers, timeout=_CLOSE_GRACE)
        for task in (connecting, *leftovers):
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: no "exception was never retrieved" at shutdown

    # ------------------------------------------------------------------ plumbing
    async def _call(self, awaitable: Awaitable[T], what: str, *, limit: float | None = None) -> T:
        """Await ``awaitable`` against the deadline and the connection-lost event."""
        limit = self._timeout if limit is None else limit
        work = asyncio.ensure_future(awaitable)
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            await asyncio.wait([work, lost], timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not work.done():
                work.cancel()
                await asyncio.wait([work], timeout=_CLOSE_GRACE)
        if work.cancelled():
            reason = "connection lost" if self._lost.is_set() else f"no answer within {limit:g} s"
            raise ImapUnavailable(f"{what}: {reason}")
        error = work.exception()
        if error is None:
            return work.result()
        if isinstance(error, _WIRE_ERRORS):
            raise ImapUnavailable(f"{what}: {type(error).__name__}: {error}") from error
        raise error

    def _check(self, response: Any, what: str) -> Any:
        if response.result != "OK":
            raise ImapUnavailable(f"{what} refused: {response.result} {_text(response)}")
        return response


def _text(response: Any) -> str:
    """The server's last line, for logs (bounded; never a password: LOGIN's text is the server's)."""
    lines = [line for line in response.lines if isinstance(line, bytes)]
    return lines[-1].decode("utf-8", "replace")[:200] if lines else ""
