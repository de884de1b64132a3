"""schedule_many: validated like schedule(), all or nothing, one INSERT per chunk."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from celery_schedule import ScheduledResult, schedule_many
from celery_schedule.dispatch import dispatch_due
from celery_schedule.models import ScheduledTask
from tests.proj.tasks import plain_add, punch_out

pytestmark = pytest.mark.django_db(transaction=True)


def test_rows_match_what_schedule_stores():
    when = datetime(2031, 5, 1, 9, 30, tzinfo=timezone.utc)
    one = punch_out.s(7, reason="x").set(priority=4).schedule(when)
    [many] = schedule_many([(punch_out.s(7, reason="x").set(priority=4), when)])
    assert isinstance(many, ScheduledResult) and many.id != one.id
    a, b = ScheduledTask.objects.get(task_id=one.id), ScheduledTask.objects.get(task_id=many.id)
    fields = ("task_name", "task_args", "task_kwargs", "options", "due_at", "state", "key")
    assert [getattr(a, f) for f in fields] == [getattr(b, f) for f in fields]


def test_every_when_form_and_signature_options():
    results = schedule_many([
        (plain_add.s(1, 2), timedelta(days=1)),
        (plain_add.s(1, 2), 60),
        (plain_add.s(1, 2), "2031-01-01T00:00:00+01:00"),
        (plain_add.s(1, 2).set(countdown=30), None),
        (plain_add.s(1, 2).set(task_id="bulk-fixed-id", queue="q1"), 5),
    ])
    assert len(results) == 5 and results[4].id == "bulk-fixed-id"
    rows = {r.task_id: r for r in ScheduledTask.objects.all()}
    assert set(rows) == {r.id for r in results}
    assert rows[results[2].id].due_at == datetime(2030, 12, 31, 23, 0, tzinfo=timezone.utc)
    assert rows["bulk-fixed-id"].options == {"queue": "q1"}


@pytest.mark.parametrize(("bad", "error", "text"), [
    ((plain_add.s(object()), 60), TypeError, "item 1"),
    ((plain_add.s(1, 2), "not a date"), ValueError, "not a date"),
    ((plain_add.s(1, 2), None), ValueError, "item 1"),
    ((plain_add.s(1, 2).set(countdown=5), 10), ValueError, "item 1"),
    ((plain_add.s(1, 2) | plain_add.s(3), 10), TypeError, "item 1"),
    ("nonsense", TypeError, "item 1"),
    ((plain_add, 10), TypeError, "item 1"),
    ((plain_add.s(1, 2).set(key="k"), 10), ValueError, "key"),
])
def test_a_bad_item_raises_naming_it_and_stores_nothing(bad, error, text):
    with pytest.raises(error, match=text):
        schedule_many([(plain_add.s(1, 2), 60), bad, (plain_add.s(3, 4), 60)])
    assert ScheduledTask.objects.count() == 0


def test_a_clash_in_the_database_stores_nothing():
    plain_add.s(1, 2).set(task_id="taken").schedule(60)
    with pytest.raises(Exception):  # noqa: B017 - the database's IntegrityError
        schedule_many([(plain_add.s(1, 2), 60), (plain_add.s(1, 2).set(task_id="taken"), 60)])
    assert list(ScheduledTask.objects.values_list("task_id", flat=True)) == ["taken"]


def test_one_insert_per_chunk_or_one_copy_on_postgres(settings):
    settings.CELERY_SCHEDULE_BATCH_SIZE = 50
    items = [(plain_add.s(i, i), 60) for i in range(120)]
    with CaptureQueriesContext(connection) as queries:
        results = schedule_many(items)
    inserts = [q for q in queries if q["sql"].lstrip().upper().startswith("INSERT")]
    assert len(inserts) == (0 if connection.vendor == "postgresql" else 3)
    assert ScheduledTask.objects.count() == len(results) == 120
    stored = ScheduledTask.objects.order_by("id")
    assert [row.task_args for row in stored] == [[i, i] for i in range(120)]
    assert [row.task_id for row in stored] == [r.id for r in results]


def test_scheduled_rows_are_dispatched(broker):
    results = schedule_many([(plain_add.s(i, 1), -1) for i in range(3)])
    assert dispatch_due().dispatched == 3
    assert sorted(broker.ids()) == sorted(r.id for r in results)


def test_empty_input_stores_nothing():
    assert schedule_many([]) == []
    assert ScheduledTask.objects.count() == 0
