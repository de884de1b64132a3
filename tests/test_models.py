"""ScheduledTask and its QuerySet: due(), schedule() by name, dedup keys enforced by the DB."""

from datetime import timedelta, timezone

import pytest
from django.db import IntegrityError, connection, transaction

from celery_schedule import AlreadyScheduled
from celery_schedule.models import ScheduledTask
from tests.conftest import NOW, run_concurrently
from tests.proj.tasks import punch_out

UTC = timezone.utc



@pytest.mark.django_db
def test_due_returns_pending_rows_whose_time_has_come(frozen):
    past = ScheduledTask.objects.schedule("t.past", -10)
    now = ScheduledTask.objects.schedule("t.now", 0)
    ScheduledTask.objects.schedule("t.future", 10)
    failed = ScheduledTask.objects.schedule("t.failed", -20)
    ScheduledTask.objects.filter(pk=failed.pk).update(state="failed")
    assert list(ScheduledTask.objects.due()) == [past, now]
    assert list(ScheduledTask.objects.due(NOW + timedelta(seconds=10))).__len__() == 3


@pytest.mark.django_db
def test_next_due_at_ignores_failed_rows(frozen):
    assert ScheduledTask.objects.next_due_at() is None
    failed = ScheduledTask.objects.schedule("t.a", 5)
    ScheduledTask.objects.filter(pk=failed.pk).update(state="failed")
    ScheduledTask.objects.schedule("t.b", 50)
    assert ScheduledTask.objects.next_due_at() == NOW + timedelta(seconds=50)


def test_due_query_uses_the_state_due_index():
    fields = [tuple(index.fields) for index in ScheduledTask._meta.indexes]
    assert ("state", "due_at") in fields


@pytest.mark.django_db
def test_due_query_plan_uses_the_index_on_postgres(vendor, frozen):
    if vendor != "postgresql":
        pytest.skip("query plan checked on PostgreSQL")
    ScheduledTask.objects.bulk_create(
        ScheduledTask(task_id=f"f{i}", task_name="t", due_at=NOW + timedelta(days=i))
        for i in range(1, 2000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE celery_schedule_scheduledtask")
    plan = ScheduledTask.objects.due(NOW)[:1000].explain()
    assert "celery_sched_state_due" in plan


@pytest.mark.django_db
def test_task_id_is_unique():
    ScheduledTask.objects.create(task_id="same", task_name="t", due_at=NOW)
    with pytest.raises(IntegrityError), transaction.atomic():
        ScheduledTask.objects.create(task_id="same", task_name="t", due_at=NOW)


@pytest.mark.django_db
def test_keep_returns_the_existing_row(frozen):
    first = punch_out.schedule(args=[1], countdown=60, key="pdf:42")
    second = punch_out.schedule(args=[2], countdown=999, key="pdf:42")
    assert second.id == first.id
    row = ScheduledTask.objects.get()
    assert row.task_args == [1] and row.due_at == NOW + timedelta(seconds=60)


@pytest.mark.django_db
def test_replace_takes_new_time_args_options_and_keeps_the_id(frozen):
    first = punch_out.schedule(args=[1], countdown=60, key="pdf:42", queue="a")
    second = punch_out.schedule(args=[2], kwargs={"reason": "x"}, countdown=999, key="pdf:42",
                                on_conflict="replace", queue="b")
    assert second.id == first.id
    row = ScheduledTask.objects.get()
    assert (row.task_args, row.task_kwargs, row.options) == ([2], {"reason": "x"}, {"queue": "b"})
    assert row.due_at == NOW + timedelta(seconds=999)


@pytest.mark.django_db
def test_raise_raises_already_scheduled_and_stores_nothing_new():
    first = punch_out.schedule(args=[1], countdown=60, key="pdf:42")
    with pytest.raises(AlreadyScheduled) as info:
        punch_out.schedule(args=[2], countdown=60, key="pdf:42", on_conflict="raise")
    assert info.value.task_id == first.id and "pdf:42" in str(info.value)
    assert ScheduledTask.objects.count() == 1


@pytest.mark.django_db
def test_keep_inside_the_callers_transaction_leaves_it_usable():
    with transaction.atomic():
        a = punch_out.schedule(args=[1], countdown=60, key="k")
        b = punch_out.schedule(args=[1], countdown=60, key="k")
        assert a.id == b.id
        assert ScheduledTask.objects.count() == 1


@pytest.mark.django_db
def test_a_failed_row_does_not_hold_its_key():
    failed = punch_out.schedule(args=[1], countdown=-1, key="k")
    ScheduledTask.objects.filter(task_id=failed.id).update(state="failed", pending_key=None)
    fresh = punch_out.schedule(args=[2], countdown=60, key="k")
    assert fresh.id != failed.id
    assert ScheduledTask.objects.filter(key="k").count() == 2
    assert ScheduledTask.objects.get(key="k", state="pending").task_id == fresh.id


@pytest.mark.django_db
def test_dedup_key_is_enforced_by_the_database_itself():
    ScheduledTask.objects.create(task_id="a", task_name="t", due_at=NOW, key="k", pending_key="k")
    with pytest.raises(IntegrityError), transaction.atomic():
        ScheduledTask.objects.create(task_id="b", task_name="t", due_at=NOW, key="k",
                                     pending_key="k")


@pytest.mark.django_db
def test_different_keys_and_no_key_do_not_conflict():
    punch_out.schedule(args=[1], countdown=60, key="a")
    punch_out.schedule(args=[1], countdown=60, key="b")
    punch_out.schedule(args=[1], countdown=60)
    punch_out.schedule(args=[1], countdown=60)
    assert ScheduledTask.objects.count() == 4


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("on_conflict", ["keep", "replace"])
def test_concurrent_schedules_of_one_key_leave_one_row(vendor, on_conflict):
    if vendor == "sqlite":
        pytest.skip("SQLite has a single writer; concurrency is tested on server databases")
    ids = []

    def work(n):
        for _ in range(5):
            with transaction.atomic():
                r = punch_out.schedule(args=[n], countdown=60, key="race", on_conflict=on_conflict)
            ids.append(r.id)

    assert run_concurrently(8, work) == []
    assert ScheduledTask.objects.filter(key="race").count() == 1
    assert set(ids) == {ScheduledTask.objects.get(key="race").task_id}


@pytest.mark.django_db
def test_str_and_decoded_args():
    row = ScheduledTask.objects.schedule("t.x", "2027-01-01T00:00:00Z", 1, when=NOW)
    assert "t.x" in str(row) and "2027-01-01" in str(row)
    assert row.args == [1] and row.kwargs == {"when": NOW}
