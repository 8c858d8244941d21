"""Sending mail to the axis (and to senders, and to the DMS's notice address).

Both classes implement ``gateway.pipeline.ports.Sender``:

* ``SmtpSender`` — one SMTP connection per mail with aiosmtplib; returns the server's final
  reply (``250 2.0.0 Ok: queued as …``), the moment the axis took responsibility for the mail
  (the pipeline records it as the system send time);
* ``MaildirSender`` — the local sink of ``make run``: each mail becomes a Maildir message, with
  ``Return-Path`` and ``X-Envelope-To`` prepended so the envelope is visible.

The data is streamed (``gateway.smtpclient``): a mail is written in pieces, dot-stuffed on the
way, with flow control, so sending costs a few pieces of memory beyond the mail itself, and a
spooled mail (``SpooledMail``) is read from its file and never held whole.

Error mapping (HOUSE.md rule 6; the pipeline decides retries from the class alone):

=========================================  ==================  ==============================
what happened                              raised              the pipeline does
=========================================  ==================  ==============================
4xx at greeting, EHLO, MAIL, RCPT or DATA  ``TransientError``  defer with backoff, give up by age
connection refused / reset, timeout, TLS   ``TransientError``  defer with backoff, give up by age
garbled reply (no 3-digit code)            ``TransientError``  defer with backoff, give up by age
5xx at any step                            ``PermanentError``  failed at once (+ notice)
an address that cannot go on the wire      ``PermanentError``  failed at once (+ notice)
disk trouble in the Maildir sink           ``TransientError``  defer with backoff
a spooled mail that cannot be read         ``TransientError``  defer with backoff
=========================================  ==================  ==============================

All recipients or none: every RCPT must be accepted before DATA is sent; otherwise the
envelope is reset and nothing is sent (a partial send could not be retried without doubling
it for the recipients that got it). Once DATA is answered 2xx the mail is sent: a failure
of the QUIT that follows is ignored, never reported as an error (that would send it again).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import socket
import ssl
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import aiosmtplib

from gateway.errors import ConfigError, PermanentError, TransientError
from gateway.files import ensure_maildir, publish_in_maildir
from gateway.pipeline.mails import header_lines
from gateway.pipeline.ports import Sender, SpooledMail
from gateway.settings import AxisSettings
from gateway.smtpclient import Outgoing, Survey, send_data

__all__ = ["MaildirSender", "SmtpSender", "sender_from"]


def _reply_error(code: int, message: str, where: str) -> TransientError | PermanentError:
    text = f"{where}: {code} {' '.join(message.split())}"
    return PermanentError(text) if 500 <= code <= 599 else TransientError(text)


def _check_addresses(addresses: Iterable[str]) -> None:
    for address in addresses:
        if not re.fullmatch(r"[\x21-\x7e]*", address) or "<" in address or ">" in address:
            raise PermanentError(f"the address {address!r} cannot be sent over SMTP")


class SmtpSender:
    """Sends each mail over its own SMTP connection (aiosmtplib)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float = 60.0,
        starttls: bool | None = None,
        local_hostname: str = "localhost",
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        """Args:
        host: the relay (the axis's SMTP server).
        port: its port.
        timeout: seconds allowed for connecting and for each reply (DATA: more for big mails).
        starttls: ``True`` requires STARTTLS, ``False`` never uses it, ``None`` upgrades when
            the server offers it (the certificate is then verified all the same).
        local_hostname: the name we give in EHLO.
        tls_context: trust for STARTTLS (default: the system's CAs, hostname checked).
        """
        self.host, self.port, self.timeout = host, port, timeout
        self.starttls, self.local_hostname, self.tls_context = starttls, local_hostname, tls_context
        self.where = f"smtp://{host}:{port}"

    async def send(self, mail: bytes | SpooledMail, *, mail_from: str, rcpt_to: Sequence[str]) -> str:
        """Send ``mail`` to every address in ``rcpt_to``, or to none of them.

        Args:
            mail: the whole mail (CRLF line ends; dot-stuffing is done here), or a spooled one
                (streamed from its file).
            mail_from: the envelope sender.
            rcpt_to: the envelope recipients (at least one).

        Returns:
            The final reply to DATA, e.g. ``250 2.0.0 Ok: queued as 4Xk2``.

        Raises:
            TransientError: a 4xx reply, a network error, a timeout, a TLS failure.
            PermanentError: a 5xx reply, or an address that cannot be sent.
        """
        if not rcpt_to:
            raise PermanentError("a mail needs at least one recipient")
        _check_addresses([mail_from, *rcpt_to])
        outgoing = Outgoing.of(mail)
        try:
            survey = await asyncio.to_thread(outgoing.survey)
        except OSError as exc:
            raise TransientError(f"cannot read the mail to send: {exc.strerror or exc}") from exc
        try:
            return await self._transaction(outgoing, survey, mail_from, rcpt_to)
        except aiosmtplib.SMTPResponseException as exc:
            raise _reply_error(exc.code, exc.message, self.where) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # Connection refused or reset, a timeout, a failed TLS handshake, STARTTLS required
            # but not offered: the relay (or its configuration) may be fixed; retry, give up by age.
            raise TransientError(f"{self.where}: {type(exc).__name__}: {exc}") from exc

    async def _transaction(self, mail: Outgoing, survey: Survey, mail_from: str, rcpt_to: Sequence[str]) -> str:
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            timeout=self.timeout,
            start_tls=self.starttls,
            local_hostname=self.local_hostname,
            tls_context=self.tls_context,
        )
        try:
            await client.connect()
            if client.is_ehlo_or_helo_needed:
                try:
                    await client.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await client.helo()  # an old server without ESMTP
            await client.mail(mail_from, options=survey.options(client.esmtp_extensions))
            refused: list[aiosmtplib.SMTPRecipientRefused] = []
            for recipient in rcpt_to:
                try:
                    await client.rcpt(recipient)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    refused.append(exc)
            if refused:
                with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                    await client.rset()  # nothing is sent unless every recipient is accepted
                raise _refusal(refused, self.where)
            reply = await send_data(client, mail, seconds=survey.data_seconds(self.timeout))
            # From here on the mail is the relay's: nothing below may turn into an error.
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await client.quit()
            return f"{reply.code} {' '.join(reply.message.split())}"
        finally:
            client.close()


def _refusal(refused: Sequence[aiosmtplib.SMTPRecipientRefused], where: str) -> TransientError | PermanentError:
    """Any 4xx among the refused recipients makes the attempt transient; all 5xx, permanent."""
    detail = "; ".join(f"{e.recipient}: {e.code} {' '.join(e.message.split())}" for e in refused)
    if all(500 <= e.code <= 599 for e in refused):
        return PermanentError(f"{where} RCPT: {detail}")
    return TransientError(f"{where} RCPT: {detail}")


# --------------------------------------------------------------------------- the local sink

_SEQUENCE = itertools.count(1)


def _write_maildir(root: Path, envelope: bytes, mail: bytes | SpooledMail) -> str:
    """Write one message the Maildir way (tmp, fsync, rename to new, fsync); returns its name."""
    ensure_maildir(root)
    # The classic unique name: time, process and a per-process counter, host (Maildir(5)).
    host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
    name = f"{time.time_ns() // 1000}.P{os.getpid()}Q{next(_SEQUENCE)}.{host}"
    pieces = [envelope, mail] if isinstance(mail, bytes) else itertools.chain([envelope], mail.pieces())
    publish_in_maildir(root, name, pieces, once=False)
    return name


class MaildirSender:
    """The local axis of ``make run``: every mail sent becomes a message in a Maildir."""

    def __init__(self, path: Path) -> None:
        """Args:
        path: the Maildir (``tmp``, ``new`` and ``cur`` are created when missing).
        """
        self.path = path

    async def send(self, mail: bytes | SpooledMail, *, mail_from: str, rcpt_to: Sequence[str]) -> str:
        """Write ``mail`` to ``new/`` with its envelope as ``Return-Path`` and ``X-Envelope-To``.

        Args:
            mail: the whole mail, or a spooled one (copied from its file).
            mail_from: the envelope sender.
            rcpt_to: the envelope recipients.

        Returns:
            ``250 2.0.0 delivered to maildir`` (and the file's name).

        Raises:
            TransientError: the disk refused (full, read-only, permissions).
            PermanentError: no recipient, or an address that cannot be written as a header.
        """
        if not rcpt_to:
            raise PermanentError("a mail needs at least one recipient")
        _check_addresses([mail_from, *rcpt_to])
        envelope = header_lines({"Return-Path": f"<{mail_from}>", "X-Envelope-To": ", ".join(rcpt_to)})
        try:
            name = await asyncio.to_thread(_write_maildir, self.path, envelope, mail)
        except OSError as exc:
            raise TransientError(f"cannot write to the Maildir {self.path}: {exc.strerror or exc}") from exc
        return f"250 2.0.0 delivered to maildir ({name})"


# --------------------------------------------------------------------------- from settings


def sender_from(
    axis: AxisSettings,
    base_dir: Path,
    *,
    local_hostname: str = "localhost",
    timeout: float = 60.0,
    starttls: bool | None = None,
) -> Sender:
    """The sender ``[axis] relay`` names.

    Args:
        axis: the ``[axis]`` settings (``smtp://host:port`` or ``maildir:PATH``).
        base_dir: the configuration file's directory (a relative Maildir path is relative to it).
        local_hostname: our name in EHLO.
        timeout: seconds for connecting and for each reply.
        starttls: see ``SmtpSender``.

    Returns:
        An ``SmtpSender`` or a ``MaildirSender``.

    Raises:
        ConfigError: an unknown scheme, a missing host or path.
    """
    relay = axis.relay.strip()
    hint = 'e.g. relay = "smtp://relay.example.gov.vn:25" or "maildir:var/axis"'
    if relay.startswith("maildir:"):
        path = Path(relay.removeprefix("maildir:"))
        if str(path) in ("", "."):
            raise ConfigError("[axis] relay names no Maildir path", hint=hint)
        return MaildirSender(path if path.is_absolute() else base_dir / path)
    parts = urlsplit(relay)
    if parts.scheme != "smtp":
        raise ConfigError(f"[axis] relay {relay!r}: unknown kind of relay", hint=hint)
    try:
        port = parts.port or 25
    except ValueError:
        raise ConfigError(f"[axis] relay {relay!r}: the port is not a number", hint=hint) from None
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.username:
        raise ConfigError(f"[axis] relay {relay!r}: expected smtp://host:port", hint=hint)
    return SmtpSender(parts.hostname, port, timeout=timeout, starttls=starttls, local_hostname=local_hostname)
