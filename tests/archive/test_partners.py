"""The partner report over the seeded log, and over rows recorded before reports carried expiries."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.archive.partners import PartnersReport, partner_report
from gateway.clock import SystemClock, iso_vn
from gateway.devpki import fingerprint
from gateway.store import Intake, Store
from gateway.verify.directory import Agency, Directory
from tests.archive.seeded import PARTNER_2, SeededLog
from tests.service import PARTNER, receipt_log, work_item

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

NAMES = Directory({PARTNER: Agency(PARTNER, name="Văn phòng Chính phủ")})


def _report(seeded: SeededLog, **kwargs: Any) -> PartnersReport:
    async def go() -> PartnersReport:
        async with receipt_log(seeded.config) as store:
            return await partner_report(store, **kwargs)

    return asyncio.run(go())


def test_each_sender_has_its_packages_verdicts_and_refusal_codes(seeded_log: SeededLog) -> None:
    """Two senders; the Government Office's refusals are counted by the codes that decided them (A3, A8)."""
    report = _report(seeded_log, since=None, directory=NAMES)
    first, second = report.partners
    assert (first.organ_id, first.name, first.packages) == (PARTNER, "Văn phòng Chính phủ", 4)
    assert first.verdicts == {"accepted": 2, "refused": 2}
    assert first.refusals_by_code["pdf-unsigned"] == 1
    assert first.refusal_rate("pdf-unsigned") == 0.25
    assert {"pdf-signature-invalid", "pdf-modified-after-signing"} & set(first.refusals_by_code)
    assert "envelope-signature-absent" not in first.refusals_by_code  # ignored: it decided nothing
    assert (second.organ_id, second.name, second.packages) == (PARTNER_2.organ_id, None, 1)
    assert (second.verdicts, second.refusals_by_code) == ({"accepted": 1}, {})
    assert report.to_json()["packages"] == 5


def test_signer_certificates_show_their_expiry_soonest_first(seeded_log: SeededLog) -> None:
    """The person and organisation certificates of the development PKI, with their real not-after."""
    pki = seeded_log.pki
    report = _report(seeded_log, since=None)
    partner = next(p for p in report.partners if p.organ_id == PARTNER)
    by_sha = {s.sha256: s for s in partner.signers}
    person, org = (by_sha[fingerprint(pki.certificate(label)).replace(":", "")] for label in ("person", "org"))
    assert person.not_after == pki.certificate("person").not_valid_after_utc
    assert org.not_after == pki.certificate("org").not_valid_after_utc
    # In the tampered package the signatures are broken, so no role is given them there.
    assert (person.roles, org.roles) == (("person", "unknown"), ("organisation", "unknown"))
    assert person.packages == org.packages == 3  # valid, no-envelope, tampered (unsigned has none)
    expiries = [s.not_after for s in partner.signers]
    assert expiries == sorted(e for e in expiries if e is not None)
    assert partner.digest_algorithms == {"sha256": 6}
    assert partner.weak == {}
    shown = report.to_json()["partners"][0]["signers"][0]
    assert shown["not_after"] == iso_vn(partner.signers[0].not_after)  # type: ignore[arg-type]
    assert shown["not_after"].endswith("+07:00")
    rows = report.signers_by_expiry()
    assert [s.not_after for _, s in rows] == sorted(s.not_after for _, s in rows)  # type: ignore[type-var]


def test_since_after_every_package_gives_an_empty_report(seeded_log: SeededLog) -> None:
    report = _report(seeded_log, since=SystemClock().now() + timedelta(minutes=1))
    assert report.partners == ()
    assert report.to_json()["packages"] == 0


def _old_style(report: Mapping[str, Any]) -> dict[str, Any]:
    """A report as recorded before ``signer_not_after`` existed, using SHA-1 under a legacy cut-off."""
    signatures = [{k: v for k, v in s.items() if k != "signer_not_after"} for s in report["signatures"]]
    for s in signatures:
        s["digest_algorithm"] = "sha1"
    return {**report, "signatures": signatures}


def test_rows_recorded_before_expiries_were_kept_say_unknown(seeded_log: SeededLog, tmp_path: Path) -> None:
    """No re-verification: an old row's expiry is unknown; weak/legacy algorithm findings are counted."""
    valid = asyncio.run(work_item(seeded_log.config, seeded_log.ids["valid"]))
    assert valid.report is not None
    legacy = {"code": "algorithm-legacy", "action": "warn", "where": "cong-van-101.pdf#1"}
    weak = {"code": "algorithm-weak", "action": "reject", "where": "cong-van-101.pdf#1"}

    async def go() -> PartnersReport:
        store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}", clock=SystemClock())
        try:
            for n, (verdict, findings) in enumerate([("accepted", [legacy]), ("refused", [weak]), (None, [])]):
                intake = Intake(kind="inbound", channel="smtp", sha256=hashlib.sha256(b"%d" % n).hexdigest(), size=1)
                item = await store.record_intake(intake)
                if verdict is not None:
                    old = _old_style(valid.report or {})
                    await store.record_verdict(item.id, old, verdict=verdict, findings=findings, from_organ="G09")
            return await partner_report(store, since=None)
        finally:
            await store.close()

    partner, nobody = asyncio.run(go()).partners
    assert (nobody.organ_id, nobody.verdicts, nobody.signers) == ("unknown", {"pending": 1}, ())
    assert partner.organ_id == "G09"
    assert partner.verdicts == {"accepted": 1, "refused": 1}
    assert partner.weak == {"algorithm-legacy": 1, "algorithm-weak": 1}
    assert partner.refusals_by_code == {"algorithm-weak": 1}
    assert partner.digest_algorithms == {"sha1": 4}
    assert {s.not_after for s in partner.signers} == {None}
    assert {s["not_after"] for s in partner.to_json()["signers"]} == {"unknown"}
