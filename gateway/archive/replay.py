"""Rule replay: what a proposed policy would have decided about the packages already received.

``replay`` re-judges every inbound work item that has a verdict and was received in the window,
from its original mail in the spool, with a ``Verifier`` built on the proposed policy
(``gateway.app.open_verifier(settings, policy=...)``), and compares the new verdict with the
recorded one. Each package is judged as of its recorded receive time (``verify_package(at=...)``):
certificates must have been valid then, and a revocation counts only if it happened at or
before then (``gateway.verify.revocation``). Revocation answers are fetched now, so a replay
needs the OCSP responders and CRLs the gateway uses: when they do not answer, packages flip to
``deferred`` exactly as they would have live.

Invariants: nothing is written. The store is only read (``window.inbound_since``), the spool only read
(``Spool.get`` checks each mail's SHA-256), the verifier has no side effects beyond its
revocation cache. A mail that carries no single edXML package is refused under any policy
(``pipeline.receive.mail_report``): it is skipped, not judged.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.archive.window import inbound_since
from gateway.clock import iso_vn, iso_vn_or_none
from gateway.pipeline.mails import find_package
from gateway.store import MessageView, Spool, SpoolCorrupted, SpoolMissing, Store
from gateway.verify.package import Verifier, verify_package
from gateway.verify.report import Verdict, VerificationReport

__all__ = ["MISSING_ORIGINAL", "Flip", "ReplayResult", "Skipped", "direction_of", "replay"]

_CONCURRENCY = 4
MISSING_ORIGINAL = "original mail missing from the spool"
"""How a skip reason starts when the spool has no file for the item; the spool directory follows."""

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called once before the first package and after each one."""


@dataclass(frozen=True)
class Flip:
    """One package whose verdict the proposed policy changes."""

    id: int
    document_id: str | None
    sender: str | None
    """The sending agency's OrganId (``from_organ``), or ``None`` when the log has none."""
    received_at: datetime
    old: str
    """The recorded verdict."""
    new: str
    """The verdict under the proposed policy."""
    codes: tuple[str, ...]
    """The finding codes that make the difference: those that decide the new verdict, or, for a
    flip to ``accepted``, those that decided the old one and no longer do."""

    @property
    def direction(self) -> str:
        """``old → new`` (the key of ``ReplayResult.flipped``)."""
        return direction_of(self.old, self.new)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready view (times ISO 8601 +07:00)."""
        return {
            "id": self.id,
            "document_id": self.document_id,
            "sender": self.sender,
            "received_at": iso_vn(self.received_at),
            "old": self.old,
            "new": self.new,
            "codes": list(self.codes),
        }


@dataclass(frozen=True)
class Skipped:
    """A work item in the window that could not be re-judged, and why."""

    id: int
    document_id: str | None
    sender: str | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        """JSON-ready view."""
        return {"id": self.id, "document_id": self.document_id, "sender": self.sender, "reason": self.reason}


@dataclass(frozen=True)
class ReplayResult:
    """What the proposed policy changes, with totals."""

    policy_sha256: str
    """The hash of the proposed policy (what a verdict under it would record)."""
    since: datetime | None
    judged: int
    """Packages re-judged (flipped or not)."""
    unchanged: int
    flips: tuple[Flip, ...]
    skipped: tuple[Skipped, ...] = ()
    by_sender: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """Sender OrganId (``"unknown"`` when none) → flip direction → count."""
    by_code: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """Finding code → flip direction → count (a flip counts once under each of its codes)."""

    @property
    def flipped(self) -> Mapping[str, int]:
        """Flip direction (``accepted → refused``...) → count."""
        return dict(Counter(f.direction for f in self.flips))

    @property
    def skipped_by_reason(self) -> Mapping[str, int]:
        """Skip reason → count."""
        return dict(Counter(s.reason for s in self.skipped))

    def to_json(self) -> dict[str, Any]:
        """The ``gateway rules replay --json`` object (also served by the HTTP API)."""
        return {
            "policy_sha256": self.policy_sha256,
            "since": iso_vn_or_none(self.since),
            "flips": [f.to_json() for f in self.flips],
            "by_sender": {k: dict(v) for k, v in self.by_sender.items()},
            "by_code": {k: dict(v) for k, v in self.by_code.items()},
            "skipped": [s.to_json() for s in self.skipped],
            "totals": {
                "judged": self.judged,
                "unchanged": self.unchanged,
                "flipped": len(self.flips),
                "by_direction": dict(self.flipped),
                "skipped": len(self.skipped),
                "skipped_by_reason": dict(self.skipped_by_reason),
            },
        }


def direction_of(old: str, new: str) -> str:
    """How a flip is named in tables and JSON: ``accepted → refused``."""
    return f"{old} → {new}"


def _recorded_decisive(item: MessageView) -> tuple[str, ...]:
    """The codes that decided the recorded verdict (rejects for refused, defers for deferred)."""
    wanted = {Verdict.REFUSED.value: "reject", Verdict.DEFERRED.value: "defer"}.get(item.verdict or "")
    return _unique(str(f.get("code")) for f in item.findings or () if f.get("action") == wanted)


def _unique(codes: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(codes))


def _skip(item: MessageView, reason: str) -> Skipped:
    return Skipped(item.id, item.document_id, item.from_organ, reason)


async def _judge(item: MessageView, spool: Spool, verifier: Verifier) -> VerificationReport | Skipped:
    """The new report for one item, or why it cannot be made."""
    if item.verdict is None:
        return _skip(item, "no verdict recorded yet")
    if item.received_at is None:
        return _skip(item, "no receive time recorded")
    try:
        mail = await spool.get(item.sha256)
    except SpoolMissing:
        return _skip(item, f"{MISSING_ORIGINAL} {spool.directory}")
    except SpoolCorrupted:
        return _skip(item, "original mail in the spool does not match its SHA-256")
    found = await asyncio.to_thread(find_package, mail)
    if found.package is None:
        return _skip(item, "the mail carries no single edXML package (refused under any policy)")
    try:
        return await verify_package(found.package, verifier, at=item.received_at)
    except Exception as exc:
        return _skip(item, f"could not be judged ({type(exc).__name__})")


def _flip(item: MessageView, report: VerificationReport) -> Flip | None:
    old, new = item.verdict or "", report.verdict.value
    if old == new or item.received_at is None:
        return None
    codes = _recorded_decisive(item) if report.verdict is Verdict.ACCEPTED else _unique(f.code for f in report.decisive)
    return Flip(item.id, item.document_id, item.from_organ, item.received_at, old, new, codes)


def _grouped(flips: Iterable[Flip], keys: Callable[[Flip], Iterable[str]]) -> dict[str, dict[str, int]]:
    groups: dict[str, Counter[str]] = {}
    for flip in flips:
        for key in keys(flip):
            groups.setdefault(key, Counter())[flip.direction] += 1
    ordered = sorted(groups.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    return {key: dict(counts) for key, counts in ordered}


async def replay(
    store: Store,
    spool: Spool,
    verifier: Verifier,
    *,
    since: datetime | None,
    progress: Progress | None = None,
    concurrency: int = _CONCURRENCY,
) -> ReplayResult:
    """Re-judge the stored originals under ``verifier``'s policy and list what would flip.

    Args:
        store: the receipt log, opened for reading (``migrate=False``); only read.
        spool: the spool of original mails; only read.
        verifier: a verifier on the proposed policy (``gateway.app.open_verifier``).
        since: only items received at or after this (aware); ``None``: all.
        progress: called with ``(done, total)`` before the first package and after each one.
        concurrency: packages verified at the same time.

    Returns:
        The flips (oldest first), their groupings by sender and by finding code, the totals and
        the items skipped with their reason.

    Raises:
        ValueError: ``since`` is naive.
        TransientError: the database cannot be read now.
    """
    items = await inbound_since(store, since)
    done = 0
    if progress is not None:
        progress(0, len(items))
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(item: MessageView) -> VerificationReport | Skipped:
        nonlocal done
        async with gate:
            outcome = await _judge(item, spool, verifier)
        done += 1
        if progress is not None:
            progress(done, len(items))
        return outcome

    outcomes = await asyncio.gather(*(one(item) for item in items))
    flips: list[Flip] = []
    skipped: list[Skipped] = []
    judged = 0
    for item, outcome in zip(items, outcomes, strict=True):
        if isinstance(outcome, Skipped):
            skipped.append(outcome)
            continue
        judged += 1
        flip = _flip(item, outcome)
        if flip is not None:
            flips.append(flip)
    return ReplayResult(
        policy_sha256=verifier.policy.sha256,
        since=since,
        judged=judged,
        unchanged=judged - len(flips),
        flips=tuple(flips),
        skipped=tuple(skipped),
        by_sender=_grouped(flips, lambda f: (f.sender or "unknown",)),
        by_code=_grouped(flips, lambda f: f.codes or ("none",)),
    )
