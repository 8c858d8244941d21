"""The archivist's search: filters read from strings, validated once, run by the store.

``gateway log search`` and the HTTP API both hand their options to :func:`build_filter`, so a
bad value gets the same message everywhere: the field, the value and the forms it accepts
(:class:`FilterError`). Dates are read as an operator in Vietnam means them (HOUSE.md rule 12):
``2025-03-14`` is that day in +07:00, ``--to 2025-03-14`` includes the whole day, a time with no
offset is +07:00. Everything handed to the store is aware UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final

from gateway.clock import VN_TZ, iso_vn, to_utc
from gateway.store import MessageView, NotFound, Store

__all__ = [
    "DIRECTIONS",
    "MAX_LIMIT",
    "VERDICTS",
    "FilterError",
    "SearchFilter",
    "SearchPage",
    "build_filter",
    "parse_when",
    "search",
]

VERDICTS: Final = ("accepted", "refused", "deferred")
DIRECTIONS: Final = ("in", "out")
MAX_LIMIT: Final = 500
_AGO = re.compile(r"(\d+)\s*([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_WHEN_FORMS = "an age (30d, 12h, 90m, 2w), a date (2025-03-14) or an ISO 8601 time (2025-03-14T09:00:00+07:00)"
_MAX_TEXT = 1000


class FilterError(ValueError):
    """A search option that cannot be used; the message names it, its value and what is accepted.

    Attributes:
        field: the option's name (``from``, ``sender``, ``limit``…).
        accepted: the forms the option takes, in a few words (``accepted, refused, deferred``;
            the HTTP API's ``accepted`` field).
    """

    def __init__(self, field: str, message: str, *, accepted: str) -> None:
        self.field = field
        self.accepted = accepted
        super().__init__(message)


def parse_when(value: str, now: datetime, *, end: bool = False) -> datetime:
    """Read a point in time: an age before ``now``, a Vietnam date, or ISO 8601.

    Args:
        value: ``30d``/``12h``/``90m``/``2w``; ``2025-03-14`` (midnight in Vietnam); an ISO 8601
            time (no offset means +07:00).
        now: what an age counts back from (aware).
        end: the value ends a range: a date means the *next* midnight, so ``--to 2025-03-14``
            includes all of that day.

    Returns:
        Aware UTC.

    Raises:
        ValueError: none of those forms (the caller names the option).
    """
    text = value.strip()
    ago = _AGO.fullmatch(text)
    if ago:
        return to_utc(now) - timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
    try:
        if len(text) == 10:
            day = date.fromisoformat(text) + timedelta(days=1 if end else 0)
            return to_utc(datetime.combine(day, time(), VN_TZ))
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        raise ValueError(f"{value!r} is not {_WHEN_FORMS}") from None
    return to_utc(moment if moment.tzinfo is not None else moment.replace(tzinfo=VN_TZ))


@dataclass(frozen=True)
class SearchFilter:
    """What to look for; every field optional but ``limit``. Times aware UTC, ``[since, until)``.

    ``text`` holds words that must all occur in the subject, the number/notation, the
    DocumentId, the sender's or a recipient's OrganId, or a finding (code, Vietnamese or
    English text); diacritics are optional ("kiem tra" finds "kiểm tra").
    """

    since: datetime | None = None
    until: datetime | None = None
    sender: str | None = None
    recipient: str | None = None
    code: str | None = None
    verdict: str | None = None
    direction: str | None = None
    text: str | None = None
    limit: int = 50
    before_id: int | None = None

    def describe(self) -> str:
        """The filter in one line, times in +07:00 (for headings and logs)."""
        parts = [f"from {iso_vn(self.since)}" if self.since else "", f"to {iso_vn(self.until)}" if self.until else ""]
        for name in ("sender", "recipient", "code", "verdict", "direction", "text", "before_id"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name} {value!r}" if isinstance(value, str) else f"{name} {value}")
        return ", ".join(p for p in parts if p) or "everything"


@dataclass(frozen=True)
class SearchPage:
    """One page of results, newest first; ``next_before_id`` asks for the next page (``None``: last)."""

    items: tuple[MessageView, ...]
    next_before_id: int | None


def _word(field: str, value: str | None, *, limit: int = 255) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if len(text) > limit:
        raise FilterError(
            field,
            f"{field} is {len(text)} characters long; at most {limit} are accepted",
            accepted=f"text of at most {limit} characters",
        )
    if any(ord(c) < 32 for c in text):
        raise FilterError(
            field, f"{field} {value!r} contains a control character; give plain text", accepted="plain text"
        )
    return text


def _choice(field: str, value: str | None, choices: tuple[str, ...]) -> str | None:
    text = _word(field, value)
    if text is None:
        return None
    if text.lower() not in choices:
        raise FilterError(field, f"{field} {value!r} is not one of: {', '.join(choices)}", accepted=", ".join(choices))
    return text.lower()


def _when(field: str, value: str | None, now: datetime, *, end: bool) -> datetime | None:
    text = _word(field, value, limit=64)
    if text is None:
        return None
    try:
        return parse_when(text, now, end=end)
    except ValueError:
        raise FilterError(field, f"{field} {value!r} is not {_WHEN_FORMS}", accepted=_WHEN_FORMS) from None


def _number(field: str, value: str | int | None, *, low: int, high: int | None = None) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = value if isinstance(value, int) and not isinstance(value, bool) else int(str(value).strip())
    except ValueError:
        number = None
    if number is None or number < low or (high is not None and number > high):
        span = f"in {low}..{high}" if high is not None else f"from {low}"
        raise FilterError(field, f"{field} {value!r} is not a whole number {span}", accepted=f"a whole number {span}")
    return number


def build_filter(
    *,
    from_: str | None = None,
    to: str | None = None,
    sender: str | None = None,
    recipient: str | None = None,
    code: str | None = None,
    verdict: str | None = None,
    direction: str | None = None,
    text: str | None = None,
    limit: str | int | None = None,
    before_id: str | int | None = None,
    now: datetime,
) -> SearchFilter:
    """Validate search options given as strings (CLI options, HTTP query parameters).

    Empty strings count as "not given". ``from_``/``to`` take the forms of :func:`parse_when`
    (``to`` as the end of a range).

    Raises:
        FilterError: the first bad value, naming its field, the value and the accepted forms.
    """
    since = _when("from", from_, now, end=False)
    until = _when("to", to, now, end=True)
    if since is not None and until is not None and since >= until:
        raise FilterError(
            "to",
            f"to ({iso_vn(until)}) is not after from ({iso_vn(since)}): the range is empty",
            accepted=f"a time after from ({iso_vn(since)})",
        )
    return SearchFilter(
        since=since,
        until=until,
        sender=_word("sender", sender),
        recipient=_word("recipient", recipient),
        code=_word("code", code),
        verdict=_choice("verdict", verdict, VERDICTS),
        direction=_choice("direction", direction, DIRECTIONS),
        text=_word("text", text, limit=_MAX_TEXT),
        limit=_number("limit", limit, low=1, high=MAX_LIMIT) or 50,
        before_id=_number("before_id", before_id, low=1),
    )


async def search(store: Store, flt: SearchFilter) -> SearchPage:
    """Run ``flt`` against the receipt log: one page, newest first.

    Raises:
        FilterError: ``before_id`` names no work item.
    """
    try:
        found = await store.search(
            since=flt.since,
            until=flt.until,
            sender=flt.sender,
            recipient=flt.recipient,
            code=flt.code,
            verdict=flt.verdict,
            direction=flt.direction,
            text=flt.text,
            before_id=flt.before_id,
            limit=flt.limit + 1,  # one more than shown: is there a next page?
        )
    except NotFound:
        raise FilterError(
            "before_id",
            f"before_id {flt.before_id} names no work item; use a page's next_before_id",
            accepted="the id a page's next link (next_before_id) gives",
        ) from None
    items = tuple(found[: flt.limit])
    more = len(found) > flt.limit
    return SearchPage(items=items, next_before_id=items[-1].id if more and items else None)
