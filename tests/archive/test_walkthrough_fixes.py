"""What a fresh-clone walkthrough found in the archivist's tools, pinned.

* ``finding_codes`` (search CSV/JSON, ``GET /api/v1/messages``) names each code once, in the order
  the report first names it; the findings themselves keep every occurrence.
* Every refused search value carries ``accepted`` (the forms it takes), not only the unknown
  parameters: the HTTP API hands it on.
* An evidence bundle without the original mail is not evidence: ``build_evidence`` refuses it
  (naming the spool directory it looked in) unless asked for a partial bundle, and its policy
  warning names the file it expected instead of guessing a cause.

Rule replay's "missing from the spool" naming the spool directory is ``test_replay.py``'s.
"""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pytest

from gateway.archive.evidence import EvidenceSummary, OriginalUnavailable, build_evidence
from gateway.archive.record import finding_codes, message_json
from gateway.archive.search import FilterError, build_filter
from gateway.cli.config import load_settings
from gateway.store import MessageView, Spool
from tests.archive.seeded import SeededLog
from tests.service import receipt_log, work_item

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

NOW = datetime(2025, 3, 14, 2, 5, 7, tzinfo=UTC)


def _finding(code: str, where: str) -> dict[str, str]:
    return {"code": code, "action": "reject", "where": where, "message_vi": "x", "message_en": "y"}


def _view(findings: tuple[dict[str, str], ...] | None) -> MessageView:
    return MessageView(
        id=4, kind="inbound", direction="in", state="refused", channel="smtp", mail_from="vanthu@vpcp.gov.vn",
        rcpt_to=("vanthu@tayninh.gov.vn",), message_id_header=None, sha256="0" * 64, size=1, received_at=NOW,
        sent_at=None, document_id=None, from_organ=None, to_organs=None, code=None, subject=None, package_kind=None,
        status_code=None, verdict="refused", indication="TOTAL_FAILED", findings=findings, report=None,
        policy_sha256=None, attempts=0, next_attempt_at=None, last_error=None, state_changed_at=NOW, parent_id=None,
        recipient=None, imap_key=None,
    )  # fmt: skip


# ---------------------------------------------------------------- finding codes


def test_finding_codes_name_each_code_once_in_first_seen_order() -> None:
    """The tampered sample: one pdf-signature-invalid per signature, then the modification."""
    view = _view(
        (
            _finding("pdf-signature-invalid", "cong-van.pdf#1"),
            _finding("pdf-signature-invalid", "cong-van.pdf#2"),
            _finding("pdf-modified-after-signing", "cong-van.pdf#1"),
            _finding("pdf-modified-after-signing", "cong-van.pdf#2"),
            _finding("envelope-signature-absent", "envelope"),
            _finding("pdf-signature-invalid", "phu-luc.pdf#1"),
        )
    )
    expected = ["pdf-signature-invalid", "pdf-modified-after-signing", "envelope-signature-absent"]
    assert finding_codes(view) == expected
    assert message_json(view)["finding_codes"] == expected
    assert len(view.findings or ()) == 6  # the detail keeps every finding


def test_finding_codes_of_an_item_without_findings() -> None:
    assert finding_codes(_view(None)) == []
    assert finding_codes(None) == []
    assert message_json(_view(()))["finding_codes"] == []


# ---------------------------------------------------------------- accepted forms


@pytest.mark.parametrize(
    ("options", "field", "accepted"),
    [
        ({"verdict": "maybe"}, "verdict", "accepted, refused, deferred"),
        ({"direction": "sideways"}, "direction", "in, out"),
        ({"limit": "0"}, "limit", "a whole number in 1..500"),
        ({"before_id": "x"}, "before_id", "a whole number from 1"),
        ({"from_": "yesterday"}, "from", "an age (30d"),
        ({"to": "2025-13-45"}, "to", "a date (2025-03-14)"),
        ({"from_": "2025-03-15", "to": "2025-03-14"}, "to", "a time after from (2025-03-15T00:00:00+07:00)"),
        ({"sender": "x" * 300}, "sender", "text of at most 255 characters"),
        ({"text": "a\x01b"}, "text", "plain text"),
    ],
)
def test_every_refused_search_value_says_what_is_accepted(options: dict[str, str], field: str, accepted: str) -> None:
    with pytest.raises(FilterError) as refused:
        build_filter(now=NOW, **options)
    assert refused.value.field == field
    assert accepted in refused.value.accepted


# ---------------------------------------------------------------- evidence without the original


def _spool_without(seeded: SeededLog, tmp_path: Path, *sha256s: str) -> Path:
    """A copy of the seeded spool with the named files removed."""
    copy = Path(shutil.copytree(load_settings(seeded.config).store.spool, tmp_path / "spool"))
    for sha256 in sha256s:
        gone = Spool(copy).path(sha256)
        gone.chmod(0o600)
        gone.unlink()
    return copy


def _evidence(seeded: SeededLog, id: int, spool: Path, out: BytesIO, *, partial: bool = False) -> EvidenceSummary:
    async def go() -> EvidenceSummary:
        async with receipt_log(seeded.config) as store:
            return await build_evidence(store, Spool(spool), id, out, partial=partial)

    return asyncio.run(go())


def test_a_bundle_without_its_original_is_refused_naming_the_spool(seeded_log: SeededLog, tmp_path: Path) -> None:
    item = asyncio.run(work_item(seeded_log.config, seeded_log.ids["tampered"]))
    spool = _spool_without(seeded_log, tmp_path, item.sha256)
    out = BytesIO()
    with pytest.raises(OriginalUnavailable) as refused:
        _evidence(seeded_log, item.id, spool, out)
    assert out.getvalue() == b""  # nothing written
    assert refused.value.exit_status == 1
    assert refused.value.spool == spool
    message = str(refused.value)
    assert f"the spool {spool}" in message
    assert str(Spool(spool).path(item.sha256)) in message
    assert "not evidence" in message


def test_a_partial_bundle_says_it_lacks_the_original(seeded_log: SeededLog, tmp_path: Path) -> None:
    item = asyncio.run(work_item(seeded_log.config, seeded_log.ids["tampered"]))
    spool = _spool_without(seeded_log, tmp_path, item.sha256)
    out = BytesIO()
    summary = _evidence(seeded_log, item.id, spool, out, partial=True)
    assert not summary.original
    names = {f.name for f in summary.files}
    assert "original.eml" not in names
    assert {"report.json", "record.json", "chain/entries.json", "SHA256SUMS"} <= names
    assert any(w.startswith("original.eml is not in the bundle") and str(spool) in w for w in summary.warnings)
    assert out.getvalue()


def test_a_complete_bundle_says_it_has_the_original(seeded_log: SeededLog, tmp_path: Path) -> None:
    item = asyncio.run(work_item(seeded_log.config, seeded_log.ids["valid"]))
    summary = _evidence(seeded_log, item.id, _spool_without(seeded_log, tmp_path), BytesIO())
    assert summary.original
    assert summary.warnings == ()


def test_the_policy_warning_names_the_file_it_expected_and_guesses_no_cause(
    seeded_log: SeededLog, tmp_path: Path
) -> None:
    item = asyncio.run(work_item(seeded_log.config, seeded_log.ids["unsigned"]))
    assert item.policy_sha256 is not None
    spool = _spool_without(seeded_log, tmp_path, item.policy_sha256)
    summary = _evidence(seeded_log, item.id, spool, BytesIO())
    [warning] = summary.warnings
    assert str(Spool(spool).path(item.policy_sha256)) in warning
    assert "?" not in warning
    assert "never kept" not in warning
