"""Dates and times as edXML writes them, read leniently, written strictly (spec/edxml.md §1.8).

The wire forms are ``yyyy/MM/dd`` for dates and ``yyyy/MM/dd HH:mm:ss`` for timestamps, in
Vietnam local time with no zone marker. Real peers deviate, so the readers also accept:

* ``dd/MM/yyyy`` (legacy e-doc code), ``yyyy-MM-dd`` and ``.``/``-`` separators in either order;
* one-digit day or month (``2019/1/6``);
* ISO 8601 date-times with or without an offset (``2019-01-16T09:30:00+07:00``, ``…Z``);
* a date-time where a date is expected (some producers put one in PromulgationDate): the date
  is taken, in Vietnam time when the value carries an offset;
* for timestamps: a bare date (midnight), minutes without seconds, fractional seconds
  (truncated, because the model keeps whole seconds as the wire does).

Every reading says whether the text was in the standard form (``strict``); the parser turns a
non-standard but readable value into ``edxml-lenient-date`` and an unreadable one into
``edxml-bad-date``. Invariants: a timestamp reading is aware, UTC, whole seconds; a date
reading is a plain ``date``. Nothing here raises for bad input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Final

from gateway.clock import VN_TZ, require_aware

__all__ = [
    "DATE_FORMAT",
    "TIMESTAMP_FORMAT",
    "DateReading",
    "TimestampReading",
    "read_date",
    "read_timestamp",
    "write_date",
    "write_timestamp",
]

DATE_FORMAT: Final = "yyyy/MM/dd"
"""The standard wire form of a date, as the findings name it."""
TIMESTAMP_FORMAT: Final = "yyyy/MM/dd HH:mm:ss"
"""The standard wire form of a timestamp (Vietnam local time)."""

_STRICT_DATE = re.compile(r"(\d{4})/(\d{2})/(\d{2})")
_STRICT_TIMESTAMP = re.compile(r"(\d{4})/(\d{2})/(\d{2}) (\d{2}):(\d{2}):(\d{2})")

# Year first or year last; any of / - . as separator (the same one twice). The optional time
# part allows ISO 8601's "T", minutes-only, fractional seconds and a zone designator.
_TIME = r"(?:[T ]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?"
_YMD = re.compile(r"(\d{4})([/.-])(\d{1,2})\2(\d{1,2})" + _TIME, re.IGNORECASE)
_DMY = re.compile(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4})" + _TIME, re.IGNORECASE)

# Wire values are short; anything longer is not a date and is not worth a regex run.
_MAX_LEN = 64


@dataclass(frozen=True)
class DateReading:
    """The result of reading a date: ``value`` is ``None`` when the text could not be read."""

    value: date | None
    strict: bool
    """True when the text was exactly ``yyyy/MM/dd``."""


@dataclass(frozen=True)
class TimestampReading:
    """The result of reading a timestamp: ``value`` is aware UTC, or ``None`` if unreadable."""

    value: datetime | None
    strict: bool
    """True when the text was exactly ``yyyy/MM/dd HH:mm:ss``."""


@dataclass(frozen=True)
class _Parts:
    year: int
    month: int
    day: int
    has_time: bool
    hour: int
    minute: int
    second: int
    zone: timezone | None


def _zone(text: str | None) -> timezone | None:
    if not text:
        return None
    if text.upper() == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        raise ValueError("offset out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _split(text: str) -> _Parts | None:
    """Pull the fields out of any accepted form, or ``None`` if the text is not one."""
    if len(text) > _MAX_LEN:
        return None
    match = _YMD.fullmatch(text)
    if match:
        year, month, day = int(match[1]), int(match[3]), int(match[4])
    else:
        match = _DMY.fullmatch(text)
        if not match:
            return None
        day, month, year = int(match[1]), int(match[3]), int(match[4])
    # Group 8 (fractional seconds) is matched but dropped: the model keeps whole seconds.
    hour, minute, second, zone_text = match[5], match[6], match[7], match[9]
    try:
        zone = _zone(zone_text)
    except ValueError:
        return None
    return _Parts(
        year=year,
        month=month,
        day=day,
        has_time=hour is not None,
        hour=int(hour or 0),
        minute=int(minute or 0),
        second=int(second or 0),
        zone=zone,
    )


def read_date(text: str) -> DateReading:
    """Read a date field.

    Args:
        text: the stripped text of the element.

    Returns:
        The date and whether it was in the standard ``yyyy/MM/dd`` form; ``value`` is
        ``None`` for text that is no date at all or names an impossible day.
    """
    parts = _split(text.strip())
    if parts is None:
        return DateReading(None, strict=False)
    try:
        if parts.has_time and parts.zone is not None:
            # An instant with an offset: the calendar day that matters is Vietnam's.
            moment = datetime(
                parts.year, parts.month, parts.day, parts.hour, parts.minute, parts.second, tzinfo=parts.zone
            )
            value = moment.astimezone(VN_TZ).date()
        else:
            if parts.has_time:
                time(parts.hour, parts.minute, parts.second)  # validates the clock fields only
            value = date(parts.year, parts.month, parts.day)
    except (ValueError, OverflowError):
        return DateReading(None, strict=False)
    return DateReading(value, strict=_STRICT_DATE.fullmatch(text) is not None)


def read_timestamp(text: str) -> TimestampReading:
    """Read a timestamp field (Vietnam local time unless the text carries an offset).

    Args:
        text: the stripped text of the element.

    Returns:
        The instant as an aware UTC datetime (whole seconds) and whether the text was in the
        standard ``yyyy/MM/dd HH:mm:ss`` form; ``value`` is ``None`` when unreadable.
    """
    parts = _split(text.strip())
    if parts is None:
        return TimestampReading(None, strict=False)
    try:
        local = datetime(
            parts.year,
            parts.month,
            parts.day,
            parts.hour,
            parts.minute,
            parts.second,
            tzinfo=parts.zone or VN_TZ,
        )
        value = local.astimezone(UTC)
    except (ValueError, OverflowError):
        return TimestampReading(None, strict=False)
    return TimestampReading(value, strict=_STRICT_TIMESTAMP.fullmatch(text) is not None)


def write_date(value: date) -> str:
    """Render a date for the wire: ``yyyy/MM/dd``.

    Args:
        value: the date (a ``datetime`` is refused: the caller must choose the day).

    Returns:
        The wire text.

    Raises:
        TypeError: for a ``datetime``.
    """
    if isinstance(value, datetime):
        raise TypeError("write_date takes a date; convert the datetime to a Vietnam calendar day first")
    return f"{value.year:04d}/{value.month:02d}/{value.day:02d}"


def write_timestamp(value: datetime) -> str:
    """Render an instant for the wire: ``yyyy/MM/dd HH:mm:ss`` in Vietnam time, no zone marker.

    Args:
        value: an aware datetime; microseconds are not allowed (the wire has none).

    Returns:
        The wire text.

    Raises:
        ValueError: for a naive datetime, one with microseconds, or one whose Vietnam time
            falls outside the years 1–9999.
    """
    require_aware(value)
    if value.microsecond:
        raise ValueError("the wire carries whole seconds; drop the microseconds first")
    try:
        local = value.astimezone(VN_TZ)
    except OverflowError as exc:
        raise ValueError(f"{value.isoformat()} cannot be written in Vietnam time") from exc
    return f"{write_date(local.date())} {local.hour:02d}:{local.minute:02d}:{local.second:02d}"
