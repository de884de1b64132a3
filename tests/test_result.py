"""ScheduledResult, cancel() and reschedule(), and the database a row goes to."""

from datetime import datetime, timedelta, timezone

import pytest
from celery.result import AsyncResult
from django.test import override_settings

import celery_schedule
from celery_schedule import ScheduledResult
from celery_schedule.message import expires_at
from celery_schedule.models import ScheduledTask
from tests.conftest import NOW
from tests.proj.tasks import punch_out

UTC = timezone.utc
pytestmark = pytest.mark.django_db



def test_result_is_an_async_result_with_the_message_id(celery_app):
    r = punch_out.schedule(args=[1], countdown=60)
    assert isinstance(r, AsyncResult) and isinstance(r, ScheduledResult)
    assert r.id == ScheduledTask.objects.get().task_id
    assert r.app is celery_app
    assert r.row.task_id == r.id


def test_cancel_removes_a_pending_row_once():
    r = punch_out.schedule(args=[1], countdown=60)
    other = punch_out.schedule(args=[2], countdown=60)
    assert r.cancel() is True
    assert r.cancel() is False
    assert r.row is None
    assert list(ScheduledTask.objects.values_list("task_id", flat=True)) == [other.id]


def test_cancel_removes_a_failed_row():
    r = punch_out.schedule(args=[1], countdown=60)
    ScheduledTask.objects.filter(task_id=r.id).update(state="failed")
    assert celery_schedule.cancel(r.id) is True
    assert not ScheduledTask.objects.exists()


def test_cancel_of_an_unknown_id_is_false():
    assert celery_schedule.cancel("no-such-id") is False


def test_reschedule_moves_the_due_time(frozen):
    r = punch_out.schedule(args=[1], countdown=60)
    assert r.reschedule(timedelta(days=2)) is True
    assert r.row.due_at == NOW + timedelta(days=2)
    assert celery_schedule.reschedule(r.id, "2027-05-01T00:00:00Z") is True
    assert r.row.due_at == datetime(2027, 5, 1, tzinfo=UTC)


def test_reschedule_of_unknown_or_dispatched_is_false():
    assert celery_schedule.reschedule("no-such-id", 60) is False


def test_reschedule_makes_a_failed_row_pending_and_keeps_attempts(frozen):
    r = punch_out.schedule(args=[1], countdown=-5, key="k")
    ScheduledTask.objects.filter(task_id=r.id).update(
        state="failed", attempts=3, last_error="boom", pending_key=None)
    assert r.reschedule(30) is True
    row = r.row
    assert (row.state, row.attempts, row.due_at) == ("pending", 3, NOW + timedelta(seconds=30))
    with pytest.raises(celery_schedule.AlreadyScheduled):
        punch_out.schedule(args=[1], countdown=5, key="k", on_conflict="raise")


def test_reschedule_of_a_failed_row_whose_key_is_taken_raises(frozen):
    old = punch_out.schedule(args=[1], countdown=-5, key="k")
    ScheduledTask.objects.filter(task_id=old.id).update(state="failed", pending_key=None)
    new = punch_out.schedule(args=[2], countdown=60, key="k")
    with pytest.raises(celery_schedule.AlreadyScheduled) as info:
        old.reschedule(30)
    assert info.value.task_id == new.id
    assert old.row.state == "failed" and new.row.due_at == NOW + timedelta(seconds=60)


def test_relative_expires_moves_with_reschedule_absolute_does_not(frozen):
    rel = punch_out.schedule(args=[1], countdown=60, expires=timedelta(minutes=10))
    absolute = punch_out.schedule(args=[2], countdown=60, expires=NOW + timedelta(hours=1))
    rel.reschedule(timedelta(days=1))
    absolute.reschedule(timedelta(days=1))
    rel_row, abs_row = rel.row, absolute.row
    assert expires_at(rel_row.options, rel_row.due_at) == NOW + timedelta(days=1, minutes=10)
    assert expires_at(abs_row.options, abs_row.due_at) == NOW + timedelta(hours=1)


def test_bad_reschedule_value_raises_and_changes_nothing(frozen):
    r = punch_out.schedule(args=[1], countdown=60)
    with pytest.raises(ValueError, match="'someday'"):
        r.reschedule("someday")
    assert r.row.due_at == NOW + timedelta(seconds=60)


@pytest.mark.django_db(databases=["default", "other"])
def test_using_overrides_the_database():
    r = punch_out.schedule(args=[1], countdown=60, using="other")
    s = punch_out.s(2).schedule(60, using="other")
    assert not ScheduledTask.objects.exists()
    assert ScheduledTask.objects.using("other").count() == 2
    assert r.row is not None and s.row is not None
    assert r.cancel() is True and ScheduledTask.objects.using("other").count() == 1


class OtherRouter:
    def db_for_write(self, model, **hints):
        return "other" if model is ScheduledTask else None

    db_for_read = db_for_write


@pytest.mark.django_db(databases=["default", "other"])
def test_rows_go_where_the_routers_say():
    with override_settings(DATABASE_ROUTERS=[f"{__name__}.OtherRouter"]):
        r = punch_out.schedule(args=[1], countdown=60)
        assert ScheduledTask.objects.using("other").filter(task_id=r.id).exists()
        assert not ScheduledTask.objects.using("default").exists()
        assert r.reschedule(120) is True
        assert r.cancel() is True
