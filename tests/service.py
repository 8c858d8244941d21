"""The whole gateway for service-level tests: a ``gateway.toml`` on the development PKI, and a runner.

``write_config(tmp_path, pki, dms=..., axis=...)`` writes a complete configuration (identity, pinned
trust, the organisation key and TSA of the development PKI, a directory of one partner, SQLite
store and spool under ``tmp_path``, every listener on an ephemeral loopback port) and returns its
path. ``extra`` appends TOML (later keys of a table must not repeat earlier ones: write whole
tables that the base leaves out, or use the keyword arguments).

``running(config)`` runs ``gateway.app.serve`` on the test's event loop and yields the bound
addresses (``Running``); leaving the block stops it gracefully, as SIGTERM would.

For tests that need the gateway as a separate process (kill -9), pick ports with
``tests.smtpsink.free_port()``, pass them as ``smtp_listen=`` etc., and start ``gateway serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosmtplib

from gateway.app import Running, serve
from gateway.cli.config import load_settings
from gateway.clock import SystemClock
from gateway.devpki import DevPKI, fingerprint
from gateway.edxml.model import StatusPackage
from gateway.edxml.parse import parse
from gateway.pipeline.mails import find_package
from gateway.store import MessageView, Store
from tests.smtpsink import Captured

__all__ = [
    "OURS",
    "OUR_MAIL",
    "PARTNER",
    "PARTNER_MAIL",
    "SEAL_IMAGE",
    "health",
    "queued_id",
    "receipt_log",
    "running",
    "send_mail",
    "status_of",
    "until",
    "work_item",
    "work_items",
    "write_config",
]

OURS = "000.00.01.H53"
"""Our OrganId (Văn phòng UBND tỉnh Tây Ninh)."""
OUR_MAIL = "vanthu@tayninh.gov.vn"
PARTNER = "000.00.00.G22"
"""The partner agency in the directory (Văn phòng Chính phủ)."""
PARTNER_MAIL = "vanthu@chinhphu.vn"
SEAL_IMAGE = Path(__file__).resolve().parent.parent / "config" / "samples" / "con-dau-mau.png"


def _q(value: str | Path) -> str:
    return json.dumps(str(value), ensure_ascii=False)


def write_config(
    tmp_path: Path,
    pki: DevPKI,
    *,
    dms: str = "maildir:dms",
    dms_recipients: tuple[str, ...] = (),
    axis: str = "maildir:axis",
    smtp_listen: str = "127.0.0.1:0",
    submission_listen: str = "127.0.0.1:0",
    http_listen: str = "127.0.0.1:0",
    inline_verdict_seconds: float = 0.0,
    workers: int = 2,
    retry_initial_seconds: float = 1.0,
    retry_max_seconds: float = 5.0,
    give_up_hours: float = 48.0,
    defer_max_age_hours: float = 24.0,
    tsa_url: str | None = None,
    tsa_attempts: int = 1,
    tsa_timeout_seconds: float = 10.0,
    policy: Path | None = None,
    extra: str = "",
) -> Path:
    """Write ``tmp_path/gateway.toml`` for a gateway on ``pki`` and return its path."""
    layout = pki.layout
    directory = tmp_path / "directory.toml"
    directory.write_text(
        f'[[agency]]\norgan_id = "{PARTNER}"\nname = "Văn phòng Chính phủ"\nmail = ["{PARTNER_MAIL}"]\n',
        encoding="utf-8",
    )
    recipients = ", ".join(_q(r) for r in dms_recipients)
    lines = [
        "[identity]",
        f'organ_ids = ["{OURS}"]',
        'organ_name = "Văn phòng Ủy ban nhân dân tỉnh Tây Ninh"',
        'organization_in_charge = "Ủy ban nhân dân tỉnh Tây Ninh"',
        f'email = "{OUR_MAIL}"',
        "",
        "[trust]",
        f"anchors = [{_q(layout.anchor('root'))}]",
        f'anchor_sha256 = ["{fingerprint(pki.certificate("root"))}"]',
        f"intermediates = [{_q(layout.intermediate('intermediate'))}]",
        "",
        "[verify]",
        f"directory = {_q(directory)}",
        *([f"policy = {_q(policy)}"] if policy is not None else []),
        "fetch_timeout_seconds = 5",
        "",
        "[sign]",
        f"pkcs12 = {_q(layout.p12('org'))}",
        f"pkcs12_password_file = {_q(layout.password_file)}",
        f"tsa_url = {_q(tsa_url or pki.urls.tsa)}",
        f"tsa_attempts = {tsa_attempts}",
        f"tsa_timeout_seconds = {tsa_timeout_seconds}",
        f"seal_image = {_q(SEAL_IMAGE)}",
        "",
        "[store]",
        f"url = {_q('sqlite+aiosqlite:///' + str(tmp_path / 'gateway.db'))}",
        f"spool = {_q(tmp_path / 'spool')}",
        "",
        "[smtp]",
        f'listen = "{smtp_listen}"',
        'hostname = "gateway.test"',
        f"inline_verdict_seconds = {inline_verdict_seconds}",
        "",
        "[submission]",
        f'listen = "{submission_listen}"',
        'hostname = "gateway.test"',
        "",
        "[dms]",
        f"target = {_q(dms)}",
        f"recipients = [{recipients}]",
        'notify = "vanthu-noi-bo@tayninh.gov.vn"',
        "",
        "[axis]",
        f"relay = {_q(axis)}",
        f'mail_from = "{OUR_MAIL}"',
        'starttls = "never"',
        "timeout_seconds = 10",
        "",
        "[queue]",
        f"workers = {workers}",
        f"retry_initial_seconds = {retry_initial_seconds}",
        f"retry_max_seconds = {retry_max_seconds}",
        f"give_up_hours = {give_up_hours}",
        f"defer_max_age_hours = {defer_max_age_hours}",
        "",
        "[http]",
        f'listen = "{http_listen}"',
        "",
        extra,
    ]
    path = tmp_path / "gateway.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def running(config: Path, *, grace: float = 10.0) -> AsyncIterator[Running]:
    """Serve ``config`` on this event loop; yield where it listens; stop it on exit."""
    settings = load_settings(config)
    stop = asyncio.Event()
    started: asyncio.Future[Running] = asyncio.get_running_loop().create_future()

    def ready(where: Running) -> None:
        started.set_result(where)

    task = asyncio.create_task(serve(settings, config_dir=config.parent, stop=stop, ready=ready, grace=grace))
    waiting: list[asyncio.Future[Any]] = [task, started]
    done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED, timeout=60)
    if task in done:
        task.result()  # raises why it did not start
        raise AssertionError("serve returned before it was ready")
    if started not in done:
        task.cancel()
        raise AssertionError("the gateway did not start within 60 s")
    try:
        yield started.result()
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=grace + 30)


async def health(where: Running) -> tuple[int, dict[str, Any]]:
    """``GET /healthz`` (status, body)."""
    host, port = where.http

    def fetch() -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    return await asyncio.to_thread(fetch)


@contextlib.asynccontextmanager
async def receipt_log(config: Path) -> AsyncIterator[Store]:
    """The receipt log of the gateway ``write_config`` configured, opened from outside (never migrated)."""
    store = await Store.open(f"sqlite+aiosqlite:///{config.parent / 'gateway.db'}", clock=SystemClock(), migrate=False)
    try:
        yield store
    finally:
        await store.close()


async def work_item(config: Path, id: int) -> MessageView:
    """One work item of the receipt log, read from outside (it must exist)."""
    async with receipt_log(config) as store:
        item = await store.get(id)
    assert item is not None, f"no work item {id}"
    return item


async def work_items(config: Path, kind: str) -> list[MessageView]:
    """Every work item of ``kind``, oldest first."""
    async with receipt_log(config) as store:
        return list(reversed(await store.list(kind=kind)))


async def until(check: Callable[[], Awaitable[bool]], within: float = 60.0) -> None:
    """Poll ``check`` every 0.1 s until it is true; fail after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {within:g} s")
        await asyncio.sleep(0.1)


async def send_mail(
    port: int, mail: bytes, *, mail_from: str = "bounces@chinhphu.vn", rcpt: str = OUR_MAIL
) -> tuple[int, str]:
    """Send one mail to the listener on ``port``; the DATA reply as ``(code, text)``."""
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60)
    await client.connect()
    try:
        errors, reply = await client.sendmail(mail_from, [rcpt], mail)
        assert not errors
        return 250, reply
    except aiosmtplib.SMTPDataError as exc:
        return exc.code, exc.message
    finally:
        await client.quit()


def queued_id(reply: str) -> int:
    """The work item of ``250 2.0.0 Ok: queued as <id>``."""
    return int(reply.rsplit(" ", 1)[1])


def status_of(captured: Captured) -> StatusPackage:
    """The status package a captured mail carries."""
    found = find_package(captured.data).package
    assert found is not None
    package = parse(found).package
    assert isinstance(package, StatusPackage)
    return package
