"""UTC inside, +07:00 outside (HOUSE.md rule 12)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.clock import VN_TZ, FixedClock, SystemClock, iso_vn, to_utc, to_vn


def test_iso_vn_renders_vietnam_time_with_offset() -> None:
    assert iso_vn(datetime(2025, 3, 14, 2, 5, 7, 999, tzinfo=UTC)) == "2025-03-14T09:05:07+07:00"


def test_conversions_keep_the_instant() -> None:
    moment = datetime(2025, 12, 31, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert to_utc(moment) == moment
    assert to_vn(moment).utcoffset() == timedelta(hours=7)
    assert to_vn(moment).date().isoformat() == "2026-01-01"


@pytest.mark.parametrize("convert", [to_utc, to_vn, iso_vn])
def test_naive_datetimes_are_refused(convert: object) -> None:
    assert callable(convert)
    with pytest.raises(ValueError, match="naive"):
        convert(datetime(2025, 1, 1))  # noqa: DTZ001 - the point of the test


def test_clocks_are_aware_utc() -> None:
    assert SystemClock().now().tzinfo is UTC
    clock = FixedClock(datetime(2025, 3, 14, 9, 5, 7, tzinfo=VN_TZ))
    assert clock.now() == datetime(2025, 3, 14, 2, 5, 7, tzinfo=UTC)
    clock.advance(timedelta(minutes=1))
    assert iso_vn(clock.now()) == "2025-03-14T09:06:07+07:00"
