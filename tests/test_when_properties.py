"""Property-based tests of celery_schedule.when: round-trips, naive = UTC, DST-safe
relativedelta, and garbage refused with TypeError/ValueError only."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from celery_schedule.when import resolve

UTC = timezone.utc
ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata",
         "America/Sao_Paulo", "Pacific/Chatham", "UTC"]
NAIVE = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9000, 12, 31))
ZONE = st.sampled_from(ZONES).map(ZoneInfo)
FIXED = st.integers(-14 * 60 + 1, 14 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
AWARE = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9000, 12, 31),
                     timezones=st.one_of(ZONE, FIXED))

EXAMPLES = settings(max_examples=150, deadline=None)


@EXAMPLES
@given(AWARE)
def test_any_aware_datetime_round_trips_to_the_same_instant(value):
    due = resolve(value)
    assert due.tzinfo == UTC
    assert due.replace(tzinfo=None) == value.replace(tzinfo=None) - value.utcoffset()


@EXAMPLES
@given(NAIVE)
def test_naive_datetime_means_utc(value):
    assert resolve(value) == value.replace(tzinfo=UTC)


@EXAMPLES
@given(st.one_of(AWARE, NAIVE), st.sampled_from(["T", " "]),
       st.sampled_from(["auto", "seconds", "milliseconds", "microseconds"]))
@example(datetime(2027, 3, 28, 2, 30, tzinfo=ZoneInfo("Europe/Berlin")), "T", "auto")
def test_isoformat_strings_parse_back_to_the_same_instant(value, sep, timespec):
    text = value.isoformat(sep=sep, timespec=timespec)
    truncated = datetime.fromisoformat(text)
    expected = truncated if truncated.tzinfo else truncated.replace(tzinfo=UTC)
    assert resolve(text) == expected


@EXAMPLES
@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    ZONE,
    st.integers(-36, 36), st.integers(-400, 400),
    st.integers(0, 23), st.integers(0, 59),
)
def test_relativedelta_keeps_wall_clock_time_in_the_app_zone(start, zone, months, days,
                                                              hour, minute):
    now = start.replace(tzinfo=zone)
    delta = relativedelta(months=months, days=days, hour=hour, minute=minute, second=0,
                          microsecond=0)
    wall = start + delta
    exists = wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    assume(exists == wall and wall.replace(fold=1).replace(tzinfo=zone).utcoffset()
           == wall.replace(tzinfo=zone).utcoffset())
    due = resolve(delta, now=now, tz=zone)
    assert due.tzinfo == UTC
    assert due.astimezone(zone).replace(tzinfo=None) == wall


GARBAGE = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=20),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True).filter(lambda f: f != f or abs(f) > 1e12),
    st.integers(min_value=10**12),
    st.integers(max_value=-(10**12)),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
    st.dates(),
    st.complex_numbers(),
    st.decimals(),
    st.just(object()),
)


@EXAMPLES
@given(GARBAGE)
@example("2027-02-30T00:00:00")
@example("9999-12-31T23:59:59-14:00")
@example("0001-01-01T00:00:00+14:00")
@example("2027-01-01T25:00")
@example("\x00")
def test_garbage_is_refused_with_type_or_value_error_only(value):
    try:
        due = resolve(value, now=datetime(2027, 1, 1, tzinfo=UTC))
    except (TypeError, ValueError):
        return
    assert isinstance(value, str), f"{value!r} was accepted"
    assert due.tzinfo == UTC
