"""A notice's row carries the status code of the package it attaches, from the moment it is made.

Through the real pipeline (``process_inbound`` refuses, ``process_notice`` sends, on the real
store and spool of ``tests.pipeline.test_receive``'s world), then read back as an archivist does:
``gateway log search``, ``gateway log show`` and ``gateway log verify-chain`` in a separate
process. The code is part of the notice's ``received`` journal event, so the replay of
``verify-chain`` covers it; rows recorded before notices carried their code (``None``) still
verify, and the record still names them from the spooled mail's ``X-Gateway-Notice`` header.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.archive.record import DocumentRecord, load_record
from gateway.devpki import DevPKI
from gateway.edxml.build import build
from gateway.pipeline.notices import prepare_notice, status_02, text_02
from gateway.pipeline.replies import arrival_notices
from gateway.pipeline.send import process_notice
from gateway.store import Intake, MessageView
from tests.command import gateway
from tests.pdfs import SignedPdfs
from tests.pipeline.test_notices import REVOKED, parent
from tests.pipeline.test_receive import SENDER_MAIL, World, carrying, document, world
from tests.store.helpers import raw_sql

SENT_02 = ("Đã gửi trạng thái 02 Từ chối tiếp nhận", "status 02 refused sent")
UNNAMED = ("Đã gửi thông báo", "notice sent")


@pytest.fixture(scope="module")
def misaddressed(signed_pdfs: SignedPdfs) -> bytes:
    """A lawful package addressed to another organ: refused (status 02 to the directory's address)."""
    return build(document(("cong-van.pdf", signed_pdfs.main), to="000.00.32.H53"))


async def refuse(w: World, raw: bytes) -> tuple[MessageView, MessageView]:
    """``raw`` refused by the pipeline: the item and its one notice."""
    item = await w.receive(carrying(raw))
    done = await w.process()
    assert (done.id, done.state) == (item.id, "refused")
    [notice] = await w.notices(item.id)
    return done, notice


async def send_notices(w: World) -> None:
    """What the scheduler does with due notices: claim each and send it (to the twin relay)."""
    while claimed := await w.store.claim(["notice"], w.clock.now(), limit=1):
        await process_notice(claimed[0], w.ctx)


def sent_labels(record: DocumentRecord) -> dict[str, tuple[str, str]]:
    """The timeline's "notice sent" steps by notice (``item <id>``)."""
    return {e.detail or "": (e.label_vi, e.label_en) for e in record.timeline() if e.what == "notice-sent"}


def site(tmp_path: Path) -> Path:
    """A gateway.toml over the world's store and spool, for the ``gateway`` command."""
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[store]\nurl = "sqlite+aiosqlite:///{tmp_path / "gateway.db"}"\nspool = "{tmp_path / "spool"}"\n',
        encoding="utf-8",
    )
    return config


def test_a_refused_packages_notice_row_says_02_and_its_received_event_journals_it(
    tmp_path: Path, dev_pki: DevPKI, misaddressed: bytes
) -> None:
    async def go() -> None:
        async with world(tmp_path, dev_pki) as w:
            item, notice = await refuse(w, misaddressed)
            assert (notice.kind, notice.recipient, notice.status_code) == ("notice", SENDER_MAIL, "02")
            [received] = [j for j in await w.store.history(notice.id) if j.event == "received"]
            assert received.data["status_code"] == "02"
            # An inbound item's received event keeps its shape: no status code at intake.
            assert "status_code" not in (await w.store.history(item.id))[0].data
            # A status 01 is recorded as one too (an acceptance, or an admin's release).
            [arrival] = await arrival_notices(item, w.ctx, document())
            assert arrival.status_code == "01"
            # A plain notice (a mail without a package) attaches no status package: no code.
            bare = await w.receive(b"Subject: hello\r\n\r\nno package here\r\n")
            assert (await w.process()).state == "refused"
            [plain] = await w.notices(bare.id)
            assert (plain.recipient, plain.status_code) == (bare.mail_from, None)
            assert (await w.store.verify_chain()).ok

    asyncio.run(go())


def test_search_show_and_verify_chain_read_the_code_from_the_row_without_the_spooled_mail(
    tmp_path: Path, dev_pki: DevPKI, misaddressed: bytes
) -> None:
    async def go() -> tuple[MessageView, MessageView]:
        async with world(tmp_path, dev_pki) as w:
            item, notice = await refuse(w, misaddressed)
            await send_notices(w)
            assert [s.rcpt_to for s in w.sender.sent] == [(SENDER_MAIL,)]
            w.spool.path(notice.sha256).unlink()  # the notice's mail is gone: only the row is left
            record = await load_record(w.store, item.id, spool=w.spool)
            assert sent_labels(record) == {f"item {notice.id}": SENT_02}
            assert record.to_json()["children"][0]["status_code"] == "02"
            return item, notice

    item, notice = asyncio.run(go())
    config = site(tmp_path)
    found = gateway("log", "search", "--direction", "out", "--format", "json", "--config", config)
    assert found.returncode == 0, found.stderr
    [row] = [i for i in json.loads(found.stdout)["items"] if i["id"] == notice.id]
    assert (row["kind"], row["state"], row["status_code"]) == ("notice", "sent", "02")
    shown = gateway("log", "show", str(item.id), "--json", "--config", config)
    assert shown.returncode == 0, shown.stderr
    steps = [t for t in json.loads(shown.stdout)["timeline"] if t["what"] == "notice-sent"]
    assert [(t["label_vi"], t["label_en"]) for t in steps] == [SENT_02]
    checked = gateway("log", "verify-chain", "--config", config)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_an_old_row_without_a_code_is_named_from_the_spool_and_both_kinds_of_row_verify(
    tmp_path: Path, dev_pki: DevPKI, misaddressed: bytes
) -> None:
    """A notice recorded before rows carried their code: ``None`` in the row and in its journal."""

    async def go() -> tuple[MessageView, MessageView, dict[str, tuple[str, str]], dict[str, tuple[str, str]]]:
        async with world(tmp_path, dev_pki) as w:
            _, new = await refuse(w, misaddressed)  # a row written now
            item = await parent(w)
            subject, text = text_02(document(), [REVOKED], signed=True)
            made = await prepare_notice(
                w.ctx, parent=item, recipient=SENDER_MAIL, kind="status-02",
                package=status_02(w.ctx, item, document(), [REVOKED]), subject=subject, text=text,
            )  # fmt: skip
            old = await w.store.record_intake(replace(made, status_code=None))  # as the store had it before
            assert old.status_code is None
            assert "status_code" not in (await w.store.history(old.id))[0].data
            await send_notices(w)
            with_spool = sent_labels(await load_record(w.store, item.id, spool=w.spool))
            without = sent_labels(await load_record(w.store, item.id))
            check = await w.store.verify_chain()
            assert check.ok, check.problems
            assert check.messages == 4  # the refused inbound, its notice, the parent, the old notice
            return new, old, with_spool, without

    new, old, with_spool, without = asyncio.run(go())
    assert with_spool == {f"item {old.id}": SENT_02}  # from the mail's X-Gateway-Notice header
    assert without == {f"item {old.id}": UNNAMED}  # no row code, no spool: no guess
    checked = gateway("log", "verify-chain", "--config", site(tmp_path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The code is evidence: changed behind the store's back, the replay names the row and column.
    raw_sql(tmp_path, "UPDATE messages SET status_code = '01' WHERE id = ?", new.id)
    tampered = gateway("log", "verify-chain", "--config", site(tmp_path))
    assert tampered.returncode != 0
    assert f"message {new.id}: status_code is '01' but the journal says '02'" in tampered.stdout + tampered.stderr


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": "inbound", "channel": "smtp", "status_code": "02"}, "for a notice only, not for kind 'inbound'"),
        ({"status_code": "2"}, "01 to 16, not '2'"),
        ({"status_code": "17"}, "01 to 16, not '17'"),
        ({"status_code": "00"}, "01 to 16, not '00'"),
    ],
)
def test_an_intake_status_code_is_a_notices_and_an_edxml_code(changes: dict[str, str], message: str) -> None:
    values: dict[str, object] = {"kind": "notice", "channel": "internal", "sha256": "a" * 64, "size": 1}
    values.update(changes)
    with pytest.raises(ValueError, match=message):
        Intake(**values)  # type: ignore[arg-type]
