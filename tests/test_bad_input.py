"""The bad input table of the README, executed: each documented call raises the documented
exception, its message names the bad value, and nothing is stored."""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from celery import chain

import celery_schedule
from celery_schedule.models import ScheduledTask
from tests.proj.tasks import plain_add, punch_out

DOC = Path(__file__).resolve().parents[1] / "README.md"
NAMESPACE = {
    "punch_out": punch_out, "plain_add": plain_add, "chain": chain, "datetime": datetime,
    "date": date, "timedelta": timedelta, "timezone": timezone, "math": math,
    "celery_schedule": celery_schedule, "ScheduledTask": ScheduledTask,
}

# (call as written in the docs, exception, text the message must contain)
TABLE = [
    ("punch_out.schedule(args=[1])", ValueError, "eta=None, countdown=None"),
    ("punch_out.schedule(args=[1], eta=datetime(2030, 1, 1), countdown=60)", ValueError,
     "countdown=60"),
    ("punch_out.schedule(args=[1], countdown='soon')", TypeError, "'soon'"),
    ("punch_out.schedule(args=[1], countdown=math.nan)", ValueError, "nan"),
    ("punch_out.schedule(args=[1], countdown=True)", TypeError, "True"),
    ("punch_out.schedule(args=[1], eta='tomorrow')", ValueError, "'tomorrow'"),
    ("punch_out.schedule(args=[1], eta='2030-02-30T09:00')", ValueError, "'2030-02-30T09:00'"),
    ("punch_out.schedule(args=[1], eta=date(2030, 1, 1))", TypeError, "datetime.date(2030, 1, 1)"),
    ("punch_out.schedule(args=[1], countdown=timedelta.max)", ValueError,
     "out of range: datetime.timedelta(days=999999999"),
    ("punch_out.schedule(args=[object()], countdown=60)", TypeError, "object object"),
    ("punch_out.schedule(args=[{1, 2}], countdown=60)", TypeError, "{1, 2}"),
    ("punch_out.schedule(args='42', countdown=60)", TypeError, "'42'"),
    ("punch_out.schedule(args=[1], kwargs=[('reason', 'x')], countdown=60)", TypeError,
     "[('reason', 'x')]"),
    ("punch_out.schedule(args=[1], kwargs={1: 'x'}, countdown=60)", TypeError, "1"),
    ("punch_out.schedule(args=[1], countdown=60, expires='never')", ValueError, "'never'"),
    ("punch_out.schedule(args=[1], countdown=60, expires=[1])", TypeError, "[1]"),
    ("punch_out.schedule(args=[1], countdown=60, key='k', on_conflict='merge')", ValueError,
     "'merge'"),
    ("punch_out.schedule(args=[1], countdown=60, key='')", TypeError, "''"),
    ("punch_out.s(1).schedule()", ValueError, "no due time"),
    ("punch_out.s(1).schedule(True)", TypeError, "True"),
    ("punch_out.s(1).schedule(-math.inf)", ValueError, "-inf"),
    ("punch_out.s(1).schedule('next week')", ValueError, "'next week'"),
    ("punch_out.s(1).set(countdown=60).schedule(timedelta(days=1))", ValueError,
     "countdown=60"),
    ("chain(plain_add.s(1, 2), plain_add.s(3)).schedule(60)", TypeError, "chain"),
    ("ScheduledTask.objects.schedule('', 60)", TypeError, "''"),
    ("ScheduledTask.objects.schedule(None, 60)", TypeError, "None"),
]


@pytest.mark.parametrize("call, exc, named", TABLE, ids=[row[0] for row in TABLE])
def test_bad_call_raises_naming_the_value_and_stores_nothing(db, call, exc, named):
    with pytest.raises(exc) as info:
        eval(call, dict(NAMESPACE))
    assert named in str(info.value), str(info.value)
    assert not ScheduledTask.objects.exists()


def test_the_good_twin_of_the_table_stores_one_row(db):
    punch_out.schedule(args=[1], countdown=60, expires=30, key="k", on_conflict="keep")
    assert ScheduledTask.objects.count() == 1


@pytest.mark.parametrize("call", [
    "celery_schedule.reschedule(punch_out.schedule(args=[1], countdown=60).id, 'tomorrow')",
    "punch_out.schedule(args=[1], countdown=60).reschedule(math.nan)",
])
def test_bad_reschedule_keeps_the_row_unchanged(db, call):
    with pytest.raises(ValueError):
        eval(call, dict(NAMESPACE))
    row = ScheduledTask.objects.get()
    assert row.due_at > datetime.now(timezone.utc) + timedelta(seconds=30)


def test_every_row_of_the_table_is_in_the_docs():
    text = DOC.read_text()
    documented = set(re.findall(r"^\| `([^`]+)` \|", text, flags=re.M))
    assert {row[0] for row in TABLE} <= documented
