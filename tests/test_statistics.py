"""celery_schedule.stats(): counts, lag, next due time and per task name, on real databases."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest

import celery_schedule
from celery_schedule.models import ScheduledTask
from celery_schedule.statistics import Stats, lag_seconds, stats

NOW = datetime(2030, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
PUNCH = "tests.proj.tasks.punch_out"
ADD = "tests.proj.tasks.plain_add"


def row(task_name: str, due_at: datetime, *args, failed: bool = False) -> ScheduledTask:
    created = ScheduledTask.objects.schedule(task_name, due_at, *args)
    if failed:
        ScheduledTask.objects.filter(pk=created.pk).update(
            state=ScheduledTask.FAILED, attempts=1, last_error="UnknownTask: boom"
        )
    return created


@pytest.fixture
def table(db):
    row(PUNCH, NOW - timedelta(seconds=90), 1)
    row(PUNCH, NOW - timedelta(seconds=10), 2)
    row(PUNCH, NOW + timedelta(hours=1), 3)
    row(ADD, NOW + timedelta(seconds=60), 1, 2)
    row(ADD, NOW - timedelta(seconds=5), 3, 4)
    row("no.such.task", NOW - timedelta(days=1), failed=True)


def test_empty_table(db):
    result = stats(now=NOW)
    assert (result.pending, result.due, result.failed) == (0, 0, 0)
    assert result.lag == 0.0
    assert result.oldest_due_at is None and result.next_due_at is None
    assert result.tasks == {}


def test_counts_lag_and_next_due(table):
    result = stats(now=NOW)
    assert result.pending == 5
    assert result.due == 3
    assert result.failed == 1
    assert result.oldest_due_at == NOW - timedelta(seconds=90)
    assert result.lag == 90.0
    assert result.next_due_at == NOW + timedelta(seconds=60)
    assert result.now == NOW


def test_failed_rows_do_not_count_as_due_or_lag(db):
    row("no.such.task", NOW - timedelta(days=1), failed=True)
    result = stats(now=NOW)
    assert (result.pending, result.due, result.failed, result.lag) == (0, 0, 1, 0.0)


def test_per_task_breakdown(table):
    tasks = stats(now=NOW).tasks
    assert sorted(tasks) == sorted([ADD, "no.such.task", PUNCH])
    assert list(tasks) == sorted(tasks)
    punch = tasks[PUNCH]
    assert (punch.pending, punch.due, punch.failed, punch.lag) == (3, 2, 0, 90.0)
    assert punch.next_due_at == NOW + timedelta(hours=1)
    add = tasks[ADD]
    assert (add.pending, add.due, add.failed, add.lag) == (2, 1, 0, 5.0)
    assert add.oldest_due_at == NOW - timedelta(seconds=5)
    assert add.next_due_at == NOW + timedelta(seconds=60)
    missing = tasks["no.such.task"]
    assert (missing.pending, missing.due, missing.failed) == (0, 0, 1)
    assert missing.oldest_due_at is None and missing.next_due_at is None


def test_moving_now_moves_due_and_lag(table):
    later = stats(now=NOW + timedelta(minutes=2))
    assert later.due == 4
    assert later.lag == 210.0
    assert later.next_due_at == NOW + timedelta(hours=1)
    earlier = stats(now=NOW - timedelta(minutes=5))
    assert earlier.due == 0 and earlier.lag == 0.0
    assert earlier.next_due_at == NOW - timedelta(seconds=90)


def test_two_queries_whatever_the_size(table, django_assert_num_queries):
    for i in range(20):
        row(f"tests.proj.tasks.t{i}", NOW - timedelta(seconds=i))
    with django_assert_num_queries(2):
        result = stats(now=NOW)
    assert len(result.tasks) == 23


def test_naive_now_means_utc(table):
    assert stats(now=NOW.replace(tzinfo=None)) == stats(now=NOW)


def test_default_now_is_the_current_time(db):
    row(PUNCH, datetime.now(timezone.utc) - timedelta(hours=2), 1)
    result = stats()
    assert result.due == 1
    assert 7200 <= result.lag < 7200 + 600


@pytest.mark.parametrize("bad", ["2030-05-01", 12, object()])
def test_bad_now_is_refused_with_its_value(db, bad):
    with pytest.raises(TypeError, match=re.escape(repr(bad))):
        stats(now=bad)


def test_as_dict_is_json(table):
    data = json.loads(json.dumps(stats(now=NOW).as_dict()))
    assert data["due"] == 3
    assert data["oldest_due_at"] == (NOW - timedelta(seconds=90)).isoformat()
    assert data["tasks"][PUNCH]["next_due_at"] == (NOW + timedelta(hours=1)).isoformat()
    assert data["tasks"]["no.such.task"]["oldest_due_at"] is None


def test_exported_lazily_from_the_package(table):
    result = celery_schedule.stats(now=NOW)
    assert isinstance(result, Stats) and result.due == 3


def test_lag_never_negative():
    assert lag_seconds(NOW + timedelta(seconds=3), NOW) == 0.0
    assert lag_seconds(None, NOW) == 0.0
    assert lag_seconds(NOW - timedelta(milliseconds=1500), NOW) == 1.5
