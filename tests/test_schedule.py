"""Task.schedule(): call forms, options, validation and transactions (scheduling.py)."""

import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.db import transaction
from kombu.utils.json import dumps as kombu_dumps
from kombu.utils.json import loads as kombu_loads

from celery_schedule import ScheduledResult
from celery_schedule.models import ScheduledTask
from tests.conftest import NOW
from tests.proj.tasks import echo_types, plain_add, punch_out

UTC = timezone.utc
pytestmark = pytest.mark.django_db



def only_row() -> ScheduledTask:
    (row,) = ScheduledTask.objects.all()
    return row


def test_schedule_with_eta_and_kwargs(frozen):
    due = datetime(2027, 4, 1, 9, 0, tzinfo=UTC)
    r = punch_out.schedule(args=[42], kwargs={"reason": "auto"}, eta=due)
    assert isinstance(r, ScheduledResult)
    row = only_row()
    assert (row.task_id, row.task_name) == (r.id, "tests.proj.tasks.punch_out")
    assert (row.task_args, row.task_kwargs, row.due_at) == ([42], {"reason": "auto"}, due)
    assert row.state == "pending" and row.attempts == 0 and row.key is None
    assert row.created_at == NOW


def test_countdown_is_seconds_never_days(frozen):
    punch_out.schedule(args=[42], countdown=86400)
    assert only_row().due_at == NOW + timedelta(days=1)


def test_countdown_timedelta(frozen):
    punch_out.schedule(args=[1], countdown=timedelta(hours=2))
    assert only_row().due_at == NOW + timedelta(hours=2)


def test_eta_iso_string_and_naive_datetime(frozen):
    punch_out.schedule(args=[1], eta="2027-01-01T09:30:00+01:00")
    punch_out.schedule(args=[2], eta=datetime(2027, 1, 1, 9, 30))
    dues = sorted(ScheduledTask.objects.values_list("due_at", flat=True))
    assert dues == [datetime(2027, 1, 1, 8, 30, tzinfo=UTC),
                    datetime(2027, 1, 1, 9, 30, tzinfo=UTC)]


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"eta": NOW, "countdown": 10}],
    ids=["neither", "both"],
)
def test_exactly_one_of_eta_and_countdown(kwargs):
    with pytest.raises(ValueError, match="exactly one of eta and countdown"):
        punch_out.schedule(args=[1], **kwargs)
    assert not ScheduledTask.objects.exists()


@pytest.mark.parametrize(
    "call, exc, named",
    [
        (dict(countdown="soon"), TypeError, "'soon'"),
        (dict(countdown=True), TypeError, "True"),
        (dict(countdown=float("nan")), ValueError, "nan"),
        (dict(eta="next tuesday"), ValueError, "'next tuesday'"),
        (dict(eta=12345), TypeError, "12345"),
        (dict(eta=timedelta(days=1)), TypeError, "timedelta"),
        (dict(countdown=10, expires="never"), ValueError, "'never'"),
        (dict(countdown=10, expires=[1]), TypeError, "[1]"),
        (dict(countdown=10, key=""), TypeError, "''"),
        (dict(countdown=10, key=5), TypeError, "5"),
        (dict(countdown=10, on_conflict="merge"), ValueError, "'merge'"),
    ],
)
def test_bad_values_raise_naming_them_and_store_nothing(call, exc, named):
    with pytest.raises(exc) as info:
        punch_out.schedule(args=[1], **call)
    assert named in str(info.value)
    assert not ScheduledTask.objects.exists()


class Opaque:
    pass


@pytest.mark.parametrize(
    "args, kwargs, exc",
    [
        ([Opaque()], None, TypeError),
        ([1], {"x": {1, 2}}, TypeError),
        ([1], {"x": b"\xff\xfe"}, None),
        ("42", None, TypeError),
        ({"a": 1}, None, TypeError),
        ([1], [("a", 1)], TypeError),
        ([1], {1: "a"}, TypeError),
    ],
)
def test_args_must_survive_celerys_json(args, kwargs, exc):
    if exc is None:
        echo_types.schedule(args=args, kwargs=kwargs, countdown=5)
        assert ScheduledTask.objects.count() == 1
        return
    with pytest.raises(exc):
        punch_out.schedule(args=args, kwargs=kwargs, countdown=5)
    assert not ScheduledTask.objects.exists()


@pytest.mark.parametrize(
    "call",
    [
        lambda: punch_out.schedule(args=[1, 2, 3], countdown=5),
        lambda: punch_out.schedule(kwargs={"nope": 1}, countdown=5),
        lambda: punch_out.s().schedule(5),
        lambda: plain_add.s(1, 2, 3).schedule(5),
    ],
)
def test_args_that_do_not_fit_the_task_raise_like_apply_async(call):
    with pytest.raises(TypeError):
        call()
    assert not ScheduledTask.objects.exists()


def test_unserializable_value_is_named():
    with pytest.raises(TypeError, match="Opaque"):
        punch_out.schedule(args=[Opaque()], countdown=5)


def test_values_round_trip_as_apply_async_with_json_would_deliver():
    values = [
        datetime(2027, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        datetime(2027, 1, 2, 3, 4, 5),
        date(2027, 1, 2),
        Decimal("10.10"),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        (1, 2),
        {"nested": [Decimal("1.5")]},
        "ünïcode",
        None,
        2**62,
        1.25,
    ]
    echo_types.schedule(args=values, kwargs={"when": values[0]}, countdown=5)
    row = ScheduledTask.objects.get()
    expected_args, expected_kwargs = kombu_loads(kombu_dumps((values, {"when": values[0]})))
    assert row.args == expected_args
    assert row.kwargs == expected_kwargs
    assert row.args[3] == Decimal("10.10") and isinstance(row.args[4], uuid.UUID)
    assert row.args[5] == [1, 2]


def test_options_kept_for_dispatch(frozen):
    punch_out.schedule(
        args=[1], countdown=60, queue="q1", routing_key="rk", exchange="ex", priority=5,
        headers={"tenant": "acme"}, time_limit=30, soft_time_limit=20, shadow="alias",
    )
    assert only_row().options == {
        "queue": "q1", "routing_key": "rk", "exchange": "ex", "priority": 5,
        "headers": {"tenant": "acme"}, "time_limit": 30, "soft_time_limit": 20,
        "shadow": "alias",
    }


def test_task_id_option_is_the_row_and_result_id():
    r = punch_out.schedule(args=[1], countdown=60, task_id="my-id-1")
    assert r.id == "my-id-1" and only_row().task_id == "my-id-1"
    assert "task_id" not in only_row().options


@pytest.mark.parametrize("expires", [3600, 3600.0, timedelta(hours=1)])
def test_relative_expires_counts_from_the_due_time(frozen, expires):
    from celery_schedule.message import expires_at

    punch_out.schedule(args=[1], countdown=86400, expires=expires)
    row = only_row()
    assert row.options["expires"] == 3600.0
    assert expires_at(row.options, row.due_at) == NOW + timedelta(days=1, hours=1)


def test_absolute_expires_is_kept_absolute(frozen):
    from celery_schedule.message import expires_at

    punch_out.schedule(args=[1], countdown=60, expires="2027-03-16T00:00:00+01:00")
    row = only_row()
    assert expires_at(row.options, row.due_at) == datetime(2027, 3, 15, 23, tzinfo=UTC)


def test_task_defaults_are_not_frozen_into_the_row():
    from tests.proj.tasks import routed

    routed.schedule(countdown=60)
    assert only_row().options == {}


def test_rollback_leaves_nothing_scheduled():
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            punch_out.schedule(args=[1], countdown=60)
            assert ScheduledTask.objects.count() == 1
            raise RuntimeError("rollback")
    assert not ScheduledTask.objects.exists()


def test_commit_keeps_the_row():
    with transaction.atomic():
        r = punch_out.schedule(args=[1], countdown=60)
    assert ScheduledTask.objects.get().task_id == r.id


def test_manager_schedule_by_name_needs_no_task_import(frozen):
    row = ScheduledTask.objects.schedule("some.other.project.task", 60, 1, 2, flag=True)
    assert isinstance(row, ScheduledTask)
    assert (row.task_name, row.task_args, row.task_kwargs) == (
        "some.other.project.task", [1, 2], {"flag": True})
    assert row.due_at == NOW + timedelta(seconds=60)
    assert ScheduledTask.objects.get().pk == row.pk


def test_manager_schedule_refuses_a_bad_name():
    with pytest.raises(TypeError, match="None"):
        ScheduledTask.objects.schedule(None, 60)
    assert not ScheduledTask.objects.exists()


def test_plain_task_schedules_through_signature(frozen):
    r = plain_add.s(1, 2).schedule(30)
    row = only_row()
    assert row.task_id == r.id and row.task_name == "tests.proj.tasks.plain_add"
    assert row.due_at == NOW + timedelta(seconds=30)
