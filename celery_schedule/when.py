"""Turn every accepted form of "when" into an aware UTC datetime."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone, tzinfo
from numbers import Real

from dateutil.parser import isoparse
from dateutil.relativedelta import relativedelta

UTC = timezone.utc

When = datetime | timedelta | relativedelta | str | int | float


def now_utc() -> datetime:
    """The current time, aware UTC (time-machine and freezegun patch what this reads)."""
    return datetime.now(UTC)


def to_utc(value: datetime) -> datetime:
    """An aware UTC datetime for `value`; a naive datetime means UTC, as in Celery's eta."""
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_iso(value: str) -> datetime:
    """An ISO 8601 string (offset, `Z` or naive = UTC) as an aware UTC datetime."""
    text = value.strip()
    try:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            parsed = isoparse(text)
        return to_utc(parsed)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"not an ISO 8601 date-time: {value!r} ({exc})") from None


def seconds(value: object) -> float:
    """`value` as a finite number of seconds (int/float or timedelta); bool is refused."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"expected seconds (int/float) or a timedelta, got {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"seconds must be a finite number, got {value!r}")
    return result


def resolve(value: object, *, now: datetime | None = None, tz: tzinfo | None = None) -> datetime:
    """The aware UTC due time that `value` stands for.

    datetime (naive = UTC), ISO 8601 string, timedelta, int/float seconds, or a
    relativedelta applied to `now` in time zone `tz` (the Celery app's), so the
    wall-clock time survives DST changes and month ends clamp.
    """
    if isinstance(value, datetime):
        return to_utc(value)
    if isinstance(value, str):
        return parse_iso(value)
    now = to_utc(now) if now is not None else now_utc()
    try:
        if isinstance(value, relativedelta):
            local = now.astimezone(tz or UTC)
            return to_utc(local + value)
        return now + timedelta(seconds=seconds(value))
    except OverflowError:
        raise ValueError(f"due time out of range: {value!r}") from None
    except TypeError:
        raise TypeError(
            "when must be a datetime, ISO 8601 string, timedelta, relativedelta or "
            f"number of seconds, got {value!r}"
        ) from None
