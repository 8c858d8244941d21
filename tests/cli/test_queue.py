"""``gateway queue list|retry|release`` on a real store file, as an admin runs them.

The configuration is the service tests' (``tests.service.write_config``: the development PKI,
SQLite and spool under ``tmp_path``, the DMS a Maildir ``dms/`` next to ``gateway.toml``). Work
items are made through the store API in the states an admin finds them in; the commands run
in process through ``typer.testing.CliRunner``.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import getpass
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from gateway.cli import app
from gateway.clock import FixedClock
from gateway.devpki import DevPKI
from gateway.edxml.build import build
from gateway.errors import ConfigError
from gateway.pipeline.admin import RELEASED_VERDICT
from gateway.pipeline.context import delivery_key
from gateway.store import Intake, MessageView, Spool, Store
from tests.pdfs import SignedPdfs
from tests.pipeline.test_receive import carrying, document
from tests.service import PARTNER_MAIL, write_config

RECEIVED = datetime(2025, 3, 14, 2, 5, 7, tzinfo=UTC)
"""09:05:07 in Vietnam."""


@dataclass
class Site:
    """A configured gateway with one work item in each state an admin meets."""

    config: Path
    held: MessageView
    deferred: MessageView
    delivered: MessageView
    refused: MessageView
    notice: MessageView
    mail: bytes
    """The held item's original mail."""

    @property
    def url(self) -> str:
        return f"sqlite+aiosqlite:///{self.config.parent / 'gateway.db'}"

    def queue(self, *args: str) -> Result:
        return CliRunner().invoke(app, ["queue", *args, "--config", str(self.config)])

    def get(self, item_id: int) -> MessageView:
        async def read() -> MessageView | None:
            async with await Store.open(self.url, clock=FixedClock(), migrate=False) as store:
                return await store.get(item_id)

        found = asyncio.run(read())
        assert found is not None
        return found

    def history(self, item_id: int) -> list[tuple[str, str]]:
        async def read() -> list[tuple[str, str]]:
            async with await Store.open(self.url, clock=FixedClock(), migrate=False) as store:
                return [(e.event, str(e.data.get("reason", ""))) for e in await store.history(item_id)]

        return asyncio.run(read())

    def notices(self, parent: int) -> list[MessageView]:
        async def read() -> list[MessageView]:
            async with await Store.open(self.url, clock=FixedClock(), migrate=False) as store:
                return await store.list(kind="notice", parent_id=parent)

        return asyncio.run(read())

    def dms(self) -> list[Path]:
        new = self.config.parent / "dms" / "new"
        return sorted(new.iterdir()) if new.is_dir() else []


@pytest.fixture
def site(tmp_path: Path, dev_pki: DevPKI, signed_pdfs: SignedPdfs, monkeypatch: pytest.MonkeyPatch) -> Site:
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    config = write_config(tmp_path, dev_pki)
    mail = carrying(build(document(("cong-van.pdf", signed_pdfs.main))))

    async def fill() -> Site:
        clock = FixedClock(RECEIVED)
        spool = Spool(tmp_path / "spool")
        async with await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}", clock=clock) as store:

            async def inbound(raw: bytes) -> MessageView:
                sha256 = await spool.put(raw)
                row = await store.record_intake(
                    Intake(kind="inbound", channel="smtp", sha256=sha256, size=len(raw), mail_from=PARTNER_MAIL)
                )
                await store.claim(["inbound"], clock.now())
                return row

            held = await inbound(mail)
            await store.hold(held.id, "deferred for 1 day, 0:00:00 (over defer_max_age): ocsp-unreachable")
            deferred = await inbound(mail + b"\r\n")
            await store.defer(deferred.id, until=RECEIVED + timedelta(hours=1), error="verdict deferred: tsa-down")
            delivered = await inbound(mail + b"\r\n\r\n")
            await store.transition(delivered.id, "delivered", reason="accepted", event="delivered")
            refused = await inbound(mail + b"\r\n\r\n\r\n")
            await store.transition(refused.id, "refused", reason="verdict refused: misaddressed")
            sha256 = await spool.put(b"Subject: 01\r\n\r\nstatus 01\r\n")
            notice = await store.record_intake(
                Intake(kind="notice", channel="internal", sha256=sha256, size=26, recipient=PARTNER_MAIL)
            )
            await store.claim(["notice"], clock.now())
            await store.hold(notice.id, "unexpected: RuntimeError")
            return Site(config, held, deferred, delivered, refused, notice, mail)

    return asyncio.run(fill())


def rows(output: str) -> dict[int, str]:
    """Table lines by their item id (the header and summary lines have none)."""
    found = {}
    for line in output.splitlines():
        first = line.split(maxsplit=1)[0] if line.strip() else ""
        if first.isdigit():
            found[int(first)] = line
    return found


# --------------------------------------------------------------------------- list


def test_list_shows_held_and_deferred_with_vietnam_times(site: Site) -> None:
    result = site.queue("list")
    assert result.exit_code == 0, result.output
    shown = rows(result.stdout)
    assert sorted(shown) == [site.held.id, site.deferred.id, site.notice.id]
    assert "received (+07:00)" in result.stdout
    held, deferred = shown[site.held.id], shown[site.deferred.id]
    assert "hold" in held
    assert "2025-03-14T09:05:07+07:00" in held
    assert "over defer_max_age" in held
    assert PARTNER_MAIL in held
    assert "2025-03-14T10:05:07+07:00" in deferred  # the next attempt
    assert "tsa-down" in deferred
    assert "3 item(s): 2 held, 1 deferred" in result.stderr


def test_list_filters_and_json(site: Site) -> None:
    listed = site.queue("list", "--json", "--kind", "inbound")
    assert listed.exit_code == 0, listed.output
    items = json.loads(listed.stdout)
    assert [i["id"] for i in items] == [site.held.id, site.deferred.id]
    deferred = items[1]
    assert (deferred["state"], deferred["attempts"], deferred["mail_from"]) == ("deferred", 1, PARTNER_MAIL)
    assert deferred["received_at"] == "2025-03-14T09:05:07+07:00"
    assert deferred["next_attempt_at"] == "2025-03-14T10:05:07+07:00"
    assert deferred["last_error"] == "verdict deferred: tsa-down"
    everything = json.loads(site.queue("list", "--json", "--state", "all").stdout)
    assert {i["id"] for i in everything} == {
        site.held.id,
        site.deferred.id,
        site.delivered.id,
        site.refused.id,
        site.notice.id,
    }
    only_held = json.loads(site.queue("list", "--json", "--state", "hold").stdout)
    assert [i["id"] for i in only_held] == [site.held.id, site.notice.id]
    none = site.queue("list", "--state", "sent")
    assert (none.exit_code, none.stdout) == (0, "")
    assert "no matching work items" in none.stderr
    bad = site.queue("list", "--state", "lost")
    assert isinstance(bad.exception, ConfigError)
    assert bad.exception.exit_status == 2
    assert "not a state" in str(bad.exception)


# --------------------------------------------------------------------------- retry


def test_retry_puts_items_back_and_names_those_it_cannot(site: Site) -> None:
    ids = [site.held.id, site.deferred.id, site.notice.id, site.delivered.id, 999]
    result = site.queue("retry", *map(str, ids), "--reason", "OCSP  của VGCA\nđã chạy lại")
    assert result.exit_code == 1, result.output
    for item in (site.held, site.deferred, site.notice):
        after = site.get(item.id)
        assert after.state == "incoming"
        assert after.next_attempt_at is not None
        assert after.next_attempt_at > RECEIVED  # due now, not at the old schedule
        event, reason = site.history(item.id)[-1]
        assert (event, reason) == ("transition", f"admin retry: OCSP của VGCA đã chạy lại (by {getpass.getuser()})")
        assert f"{item.id}: back to incoming ({item.kind}, was" in result.stdout
    assert site.get(site.delivered.id).state == "delivered"
    assert f"work item {site.delivered.id} is delivered (finished): it cannot be retried" in result.stderr
    assert "no work item 999" in result.stderr
    again = site.queue("retry", str(site.held.id))
    assert again.exit_code == 1
    assert "is incoming" in again.stderr


def test_retry_without_a_reason_still_records_who(site: Site) -> None:
    result = site.queue("retry", str(site.held.id))
    assert result.exit_code == 0, result.output
    assert site.history(site.held.id)[-1][1] == f"admin retry: retry requested (by {getpass.getuser()})"


# --------------------------------------------------------------------------- release


def test_release_delivers_to_the_maildir_exactly_once(site: Site) -> None:
    reason = "Đã xác minh với Văn phòng Chính phủ qua điện thoại"
    first = site.queue("release", str(site.held.id), "--reason", reason)
    assert first.exit_code == 0, first.output
    key = delivery_key(site.held.id, site.held.sha256)
    assert f"{site.held.id}: released to the DMS as {key}; 1 status 01 notice(s) to the sender" in first.stdout
    [delivered] = site.dms()
    assert delivered.name == key
    raw = delivered.read_bytes()
    assert raw.endswith(site.mail)  # the original mail, unaltered
    head = email.message_from_bytes(raw, policy=email.policy.default)
    who = getpass.getuser()
    assert head["X-Gateway-Verdict"] == RELEASED_VERDICT
    assert head["X-Gateway-Id"] == key
    assert str(head["X-Gateway-Report"]) == f"{site.held.id}; released: {reason} (by {who})"
    assert site.get(site.held.id).state == "delivered"
    assert site.history(site.held.id)[-1] == ("released", f"released by an admin: {reason} (by {who})")
    [notice] = site.notices(site.held.id)
    assert (notice.recipient, notice.state) == (PARTNER_MAIL, "incoming")

    again = site.queue("release", str(site.held.id), "--reason", reason)
    assert again.exit_code == 1
    assert f"work item {site.held.id} is delivered (finished)" in again.stderr
    assert site.dms() == [delivered]
    assert len(site.notices(site.held.id)) == 1


def test_release_takes_deferred_refuses_refused_and_other_kinds(site: Site) -> None:
    result = site.queue(
        "release", str(site.deferred.id), str(site.refused.id), str(site.notice.id), "--reason", "checked"
    )
    assert result.exit_code == 1, result.output
    assert site.get(site.deferred.id).state == "delivered"
    assert [p.name for p in site.dms()] == [delivery_key(site.deferred.id, site.deferred.sha256)]
    assert f"work item {site.refused.id} was refused: a refusal is final" in result.stderr
    assert site.get(site.refused.id).state == "refused"
    assert f"work item {site.notice.id} is a notice" in result.stderr
    assert site.get(site.notice.id).state == "hold"


def test_release_needs_a_reason_and_a_configuration(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = site.queue("release", str(site.held.id))
    assert missing.exit_code == 2
    assert "--reason" in missing.output
    blank = site.queue("release", str(site.held.id), "--reason", "  ")
    assert isinstance(blank.exception, ConfigError)
    assert "--reason is required" in str(blank.exception)
    monkeypatch.chdir(tmp_path / "spool")  # no ./gateway.toml here
    unconfigured = CliRunner().invoke(app, ["queue", "release", str(site.held.id), "--reason", "checked"])
    assert isinstance(unconfigured.exception, ConfigError)
    assert "needs the gateway's configuration file" in str(unconfigured.exception)
    assert site.get(site.held.id).state == "hold"
    assert site.dms() == []
