"""The submission listener: drafts from the DMS, to be sealed and sent to the axis.

Who may submit: a client in ``allow_networks`` (no AUTH needed), or a user of ``users_file``
after AUTH PLAIN or LOGIN, which is offered only inside TLS (STARTTLS; ``auth_require_tls``).
Everyone else gets ``530 5.7.0 Authentication required`` at MAIL. After DATA the mail is handed
to the durable intake as ``kind="submission"``; the reply codes and their promises are those of
the inbound listener (``gateway.inbound.smtp``): 250 only once spooled and committed, 451/452
on spool or database trouble, ``451 4.3.0 Local error`` for anything unexpected.

The users file: one ``name:hash`` per line, ``#`` comments and blank lines ignored, where
``hash`` is what :func:`hash_password` returns::

    dms-tayninh:scrypt$16384$8$1$<salt, base64>$<key, base64>

scrypt runs in a worker thread: a password check never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ipaddress
import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from gateway.errors import ConfigError
from gateway.settings import SubmissionSettings
from gateway.smtpserver import EdgeHandler, IntakePort, ListenerEdge, SmtpListener, server_tls_context

__all__ = ["SubmissionSmtp", "hash_password", "load_users", "verify_password"]

_log = logging.getLogger("gateway.outbound.submit")

_N, _R, _P, _DKLEN = 2**14, 8, 1, 32
_MAX_N, _MAX_R, _MAX_P = 2**20, 32, 16
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _scrypt(password: bytes, salt: bytes, *, n: int, r: int, p: int, dklen: int = _DKLEN) -> bytes:
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=256 * n * r * p + 2**20)


def hash_password(password: str, *, n: int = _N, r: int = _R, p: int = _P) -> str:
    """Hash a password for the users file.

    Args:
        password: the password (UTF-8 on the wire).
        n: scrypt CPU/memory cost, a power of two.
        r: scrypt block size.
        p: scrypt parallelism.

    Returns:
        ``scrypt$<n>$<r>$<p>$<salt>$<key>`` (base64), to follow ``name:`` in the users file.
    """
    salt = secrets.token_bytes(16)
    key = _scrypt(password.encode("utf-8"), salt, n=n, r=r, p=p)
    return "$".join(("scrypt", str(n), str(r), str(p), base64.b64encode(salt).decode(), base64.b64encode(key).decode()))


def _parse_hash(encoded: str) -> tuple[int, int, int, bytes, bytes]:
    scheme, n, r, p, salt, key = encoded.split("$")
    if scheme != "scrypt":
        raise ValueError(f"unknown scheme {scheme!r}")
    ni, ri, pi = int(n), int(r), int(p)
    if not (1 < ni <= _MAX_N and ni & (ni - 1) == 0 and 0 < ri <= _MAX_R and 0 < pi <= _MAX_P):
        raise ValueError("scrypt parameters out of range")
    salt_bytes, key_bytes = base64.b64decode(salt, validate=True), base64.b64decode(key, validate=True)
    if not salt_bytes or not 16 <= len(key_bytes) <= 64:
        raise ValueError("empty salt or odd key length")
    return ni, ri, pi, salt_bytes, key_bytes


def verify_password(password: bytes, encoded: str) -> bool:
    """Check a password against a :func:`hash_password` value (CPU-heavy: call it in a thread).

    Args:
        password: the password as sent (UTF-8 bytes).
        encoded: the stored hash.

    Returns:
        True when it matches; False otherwise, also for a malformed hash.
    """
    try:
        n, r, p, salt, key = _parse_hash(encoded)
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(_scrypt(password, salt, n=n, r=r, p=p, dklen=len(key)), key)


def load_users(path: Path) -> dict[str, str]:
    """Read a users file (see the module docstring).

    Args:
        path: the file.

    Returns:
        User name → hash.

    Raises:
        ConfigError: unreadable file, or a line that is not ``name:scrypt$...`` (names the line).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read the submission users file: {error}", path=path) from error
    users: dict[str, str] = {}
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, encoded = line.partition(":")
        try:
            if not sep or not name or name in users:
                raise ValueError("expected a new name:hash")
            _parse_hash(encoded)
        except (ValueError, binascii.Error) as error:
            raise ConfigError(
                f"not a user line ({error})", path=path, line=number, hint="name:scrypt$16384$8$1$<salt>$<key>"
            ) from error
        users[name] = encoded
    return users


def _networks(values: tuple[str, ...]) -> tuple[_Network, ...]:
    try:
        return tuple(ipaddress.ip_network(v) for v in values)
    except ValueError as error:
        raise ConfigError(f"[submission] allow_networks: {error}", hint='e.g. ["10.1.2.0/24", "::1/128"]') from error


class _SubmissionHandler(EdgeHandler):
    def __init__(
        self, intake: IntakePort, *, networks: tuple[_Network, ...], users: dict[str, str], failure_delay: float
    ) -> None:
        super().__init__(intake, kind="submission", channel="submission", log=_log)
        self.networks = networks
        self.users = users
        self.failure_delay = failure_delay
        self._decoy = hash_password(secrets.token_urlsafe(16))

    def offers_auth(self) -> bool:
        return bool(self.users)  # and aiosmtpd advertises AUTH only inside TLS

    def allowed_peer(self, peer: Any) -> bool:
        """Whether the client's address is in ``allow_networks``."""
        try:
            address = ipaddress.ip_address(str(peer[0]).partition("%")[0])
        except (TypeError, IndexError, ValueError):
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if not session.authenticated and not self.allowed_peer(session.peer):
            self.log.info("MAIL from %r refused: not authenticated, not an allowed network", session.peer)
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        return self.add_recipient(envelope, address, rcpt_options)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        item, reply = await self.take(envelope)
        if item is None:
            return reply
        self.log.info(
            "submission queued as %d: %d bytes sha256 %s from <%s> user %s peer %r",
            item.id,
            item.size,
            item.sha256,
            envelope.mail_from,
            session.auth_data if session.authenticated else "-",
            session.peer,
            extra={"item_id": item.id},
        )
        return f"250 2.0.0 Ok: queued as {item.id}"

    async def _check(self, login: bytes, password: bytes) -> AuthResult:
        name = login.decode("utf-8", "replace")
        encoded = self.users.get(name)
        # An unknown name costs the same scrypt as a known one: no user enumeration by timing.
        ok = await asyncio.to_thread(verify_password, password, encoded or self._decoy)
        if ok and encoded is not None:
            self.log.info("AUTH ok for %r", name)
            return AuthResult(success=True, auth_data=name)
        self.log.warning("AUTH failed for %r", name)
        await asyncio.sleep(self.failure_delay)
        return AuthResult(success=False, handled=False)

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        """AUTH PLAIN (RFC 4616), with the initial response or after a ``334`` challenge."""
        if len(args) == 1:
            blob = await server.challenge_auth("")
            if not isinstance(blob, bytes):
                return AuthResult(success=False, handled=True)  # challenge_auth answered 501
        else:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except binascii.Error:
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        parts = blob.split(b"\x00")
        if len(parts) != 3 or parts[0] not in (b"", parts[1]):
            await server.push("501 5.5.2 Can't split auth value")
            return AuthResult(success=False, handled=True)
        return await self._check(parts[1], parts[2])

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        """AUTH LOGIN, with or without the initial user name."""
        if len(args) == 1:
            login = await server.challenge_auth("Username:")
            if not isinstance(login, bytes):
                return AuthResult(success=False, handled=True)
        else:
            try:
                login = base64.b64decode(args[1], validate=True)
            except binascii.Error:
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        password = await server.challenge_auth("Password:")
        if not isinstance(password, bytes):
            return AuthResult(success=False, handled=True)
        return await self._check(login, password)


class SubmissionSmtp(ListenerEdge):
    """The ``[submission]`` listener, served on the running event loop.

    Args:
        settings: the ``[submission]`` section.
        intake: the durable intake (``gateway.inbound.intake.Intake``).
        auth_failure_delay: seconds to wait before answering a failed AUTH (slows guessing).

    Raises:
        ConfigError: bad ``listen`` or ``allow_networks``, unusable TLS files, an unreadable or
            malformed users file, or a users file without TLS (AUTH would never be offered).
    """

    def __init__(self, settings: SubmissionSettings, intake: IntakePort, *, auth_failure_delay: float = 1.0) -> None:
        self.settings = settings
        tls = server_tls_context(settings.tls_cert, settings.tls_key, section="submission")
        users = load_users(settings.users_file) if settings.users_file is not None else {}
        if users and tls is None:
            raise ConfigError(
                "[submission] users_file is set but AUTH is offered only over TLS",
                hint="set tls_cert and tls_key, or remove users_file and use allow_networks",
            )
        self.handler = _SubmissionHandler(
            intake, networks=_networks(settings.allow_networks), users=users, failure_delay=auth_failure_delay
        )
        self.listener = SmtpListener(
            self.handler,
            listen=settings.listen,
            listen_key="[submission] listen",
            hostname=settings.hostname,
            max_message_bytes=settings.max_message_bytes,
            tls_context=tls,
            log=_log,
            auth_require_tls=True,
        )

    def reload_users(self) -> None:
        """Re-read ``users_file`` (SIGHUP); sessions already authenticated stay so.

        Raises:
            ConfigError: as for the constructor; the old users stay in force.
        """
        self.staged_users()()

    def staged_users(self) -> Callable[[], None]:
        """Read ``users_file`` again without using it yet; the returned call puts it in force.

        SIGHUP reads every file first and changes nothing unless all of them are valid.

        Raises:
            ConfigError: as for the constructor; nothing changes.
        """
        if self.settings.users_file is None:
            return lambda: None
        users = load_users(self.settings.users_file)

        def use() -> None:
            self.handler.users = users

        return use
