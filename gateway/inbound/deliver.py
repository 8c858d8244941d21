"""Delivery to the DMS: a Maildir (exactly once) or an SMTP/LMTP server (at least once).

Both implement ``gateway.pipeline.ports.Deliverer``. Errors carry their meaning (HOUSE.md
rule 6): ``TransientError`` for a 4xx reply, a network or a disk problem (the pipeline retries),
``PermanentError`` for a 5xx reply.

Invariants:

* **Maildir, exactly once.** ``new/<key>`` appears atomically and at most once: the mail is
  written to ``tmp/<key>``, fsynced, hard-linked to ``new/<key>`` (a link never replaces an
  existing name) and the ``new`` directory is fsynced. When ``new/<key>`` or ``cur/<key>…`` (the
  DMS has read it) already exists, a replay does nothing. A crash before the link leaves only
  ``tmp/<key>``, which Maildir readers ignore and the next attempt overwrites.
* **SMTP/LMTP, at least once.** The mail carries ``X-Gateway-Id: <key>`` (prepended unless the
  header is already there with that key; the original bytes are untouched) so the DMS can drop
  a duplicate: a crash after the server's 250 but before our commit sends it again.
* **All or nothing at RCPT.** Every configured recipient must be accepted before DATA; when
  one is refused the transaction is reset and nothing is sent. LMTP answers DATA once per
  recipient; each reply counts: any 4xx makes the delivery transient (the whole mail is
  delivered again, the DMS dedupes on ``X-Gateway-Id``), otherwise any 5xx makes it permanent.

aiosmtplib has no LMTP mode, and its protocol reads exactly one reply per command: the further
replies an LMTP server sends after DATA (often in the same packet) would be dropped or left
unread. So LMTP uses the small client below on plain asyncio streams, with a deadline on every
read and write; SMTP uses aiosmtplib.

Both stream the data (``gateway.smtpclient``): a spooled mail goes from its file to the socket
in pieces, dot-stuffed on the way, so a 90 MB mail is never in memory whole (issue 7, P4).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import aiosmtplib

from gateway.errors import ConfigError, PermanentError, TransientError
from gateway.files import ensure_maildir, publish_in_maildir
from gateway.pipeline.mails import header_lines
from gateway.pipeline.ports import Deliverer, SpooledMail
from gateway.settings import DmsSettings
from gateway.smtpclient import DataPieces, Outgoing, Survey, send_data

__all__ = ["MaildirDeliverer", "SmtpDeliverer", "deliverer_from", "smtp_error"]

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_HEAD_SCAN = 256 * 1024
"""How far into a spooled mail ``X-Gateway-Id`` is looked for (a longer header block gets a second one)."""


def smtp_error(code: int, message: str, where: str) -> TransientError | PermanentError:
    """The gateway error for an SMTP/LMTP reply that is not a success.

    Args:
        code: the reply code.
        message: the reply text.
        where: the server (``host:port``) and the command, for the message.

    Returns:
        ``PermanentError`` for 5xx; ``TransientError`` for 4xx and anything unexpected
        (a garbled reply is the server's trouble: retry, then give up by age).
    """
    text = f"{where}: {code} {' '.join(message.split())}".strip()
    return PermanentError(text) if 500 <= code <= 599 else TransientError(text)


# --------------------------------------------------------------------------- Maildir


def _already_there(root: Path, key: str) -> bool:
    if (root / "new" / key).exists():
        return True
    # The DMS moves a read message to cur/ and appends its flags: "<key>:2,S".
    with os.scandir(root / "cur") as entries:
        return any(e.name == key or e.name.startswith((key + ":", key + "!")) for e in entries)


def _deliver_to_maildir(root: Path, key: str, mail: bytes | SpooledMail) -> None:
    ensure_maildir(root)
    if _already_there(root, key):
        # A crash between the link into new/ and the removal of tmp/<key> left a second name
        # for the delivered file: remove it, or it stays in tmp/ for ever.
        (root / "tmp" / key).unlink(missing_ok=True)
        return
    publish_in_maildir(root, key, mail if isinstance(mail, bytes) else mail.pieces(), once=True)


class MaildirDeliverer:
    """Delivers to a Maildir the DMS reads, exactly once per key."""

    def __init__(self, path: Path) -> None:
        """Args:
        path: the Maildir (``tmp``, ``new`` and ``cur`` are created when missing).
        """
        self.path = path

    async def deliver(self, mail: bytes | SpooledMail, *, key: str) -> None:
        """Write ``mail`` as ``new/<key>`` unless that key was delivered before.

        Args:
            mail: the mail, as it goes to the DMS (a spooled one is copied file to file).
            key: the idempotency key (``delivery_key``): a safe file name.

        Raises:
            ValueError: ``key`` is not a plain file name (a programming error).
            TransientError: the disk refused (full, read-only, permissions).
        """
        if not _KEY.match(key):
            raise ValueError(f"delivery key {key!r} is not a plain file name")
        try:
            await asyncio.to_thread(_deliver_to_maildir, self.path, key, mail)
        except OSError as exc:
            raise TransientError(f"cannot write to the DMS Maildir {self.path}: {exc.strerror or exc}") from exc


# --------------------------------------------------------------------------- SMTP and LMTP


def _check_address(address: str) -> None:
    """Refuse an address that cannot go on an SMTP command line as it is (ASCII without space, < or >)."""
    if not re.fullmatch(r"[\x21-\x7e]*", address) or "<" in address or ">" in address:
        raise ValueError(f"the address {address!r} cannot be sent over SMTP")


def _carries_id(mail: bytes, key: str) -> bool:
    """Whether the mail's header already says ``X-Gateway-Id: <key>`` (the pipeline may add it)."""
    end = re.search(rb"\r?\n\r?\n", mail)
    head = mail[: end.start() if end else len(mail)]
    wanted = rb"(?im)^X-Gateway-Id:[ \t]*" + re.escape(key.encode("ascii")) + rb"[ \t]*\r?$"
    return re.search(wanted, head) is not None


def _spooled_carries_id(mail: SpooledMail, key: str) -> bool:
    """``_carries_id`` for a spooled mail: its head and the file's first bytes (the file is left as it was)."""
    start = mail.file.tell()
    try:
        begin = mail.head + mail.file.read(_HEAD_SCAN)
    finally:
        mail.file.seek(start)
    if not re.search(rb"\r?\n\r?\n", begin):  # no end of the header block in sight: drop the cut line
        begin = begin[: begin.rfind(b"\n") + 1]
    return _carries_id(begin, key)


def _outgoing(mail: bytes | SpooledMail, key: str) -> tuple[Outgoing, Survey]:
    """The mail with ``X-Gateway-Id: <key>`` in front unless it is there; its size and 8-bit content.

    Blocking (a spooled mail's file is read, in pieces): call it in a worker thread.
    """
    carried = _carries_id(mail, key) if isinstance(mail, bytes) else _spooled_carries_id(mail, key)
    outgoing = Outgoing.of(mail) if carried else Outgoing.of(mail, header_lines({"X-Gateway-Id": key}))
    return outgoing, outgoing.survey()


class _LmtpClient:
    """Just enough LMTP (RFC 2033) for one transaction, with a deadline on every step."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, where: str, step: float) -> None:
        self.reader, self.writer, self.where, self.step = reader, writer, where, step

    async def reply(self, wait: float | None = None) -> tuple[int, str]:
        lines: list[str] = []
        while True:
            try:
                line = await asyncio.wait_for(self.reader.readline(), wait or self.step)
            except ValueError:  # a line longer than the stream's limit
                raise TransientError(f"{self.where}: a reply line is too long") from None
            if not line.endswith(b"\n"):
                raise ConnectionError("the connection closed in the middle of a reply")
            if len(line) < 4 or not line[:3].isdigit() or line[3:4] not in (b" ", b"-", b"\r", b"\n"):
                raise TransientError(f"{self.where}: garbled reply {line[:80]!r}")
            lines.append(line[4:].decode("utf-8", "replace").strip())
            if line[3:4] != b"-":
                return int(line[:3]), "\n".join(lines)

    async def send(self, data: bytes, wait: float | None = None) -> None:
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), wait or self.step)

    async def send_data(self, mail: Outgoing, wait: float) -> None:
        """The DATA payload in pieces, each written once the last one drained; ``wait`` for them all."""
        pieces = DataPieces(mail)
        async with asyncio.timeout(wait):
            while piece := await pieces.read():
                self.writer.write(piece)
                await self.writer.drain()

    async def command(self, text: str, expect: int) -> str:
        await self.send(text.encode("ascii") + b"\r\n")
        code, message = await self.reply()
        if code != expect:
            raise smtp_error(code, message, f"{self.where} {text.split(' ', 1)[0]}")
        return message


def _worst(refused: Sequence[tuple[int, str, str]], where: str, step: str) -> TransientError | PermanentError:
    """Any 4xx (or odd code) makes the whole attempt transient; only all-5xx is permanent."""
    detail = "; ".join(f"{r}: {code} {' '.join(message.split())}" for code, message, r in refused)
    if all(500 <= code <= 599 for code, _, _ in refused):
        return PermanentError(f"{where} {step}: {detail}")
    return TransientError(f"{where} {step}: {detail}")


class SmtpDeliverer:
    """Delivers to the DMS's mail server over SMTP or LMTP (at least once, ``X-Gateway-Id``)."""

    def __init__(
        self,
        host: str,
        port: int,
        recipients: Sequence[str],
        mail_from: str = "",
        *,
        lmtp: bool = False,
        timeout: float = 60.0,
        local_hostname: str = "localhost",
    ) -> None:
        """Args:
        host: the server.
        port: its port.
        recipients: the DMS mailbox(es): every one must accept the mail.
        mail_from: the envelope sender (empty: the null sender ``<>``).
        lmtp: speak LMTP (LHLO, one reply per recipient after DATA).
        timeout: seconds allowed for each step (DATA: more for big mails).
        local_hostname: the name we give in EHLO/LHLO.

        Raises:
            ValueError: no recipient, or an address that cannot go on an SMTP command line.
        """
        if not recipients:
            raise ValueError("an SMTP/LMTP deliverer needs at least one recipient")
        for address in (mail_from, *recipients):
            _check_address(address)
        self.host, self.port, self.recipients, self.mail_from = host, port, tuple(recipients), mail_from
        self.lmtp, self.timeout, self.local_hostname = lmtp, timeout, local_hostname
        self.where = f"{'lmtp' if lmtp else 'smtp'}://{host}:{port}"

    async def deliver(self, mail: bytes | SpooledMail, *, key: str) -> None:
        """Send ``mail`` with ``X-Gateway-Id: <key>`` prepended to every configured recipient.

        Args:
            mail: the mail, as it goes to the DMS (a spooled one is streamed from its file).
            key: the idempotency key, sent as ``X-Gateway-Id``.

        Raises:
            TransientError: a 4xx reply (for any recipient), a network error or a timeout, or
                the spooled mail cannot be read.
            PermanentError: 5xx replies (for every recipient that failed).
        """
        try:
            outgoing, survey = await asyncio.to_thread(_outgoing, mail, key)
        except OSError as exc:
            raise TransientError(f"cannot read the mail to deliver: {exc.strerror or exc}") from exc
        try:
            await (self._lmtp(outgoing, survey) if self.lmtp else self._smtp(outgoing, survey))
        except aiosmtplib.SMTPResponseException as exc:
            raise smtp_error(exc.code, exc.message, self.where) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            raise TransientError(f"{self.where}: {type(exc).__name__}: {exc}") from exc

    async def _smtp(self, mail: Outgoing, survey: Survey) -> None:
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            timeout=self.timeout,
            start_tls=False,
            local_hostname=self.local_hostname,
        )
        try:
            await client.connect()
            try:
                await client.ehlo()
            except aiosmtplib.SMTPHeloError:
                await client.helo()  # an old server without ESMTP
            await client.mail(self.mail_from, options=survey.options(client.esmtp_extensions))
            refused: list[tuple[int, str, str]] = []
            for recipient in self.recipients:
                try:
                    await client.rcpt(recipient)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    refused.append((exc.code, exc.message, recipient))
            if refused:
                with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                    await client.rset()  # all or nothing: no DATA when one is refused
                raise _worst(refused, self.where, "RCPT")
            await send_data(client, mail, seconds=survey.data_seconds(self.timeout))
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await client.quit()  # delivered: a rude goodbye changes nothing
        finally:
            client.close()

    async def _lmtp(self, mail: Outgoing, survey: Survey) -> None:
        opening = asyncio.open_connection(self.host, self.port)
        reader, writer = await asyncio.wait_for(opening, self.timeout)
        client = _LmtpClient(reader, writer, self.where, self.timeout)
        try:
            code, message = await client.reply()
            if code != 220:
                raise smtp_error(code, message, f"{self.where} greeting")
            lhlo = await client.command(f"LHLO {self.local_hostname}", 250)
            extensions = [line.split()[0] for line in lhlo.splitlines()[1:] if line.strip()]
            options = "".join(" " + o for o in survey.options(extensions))
            await client.command(f"MAIL FROM:<{self.mail_from}>{options}", 250)
            refused: list[tuple[int, str, str]] = []
            for recipient in self.recipients:
                await client.send(f"RCPT TO:<{recipient}>\r\n".encode("ascii"))
                code, message = await client.reply()
                if code not in (250, 251):
                    refused.append((code, message, recipient))
            if refused:
                with contextlib.suppress(OSError, TimeoutError, TransientError, PermanentError):
                    await client.command("RSET", 250)  # all or nothing: no DATA when one is refused
                raise _worst(refused, self.where, "RCPT")
            await client.command("DATA", 354)
            await client.send_data(mail, survey.data_seconds(self.timeout))
            # RFC 2033 §4.2: one reply per accepted recipient, in RCPT order; each one counts.
            answers = [(*await client.reply(survey.data_seconds(self.timeout)), r) for r in self.recipients]
            failed = [(code, message, r) for code, message, r in answers if not 200 <= code <= 299]
            if failed:
                delivered = ", ".join(r for code, _, r in answers if 200 <= code <= 299) or "nobody"
                raise _worst(failed, self.where, f"DATA (delivered to {delivered})")
            with contextlib.suppress(OSError, TimeoutError, TransientError, PermanentError):
                await client.command("QUIT", 221)  # delivered: a rude goodbye changes nothing
        finally:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), self.timeout)


# --------------------------------------------------------------------------- from settings


def deliverer_from(
    dms: DmsSettings, base_dir: Path, *, mail_from: str = "", local_hostname: str = "localhost", timeout: float = 60.0
) -> Deliverer:
    """The deliverer ``[dms] target`` names.

    Args:
        dms: the ``[dms]`` settings (``maildir:PATH``, ``smtp://host:port``, ``lmtp://host:port``).
        base_dir: the configuration file's directory (a relative Maildir path is relative to it).
        mail_from: the envelope sender for SMTP/LMTP (empty: ``<>``).
        local_hostname: our name in EHLO/LHLO.
        timeout: seconds per SMTP/LMTP step.

    Returns:
        A ``MaildirDeliverer`` or an ``SmtpDeliverer``.

    Raises:
        ConfigError: an unknown scheme, a missing host, or SMTP/LMTP without recipients.
    """
    target = dms.target.strip()
    hint = 'e.g. target = "maildir:var/dms", "smtp://dms.example:25" or "lmtp://127.0.0.1:24"'
    if target.startswith("maildir:"):
        path = Path(target.removeprefix("maildir:"))
        if not str(path) or str(path) == ".":
            raise ConfigError("[dms] target names no Maildir path", hint=hint)
        return MaildirDeliverer(path if path.is_absolute() else base_dir / path)
    parts = urlsplit(target)
    if parts.scheme not in ("smtp", "lmtp"):
        raise ConfigError(f"[dms] target {target!r}: unknown kind of target", hint=hint)
    try:
        port = parts.port or (24 if parts.scheme == "lmtp" else 25)
    except ValueError:
        raise ConfigError(f"[dms] target {target!r}: the port is not a number", hint=hint) from None
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.username:
        raise ConfigError(f"[dms] target {target!r}: expected {parts.scheme}://host:port", hint=hint)
    if not dms.recipients:
        raise ConfigError(
            f"[dms] target {target!r} needs the DMS mailbox(es)", hint='set [dms] recipients = ["vanthu@…"]'
        )
    try:
        return SmtpDeliverer(
            parts.hostname,
            port,
            dms.recipients,
            mail_from,
            lmtp=parts.scheme == "lmtp",
            timeout=timeout,
            local_hostname=local_hostname,
        )
    except ValueError as exc:
        raise ConfigError(f"[dms] recipients: {exc}") from None
