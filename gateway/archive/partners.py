"""The partner report: per sending agency, what it sent us and how it signs.

For every ``from_organ`` of the inbound work items received in the window: how many packages,
how many accepted, refused, deferred (or not decided yet), the refusal rate by finding code (the
codes that decided each refusal), the signer certificates seen in its PDFs with when they expire
(soonest first: whom to remind to renew), and its use of weak or legacy algorithms (the findings
``algorithm-weak`` and ``algorithm-legacy``, and the digest algorithm of every signature).

Everything comes from the verdicts recorded in the receipt log; nothing is re-verified. Reports
recorded before ``signer_not_after`` existed show the expiry as unknown (``None``). Items with no
sender (a mail without a readable package) are grouped under ``"unknown"``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.archive.window import inbound_since
from gateway.clock import iso_vn, iso_vn_or_none, to_utc
from gateway.store import MessageView, Store
from gateway.verify.directory import Directory

__all__ = ["UNKNOWN", "WEAK_CODES", "PartnerSummary", "PartnersReport", "SignerSeen", "partner_report"]

UNKNOWN = "unknown"
"""The sender of items whose OrganId the log does not know."""
WEAK_CODES = ("algorithm-weak", "algorithm-legacy")
"""The findings that mean weak or legacy cryptography."""

Progress = Callable[[int, int], None]
_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class SignerSeen:
    """One signer certificate seen in a partner's PDFs."""

    subject: str
    sha256: str | None
    roles: tuple[str, ...]
    """``person``, ``organisation``, ``unknown`` — as the reports classified it."""
    not_after: datetime | None
    """When it expires; ``None``: unknown (recorded before the report carried it)."""
    first_seen: datetime | None
    last_seen: datetime | None
    packages: int

    def to_json(self) -> dict[str, Any]:
        """JSON-ready view (times ISO 8601 +07:00; expiry ``"unknown"`` when not recorded)."""
        return {
            "subject": self.subject,
            "sha256": self.sha256,
            "roles": list(self.roles),
            "not_after": UNKNOWN if self.not_after is None else iso_vn(self.not_after),
            "first_seen": iso_vn_or_none(self.first_seen),
            "last_seen": iso_vn_or_none(self.last_seen),
            "packages": self.packages,
        }


@dataclass(frozen=True)
class PartnerSummary:
    """One sending agency over the window."""

    organ_id: str
    name: str | None
    packages: int
    verdicts: Mapping[str, int]
    """``accepted``, ``refused``, ``deferred``, ``pending`` (no verdict yet) → count."""
    refusals_by_code: Mapping[str, int]
    """Finding code → refused packages it helped decide (most first)."""
    signers: tuple[SignerSeen, ...]
    """Soonest expiry first; unknown expiries last."""
    digest_algorithms: Mapping[str, int]
    """Digest algorithm → signatures using it."""
    weak: Mapping[str, int]
    """``algorithm-weak`` / ``algorithm-legacy`` → packages with that finding."""

    def refusal_rate(self, code: str) -> float:
        """Share of this partner's packages refused with ``code`` among the deciding findings."""
        return self.refusals_by_code.get(code, 0) / self.packages if self.packages else 0.0

    def to_json(self) -> dict[str, Any]:
        """JSON-ready view."""
        return {
            "organ_id": self.organ_id,
            "name": self.name,
            "packages": self.packages,
            "verdicts": dict(self.verdicts),
            "refusals_by_code": {
                code: {"packages": n, "rate": round(self.refusal_rate(code), 4)}
                for code, n in self.refusals_by_code.items()
            },
            "signers": [s.to_json() for s in self.signers],
            "digest_algorithms": dict(self.digest_algorithms),
            "weak_algorithms": dict(self.weak),
        }


@dataclass(frozen=True)
class PartnersReport:
    """Every sending agency of the window, most packages first."""

    since: datetime | None
    partners: tuple[PartnerSummary, ...] = field(default_factory=tuple)

    def signers_by_expiry(self) -> list[tuple[str, SignerSeen]]:
        """Every partner's signer certificates as ``(OrganId, signer)``, soonest expiry first."""
        rows = [(p.organ_id, s) for p in self.partners for s in p.signers]
        return sorted(rows, key=lambda row: (*_expiry_order(row[1]), row[0]))

    def to_json(self) -> dict[str, Any]:
        """The ``gateway report partners --json`` object (also served by the HTTP API)."""
        return {
            "since": iso_vn_or_none(self.since),
            "packages": sum(p.packages for p in self.partners),
            "partners": [p.to_json() for p in self.partners],
        }


def _time(value: object) -> datetime | None:
    """A time from a stored report (ISO 8601 with offset), or ``None`` when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        return to_utc(datetime.fromisoformat(value))
    except ValueError:
        return None


def _signatures(item: MessageView) -> list[Mapping[str, Any]]:
    signatures = (item.report or {}).get("signatures") or ()
    return [s for s in signatures if isinstance(s, Mapping) and s.get("signer")]


def _codes(item: MessageView, action: str | None = None) -> set[str]:
    return {str(f.get("code")) for f in item.findings or () if action is None or f.get("action") == action}


@dataclass
class _SignerTally:
    """One signer certificate while the window is read."""

    subject: str
    sha256: str | None
    roles: set[str] = field(default_factory=set)
    not_after: datetime | None = None
    first: datetime | None = None
    last: datetime | None = None
    packages: int = 0

    def add(self, signature: Mapping[str, Any], at: datetime | None) -> None:
        self.roles.add(str(signature.get("role") or UNKNOWN))
        self.not_after = _time(signature.get("signer_not_after")) or self.not_after
        if at is not None:
            self.first = at if self.first is None else min(self.first, at)
            self.last = at if self.last is None else max(self.last, at)

    def seen(self) -> SignerSeen:
        roles = tuple(sorted(self.roles))
        return SignerSeen(self.subject, self.sha256, roles, self.not_after, self.first, self.last, self.packages)


class _Partner:
    """Counters for one sender while the window is read."""

    def __init__(self) -> None:
        self.verdicts: Counter[str] = Counter()
        self.refusals: Counter[str] = Counter()
        self.digests: Counter[str] = Counter()
        self.weak: Counter[str] = Counter()
        self.signers: dict[str, _SignerTally] = {}

    def add(self, item: MessageView) -> None:
        self.verdicts[item.verdict or "pending"] += 1
        if item.verdict == "refused":
            self.refusals.update(_codes(item, "reject"))
        self.weak.update(_codes(item) & set(WEAK_CODES))
        keys: set[str] = set()
        for signature in _signatures(item):
            self.digests[str(signature.get("digest_algorithm") or UNKNOWN)] += 1
            sha256 = signature.get("signer_sha256")
            key = str(sha256 or signature["signer"])
            tally = self.signers.setdefault(
                key, _SignerTally(str(signature["signer"]), None if sha256 is None else str(sha256))
            )
            tally.add(signature, item.received_at)
            keys.add(key)
        for key in keys:
            self.signers[key].packages += 1

    def summary(self, organ_id: str, name: str | None) -> PartnerSummary:
        signers = sorted((t.seen() for t in self.signers.values()), key=_expiry_order)
        return PartnerSummary(
            organ_id=organ_id,
            name=name,
            packages=sum(self.verdicts.values()),
            verdicts=dict(self.verdicts),
            refusals_by_code=dict(self.refusals.most_common()),
            signers=tuple(signers),
            digest_algorithms=dict(self.digests.most_common()),
            weak=dict(self.weak),
        )


def _expiry_order(signer: SignerSeen) -> tuple[bool, datetime, str]:
    """Soonest expiry first, unknown expiries last, then by subject."""
    return signer.not_after is None, signer.not_after or _NEVER, signer.subject


def _summaries(items: Iterable[MessageView], directory: Directory) -> tuple[PartnerSummary, ...]:
    counters: dict[str, _Partner] = {}
    for item in items:
        counters.setdefault(item.from_organ or UNKNOWN, _Partner()).add(item)
    summaries = []
    for organ_id, counter in counters.items():
        agency = directory.get(organ_id)
        summaries.append(counter.summary(organ_id, None if agency is None else agency.name))
    return tuple(sorted(summaries, key=lambda s: (-s.packages, s.organ_id)))


async def partner_report(
    store: Store,
    *,
    since: datetime | None,
    directory: Directory | None = None,
    progress: Progress | None = None,
) -> PartnersReport:
    """Summarise every sending agency's inbound packages received since ``since``.

    Args:
        store: the receipt log, opened for reading; only read.
        since: only items received at or after this (aware); ``None``: all.
        directory: the agency directory, for the agencies' names (``[verify] directory``).
        progress: called with ``(done, total)`` once the window is read (the work after it is
            in memory and quick).

    Returns:
        One summary per sender, most packages first.

    Raises:
        ValueError: ``since`` is naive.
        TransientError: the database cannot be read now.
    """
    items = await inbound_since(store, since)
    if progress is not None:
        progress(len(items), len(items))
    return PartnersReport(since=since, partners=_summaries(items, directory or Directory()))
