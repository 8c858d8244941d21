"""Rule replay over a log seeded by real packages (issue 6 "Proof": a stricter policy flips exactly
the packages it should).

The log is ``seeded_log``: five packages put through the real gateway (see
``tests/archive/seeded.py``). Each replay builds a verifier from the seeded gateway's own settings
with a proposed policy and re-judges the originals in its spool as of their receive times,
against the development PKI's live OCSP/CRL (A4, A5).
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.app import open_verifier, policy_from_settings
from gateway.archive.replay import ReplayResult, replay
from gateway.cli.config import load_settings
from gateway.store import Spool
from gateway.verify.policy import Policy, policy_from_toml
from tests.archive.seeded import NAMES, SeededLog
from tests.service import receipt_log, work_item

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

STRICTER = '[actions]\n"envelope-signature-absent" = "reject"\n'
LAXER = '[actions]\n"pdf-unsigned" = "warn"\n'


def _replay(seeded: SeededLog, policy: Policy | None, **kwargs: object) -> ReplayResult:
    settings = load_settings(seeded.config)

    async def go() -> ReplayResult:
        async with receipt_log(seeded.config) as store, open_verifier(settings, policy=policy) as verifier:
            return await replay(store, Spool(settings.store.spool), verifier, **kwargs)  # type: ignore[arg-type]

    return asyncio.run(go())


def _names(seeded: SeededLog, ids: list[int]) -> set[str]:
    by_id = {id: name for name, id in seeded.ids.items()}
    return {by_id[id] for id in ids}


def _fingerprint(seeded: SeededLog) -> dict[str, str]:
    """SHA-256 of every file of the seeded gateway's database and spool."""
    root = seeded.config.parent
    files = [p for p in sorted(root.glob("gateway.db*")) if p.is_file()]
    files += sorted(p for p in (root / "spool").rglob("*") if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


async def _chain(config: Path) -> tuple[bool, int]:
    async with receipt_log(config) as store:
        check = await store.verify_chain()
    return check.ok, check.count


def test_a_stricter_policy_flips_exactly_the_package_without_an_envelope_signature(seeded_log: SeededLog) -> None:
    """A2 made strict: ``envelope-signature-absent = reject`` refuses "no-envelope" and nothing else."""
    result = _replay(seeded_log, policy_from_toml(STRICTER, "stricter.toml"), since=None)
    [flip] = result.flips
    assert flip.id == seeded_log.ids["no-envelope"]
    assert (flip.old, flip.new, flip.codes) == ("accepted", "refused", ("envelope-signature-absent",))
    assert flip.document_id == seeded_log.documents["no-envelope"]
    assert flip.sender == "000.00.00.G22"
    assert result.by_sender == {"000.00.00.G22": {"accepted → refused": 1}}
    assert result.by_code == {"envelope-signature-absent": {"accepted → refused": 1}}
    assert (result.judged, result.unchanged, result.skipped) == (len(NAMES), len(NAMES) - 1, ())
    assert result.to_json()["totals"]["by_direction"] == {"accepted → refused": 1}


def test_the_same_policy_flips_nothing(seeded_log: SeededLog) -> None:
    """The policy the packages were judged under gives every recorded verdict again (A1–A8 are stable)."""
    seen: list[tuple[int, int]] = []
    policy = policy_from_settings(load_settings(seeded_log.config))
    result = _replay(seeded_log, policy, since=None, progress=lambda done, total: seen.append((done, total)))
    assert result.flips == ()
    assert (result.judged, result.unchanged) == (len(NAMES), len(NAMES))
    assert seen[0] == (0, len(NAMES))
    assert seen[-1] == (len(NAMES), len(NAMES))
    assert [done for done, _ in seen] == list(range(len(NAMES) + 1))


def test_a_laxer_policy_flips_exactly_the_unsigned_package(seeded_log: SeededLog) -> None:
    """A8 relaxed: ``pdf-unsigned = warn`` accepts "unsigned"; the tampered one stays refused (A3)."""
    result = _replay(seeded_log, policy_from_toml(LAXER, "laxer.toml"), since=None)
    [flip] = result.flips
    assert flip.id == seeded_log.ids["unsigned"]
    assert (flip.old, flip.new, flip.codes) == ("refused", "accepted", ("pdf-unsigned",))
    assert result.by_code == {"pdf-unsigned": {"refused → accepted": 1}}


def test_since_limits_the_window_and_nothing_in_the_log_changes(seeded_log: SeededLog) -> None:
    """Replay only reads: the database and spool files are byte for byte the same, the chain intact."""
    before, chain = _fingerprint(seeded_log), asyncio.run(_chain(seeded_log.config))
    stricter = policy_from_toml(STRICTER, "stricter.toml")
    future = _replay(seeded_log, stricter, since=seeded_log.pki.anchor + timedelta(days=1))
    assert (future.judged, future.flips, future.skipped) == (0, (), ())
    everything = _replay(seeded_log, stricter, since=seeded_log.pki.anchor - timedelta(minutes=1))
    assert _names(seeded_log, [f.id for f in everything.flips]) == {"no-envelope"}
    assert _fingerprint(seeded_log) == before
    assert asyncio.run(_chain(seeded_log.config)) == chain
    assert chain[0]


def test_an_original_missing_from_the_spool_is_skipped_with_its_reason(seeded_log: SeededLog, tmp_path: Path) -> None:
    """A spool that lost one mail: that item is reported as skipped, the others are judged."""
    settings = load_settings(seeded_log.config)
    copy = tmp_path / "spool"
    shutil.copytree(settings.store.spool, copy)
    lost = asyncio.run(work_item(seeded_log.config, seeded_log.ids["valid"]))
    gone = Spool(copy).path(lost.sha256)
    gone.chmod(0o600)
    gone.unlink()

    async def go() -> ReplayResult:
        async with receipt_log(seeded_log.config) as store, open_verifier(settings) as verifier:
            return await replay(store, Spool(copy), verifier, since=None)

    result = asyncio.run(go())
    [skipped] = result.skipped
    assert (skipped.id, skipped.reason) == (lost.id, f"original mail missing from the spool {copy}")
    assert (result.judged, result.flips) == (len(NAMES) - 1, ())
    assert result.to_json()["totals"]["skipped_by_reason"] == {f"original mail missing from the spool {copy}": 1}
