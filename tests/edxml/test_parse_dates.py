"""Wire dates and timestamps: strict forms written, lenient forms read (spec §1.8)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.clock import VN_TZ
from gateway.edxml.dates import DateReading, read_date, read_timestamp, write_date, write_timestamp


@pytest.mark.parametrize(
    ("text", "value", "strict"),
    [
        ("2019/01/16", date(2019, 1, 16), True),
        ("2019/1/6", date(2019, 1, 6), False),
        ("16/01/2019", date(2019, 1, 16), False),
        ("6/1/2019", date(2019, 1, 6), False),
        ("2019-01-16", date(2019, 1, 16), False),
        ("16-01-2019", date(2019, 1, 16), False),
        ("16.01.2019", date(2019, 1, 16), False),
        ("2019/01/16 10:00:00", date(2019, 1, 16), False),
        ("2019-01-16T10:00:00", date(2019, 1, 16), False),
        ("2019-01-16T10:00:00.123", date(2019, 1, 16), False),
        # An instant with an offset: the Vietnamese calendar day counts.
        ("2019-01-15T20:00:00Z", date(2019, 1, 16), False),
        ("2019-01-16T23:30:00+07:00", date(2019, 1, 16), False),
        ("2019-01-16T01:00:00+0900", date(2019, 1, 15), False),
        (" 2019/01/16 ", date(2019, 1, 16), False),
        ("2019/02/30", None, False),
        ("2019/13/01", None, False),
        ("0000/01/01", None, False),
        ("2019/01/16 24:00:00", None, False),
        ("2019-01-16T10:00:00+25:00", None, False),
        ("2019/01-16", None, False),
        ("20190116", None, False),
        ("ngày 16 tháng 1", None, False),
        ("2019/01/16" + "0" * 100, None, False),
        ("", None, False),
    ],
)
def test_read_date(text: str, value: date | None, strict: bool) -> None:
    reading = read_date(text)
    assert (reading.value, reading.strict) == (value, strict)


@pytest.mark.parametrize(
    ("text", "value", "strict"),
    [
        ("2018/09/28 17:25:11", datetime(2018, 9, 28, 10, 25, 11, tzinfo=UTC), True),
        ("2018/9/28 7:25:11", datetime(2018, 9, 28, 0, 25, 11, tzinfo=UTC), False),
        ("28/09/2018 17:25:11", datetime(2018, 9, 28, 10, 25, 11, tzinfo=UTC), False),
        ("2018-09-28T17:25:11", datetime(2018, 9, 28, 10, 25, 11, tzinfo=UTC), False),
        ("2018-09-28T17:25:11+07:00", datetime(2018, 9, 28, 10, 25, 11, tzinfo=UTC), False),
        ("2018-09-28T10:25:11Z", datetime(2018, 9, 28, 10, 25, 11, tzinfo=UTC), False),
        ("2018-09-28T10:25:11.987654Z", datetime(2018, 9, 28, 10, 25, 11, tzinfo=UTC), False),
        ("2018-09-28 17:25", datetime(2018, 9, 28, 10, 25, tzinfo=UTC), False),
        ("2018/09/28", datetime(2018, 9, 27, 17, 0, tzinfo=UTC), False),
        ("2018/09/28 17:25:61", None, False),
        ("yesterday", None, False),
    ],
)
def test_read_timestamp(text: str, value: datetime | None, strict: bool) -> None:
    reading = read_timestamp(text)
    assert (reading.value, reading.strict) == (value, strict)
    if reading.value is not None:
        assert reading.value.tzinfo is UTC
        assert reading.value.microsecond == 0


def test_write_forms() -> None:
    assert write_date(date(2019, 1, 6)) == "2019/01/06"
    assert write_date(date(5, 1, 1)) == "0005/01/01"
    assert write_timestamp(datetime(2018, 9, 28, 10, 25, 11, tzinfo=UTC)) == "2018/09/28 17:25:11"
    assert write_timestamp(datetime(2018, 9, 28, 17, 25, 11, tzinfo=VN_TZ)) == "2018/09/28 17:25:11"


def test_write_refusals() -> None:
    with pytest.raises(TypeError, match="takes a date"):
        write_date(datetime(2019, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="naive"):
        write_timestamp(datetime(2019, 1, 1))  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="whole seconds"):
        write_timestamp(datetime(2019, 1, 1, microsecond=5, tzinfo=UTC))
    with pytest.raises(ValueError, match="Vietnam time"):
        write_timestamp(datetime(9999, 12, 31, 20, tzinfo=UTC))


@given(st.dates())
def test_dates_round_trip(value: date) -> None:
    assert read_date(write_date(value)) == DateReading(value, strict=True)


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2),  # noqa: DTZ001 - hypothesis bounds are naive
        max_value=datetime(9999, 12, 30),  # noqa: DTZ001
        timezones=st.sampled_from([UTC, VN_TZ, timezone(timedelta(hours=-11))]),
    )
)
def test_timestamps_round_trip(value: datetime) -> None:
    value = value.replace(microsecond=0)
    reading = read_timestamp(write_timestamp(value))
    assert reading.strict
    assert reading.value == value
