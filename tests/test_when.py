import math
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from dateutil.relativedelta import relativedelta

from celery_schedule.when import parse_iso, resolve, seconds, to_utc

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2027, 3, 15, 8, 30, tzinfo=UTC)  # 09:30 in Berlin (CET)


def test_aware_datetime_is_converted_to_utc():
    value = datetime(2027, 1, 1, 9, 30, tzinfo=BERLIN)
    assert resolve(value) == datetime(2027, 1, 1, 8, 30, tzinfo=UTC)
    assert resolve(value).tzinfo == UTC


def test_naive_datetime_means_utc():
    assert resolve(datetime(2027, 1, 1, 9, 30)) == datetime(2027, 1, 1, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2027-01-01T09:30:00+01:00", datetime(2027, 1, 1, 8, 30, tzinfo=UTC)),
        ("2027-01-01T09:30:00Z", datetime(2027, 1, 1, 9, 30, tzinfo=UTC)),
        ("2027-01-01T09:30:00", datetime(2027, 1, 1, 9, 30, tzinfo=UTC)),
        ("2027-01-01 09:30", datetime(2027, 1, 1, 9, 30, tzinfo=UTC)),
        ("2027-01-01T09:30:00.250-05:00", datetime(2027, 1, 1, 14, 30, 0, 250000, tzinfo=UTC)),
    ],
)
def test_iso_strings(text, expected):
    assert resolve(text) == expected


def test_timedelta_and_seconds_count_from_now():
    assert resolve(timedelta(days=365), now=NOW) == NOW + timedelta(days=365)
    assert resolve(86400, now=NOW) == NOW + timedelta(days=1)
    assert resolve(1.5, now=NOW) == NOW + timedelta(seconds=1.5)


def test_relativedelta_keeps_wall_clock_time_across_dst():
    assert resolve(relativedelta(months=+1), now=NOW, tz=BERLIN) == datetime(
        2027, 4, 15, 7, 30, tzinfo=UTC
    )


def test_relativedelta_in_utc_would_not_keep_it():
    assert resolve(relativedelta(months=+1), now=NOW, tz=UTC) == datetime(
        2027, 4, 15, 8, 30, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "now, expected",
    [
        (datetime(2027, 1, 31, 12, tzinfo=UTC), datetime(2027, 2, 28, 12, tzinfo=UTC)),
        (datetime(2028, 1, 31, 12, tzinfo=UTC), datetime(2028, 2, 29, 12, tzinfo=UTC)),
    ],
)
def test_relativedelta_month_ends_clamp(now, expected):
    assert resolve(relativedelta(months=+1), now=now, tz=UTC) == expected


def test_relativedelta_with_absolute_fields_in_app_zone():
    due = resolve(relativedelta(days=+1, hour=9, minute=30, second=0, microsecond=0),
                  now=NOW, tz=BERLIN)
    assert due.astimezone(BERLIN).replace(tzinfo=None) == datetime(2027, 3, 16, 9, 30)


def test_past_times_are_kept_as_given():
    assert resolve(-60, now=NOW) == NOW - timedelta(minutes=1)
    assert resolve("2001-01-01T00:00:00Z") == datetime(2001, 1, 1, tzinfo=UTC)


def test_to_utc_and_parse_iso_helpers():
    assert to_utc(datetime(2027, 1, 1, tzinfo=BERLIN)).hour == 23
    assert parse_iso(" 2027-01-01T00:00:00Z ") == datetime(2027, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "bad, exc",
    [
        ("tomorrow", ValueError),
        ("2027-13-01T00:00:00", ValueError),
        ("", ValueError),
        (True, TypeError),
        (False, TypeError),
        (math.nan, ValueError),
        (math.inf, ValueError),
        (-math.inf, ValueError),
        (None, TypeError),
        ([1], TypeError),
        (date(2027, 1, 1), TypeError),
        (Decimal("nan"), TypeError),
        (10**30, ValueError),
        (timedelta.max, ValueError),
    ],
)
def test_bad_values_raise_naming_the_value(bad, exc):
    with pytest.raises(exc) as info:
        resolve(bad, now=NOW)
    assert repr(bad) in str(info.value)


def test_seconds_refuses_bool_and_accepts_timedelta():
    assert seconds(timedelta(minutes=2)) == 120.0
    with pytest.raises(TypeError, match="True"):
        seconds(True)
