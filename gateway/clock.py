"""One clock for the whole gateway: UTC inside, Asia/Ho_Chi_Minh (+07:00) outside.

Invariants (HOUSE.md rule 12):

* every ``datetime`` that crosses a module boundary is *aware*; naive values are a bug
  and are refused with ``ValueError`` by the helpers below;
* values kept in memory and in the database are UTC;
* every time shown to a person or written into a signed artefact is rendered in
  Vietnam time with an explicit ``+07:00`` offset, ISO 8601, to the second.

Vietnam has had no daylight-saving time since 1975, so a fixed offset is exact and
does not depend on the host's tz database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Protocol

__all__ = [
    "VN_TZ",
    "Clock",
    "FixedClock",
    "SystemClock",
    "iso_vn",
    "iso_vn_or_none",
    "require_aware",
    "to_utc",
    "to_vn",
]

VN_TZ = timezone(timedelta(hours=7), "+07:00")
"""Asia/Ho_Chi_Minh as a fixed offset (no DST)."""


class Clock(Protocol):
    """Source of the current time. Inject it; never call ``datetime.now()`` directly."""

    def now(self) -> datetime:
        """Return the current time as an aware UTC ``datetime``."""
        ...


@dataclass(frozen=True)
class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class FixedClock:
    """A clock that only moves when told to (unit tests, rule replay, ``--at``)."""

    at: datetime = field(default_factory=lambda: datetime(2025, 3, 14, 2, 5, 7, tzinfo=UTC))

    def __post_init__(self) -> None:
        self.at = to_utc(self.at)

    def now(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by ``delta``."""
        self.at = self.at + delta


def require_aware(value: datetime) -> datetime:
    """Return ``value`` unchanged if it carries a UTC offset.

    Raises:
        ValueError: for a naive datetime, which has no defined instant.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} has no time zone; pass an aware datetime")
    return value


def to_utc(value: datetime) -> datetime:
    """Convert an aware datetime to UTC (raises ``ValueError`` for a naive one)."""
    return require_aware(value).astimezone(UTC)


def to_vn(value: datetime) -> datetime:
    """Convert an aware datetime to Vietnam time (+07:00)."""
    return require_aware(value).astimezone(VN_TZ)


def iso_vn(value: datetime) -> str:
    """Render a time for people and signatures: ``2025-03-14T09:05:07+07:00``."""
    return to_vn(value).isoformat(timespec="seconds")


def iso_vn_or_none(value: datetime | None) -> str | None:
    """``iso_vn`` of a time that may be missing (None stays None): JSON views and tables."""
    return None if value is None else iso_vn(value)
