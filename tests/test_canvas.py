"""Signature.schedule(): install/uninstall, when forms, the signature's own options."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from celery import chain, chord, group
from celery.canvas import Signature
from dateutil.relativedelta import relativedelta

import celery_schedule
from celery_schedule import ScheduledResult
from celery_schedule.canvas import installed
from celery_schedule.models import ScheduledTask
from tests.conftest import NOW
from tests.proj.tasks import plain_add, punch_out

UTC = timezone.utc



def due_at() -> datetime:
    return ScheduledTask.objects.get().due_at


def test_installed_when_the_app_is_ready():
    assert installed() and callable(Signature.schedule)


def test_install_and_uninstall_are_idempotent():
    try:
        celery_schedule.uninstall()
        celery_schedule.uninstall()
        assert not hasattr(Signature, "schedule")
        celery_schedule.install()
        celery_schedule.install()
        assert installed()
    finally:
        celery_schedule.install()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "when, expected",
    [
        (timedelta(days=365), NOW + timedelta(days=365)),
        (90, NOW + timedelta(seconds=90)),
        (2.5, NOW + timedelta(seconds=2.5)),
        (relativedelta(months=+1), datetime(2027, 4, 15, 7, 30, tzinfo=UTC)),
        (datetime(2027, 1, 1, 9, 30, tzinfo=ZoneInfo("Europe/Berlin")),
         datetime(2027, 1, 1, 8, 30, tzinfo=UTC)),
        ("2027-01-01T09:30:00+01:00", datetime(2027, 1, 1, 8, 30, tzinfo=UTC)),
    ],
)
def test_when_forms(frozen, when, expected):
    r = punch_out.s(42, reason="auto").schedule(when)
    assert isinstance(r, ScheduledResult)
    row = ScheduledTask.objects.get()
    assert (row.task_id, row.task_args, row.task_kwargs) == (r.id, [42], {"reason": "auto"})
    assert row.due_at == expected


@pytest.mark.django_db
def test_relativedelta_uses_app_timezone_at_the_call(frozen, celery_app):
    assert str(celery_app.timezone) == "Europe/Berlin"
    punch_out.s(1).schedule(relativedelta(months=+1))
    assert due_at().astimezone(ZoneInfo("Europe/Berlin")).hour == 9


@pytest.mark.django_db
@pytest.mark.parametrize(
    "options, expected",
    [({"countdown": 60}, NOW + timedelta(seconds=60)),
     ({"eta": datetime(2027, 6, 1, tzinfo=UTC)}, datetime(2027, 6, 1, tzinfo=UTC))],
)
def test_when_none_uses_the_signatures_own_option(frozen, options, expected):
    punch_out.s(42).set(**options).schedule()
    assert due_at() == expected
    assert "countdown" not in ScheduledTask.objects.get().options


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sig, when, options",
    [
        (punch_out.s(1), None, {}),
        (punch_out.s(1).set(countdown=5, eta=NOW), None, {}),
        (punch_out.s(1).set(countdown=5), 10, {}),
        (punch_out.s(1), 10, {"eta": NOW}),
        (punch_out.s(1), None, {"countdown": 5, "eta": NOW}),
    ],
    ids=["neither", "both-on-signature", "when-and-countdown", "when-and-eta", "both-options"],
)
def test_ambiguous_or_missing_due_time_is_a_value_error(sig, when, options):
    with pytest.raises(ValueError):
        sig.schedule(when, **options)
    assert not ScheduledTask.objects.exists()


@pytest.mark.django_db
def test_signature_options_and_call_options_are_merged(frozen):
    r = punch_out.s(1).set(queue="low", priority=3).schedule(60, priority=7, task_id="t-1")
    row = ScheduledTask.objects.get()
    assert r.id == row.task_id == "t-1"
    assert row.options == {"queue": "low", "priority": 7}


@pytest.mark.django_db
def test_works_for_tasks_without_the_scheduled_base(frozen):
    plain_add.si(2, 3).schedule(timedelta(minutes=5))
    row = ScheduledTask.objects.get()
    assert row.task_name == plain_add.name and row.task_args == [2, 3]


@pytest.mark.django_db
def test_signature_by_name_only(frozen, celery_app):
    celery_app.signature("some.remote.task", args=(1,)).schedule(10)
    assert ScheduledTask.objects.get().task_name == "some.remote.task"


@pytest.mark.django_db
def test_linked_callbacks_are_kept_as_signatures(frozen):
    punch_out.s(1).set(link=plain_add.s(1)).schedule(10)
    link = ScheduledTask.objects.get().options["link"]
    assert link["task"] == plain_add.name and link["args"] == [1]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "canvas",
    [
        chain(plain_add.s(1, 2), plain_add.s(3)),
        plain_add.s(1, 2) | plain_add.s(3),
        group(plain_add.s(1, 2), plain_add.s(3, 4)),
        chord([plain_add.s(1, 2)], plain_add.s(3)),
    ],
    ids=["chain", "pipe", "group", "chord"],
)
def test_chains_groups_and_chords_raise_type_error(canvas):
    with pytest.raises(TypeError, match="cannot schedule"):
        canvas.schedule(10)
    assert not ScheduledTask.objects.exists()


@pytest.mark.django_db
def test_unserializable_signature_args_store_nothing():
    with pytest.raises(TypeError):
        plain_add.s(object(), 1).schedule(10)
    assert not ScheduledTask.objects.exists()
