"""Scheduled.apply_async in drop-in mode (task.py): far eta/countdown become rows."""

import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from django.db import transaction

from celery_schedule import ScheduledResult
from celery_schedule.dispatch import dispatch_due
from celery_schedule.models import ScheduledTask
from celery_schedule.task import requested_delay
from tests.conftest import NOW
from tests.proj.tasks import plain_add, punch_out

UTC = timezone.utc
pytestmark = pytest.mark.django_db




def test_off_by_default_a_far_countdown_goes_to_the_broker(broker, frozen):
    r = punch_out.apply_async((1,), countdown=3600)
    assert not isinstance(r, ScheduledResult)
    assert ScheduledTask.objects.count() == 0
    (msg,) = broker.messages()
    assert msg.headers["id"] == r.id
    assert datetime.fromisoformat(msg.headers["eta"]) == NOW + timedelta(hours=1)


def test_countdown_past_the_threshold_becomes_a_row(broker, frozen, threshold):
    r = punch_out.apply_async((1,), {"reason": "late"}, countdown=3600)
    assert isinstance(r, ScheduledResult)
    row = ScheduledTask.objects.get()
    assert (row.task_id, row.task_name) == (r.id, punch_out.name)
    assert (row.args, row.kwargs) == ([1], {"reason": "late"})
    assert row.due_at == NOW + timedelta(hours=1)
    assert "eta" not in row.options and "countdown" not in row.options
    assert broker.ids() == []


@pytest.mark.parametrize(
    "eta",
    [
        datetime(2027, 3, 16, 8, 30, tzinfo=UTC),
        datetime(2027, 3, 16, 8, 30),
        "2027-03-16T09:30:00+01:00",
    ],
)
def test_eta_past_the_threshold_becomes_a_row(broker, frozen, threshold, eta):
    r = punch_out.apply_async((1,), eta=eta)
    assert ScheduledTask.objects.get(task_id=r.id).due_at == datetime(2027, 3, 16, 8, 30,
                                                                      tzinfo=UTC)
    assert broker.ids() == []


@pytest.mark.parametrize("delay", [{"countdown": 30}, {"countdown": 60},
                                   {"eta": NOW + timedelta(seconds=60)}, {}])
def test_at_or_under_the_threshold_goes_to_the_broker(broker, frozen, threshold, delay):
    r = punch_out.apply_async((1,), **delay)
    assert not isinstance(r, ScheduledResult)
    assert ScheduledTask.objects.count() == 0
    assert broker.ids() == [r.id]


def test_delay_without_eta_and_eta_in_the_past_go_to_the_broker(broker, frozen, threshold):
    a = punch_out.delay(1)
    b = punch_out.apply_async((2,), eta=NOW - timedelta(days=1))
    assert ScheduledTask.objects.count() == 0
    assert sorted(broker.ids()) == sorted([a.id, b.id])


def test_a_task_without_the_scheduled_base_is_not_intercepted(broker, frozen, threshold):
    r = plain_add.apply_async((1, 2), countdown=3600)
    assert ScheduledTask.objects.count() == 0
    assert broker.ids() == [r.id]


def test_task_always_eager_is_not_intercepted(celery_app, frozen, threshold, runs):
    celery_app.conf.task_always_eager = True
    try:
        r = punch_out.apply_async((7,), countdown=3600)
    finally:
        celery_app.conf.task_always_eager = False
    assert r.get() == {"shift": 7, "reason": None}
    assert ScheduledTask.objects.count() == 0
    assert runs.count(r.id) == 1


def test_options_and_task_id_are_kept_for_dispatch(celery_app, broker, frozen, threshold):
    r = punch_out.apply_async((1,), countdown=7200, task_id="given-id", priority=3,
                              headers={"tenant": "a"}, expires=600, shadow="renamed")
    assert r.id == "given-id"
    row = ScheduledTask.objects.get()
    assert row.options == {"priority": 3, "headers": {"tenant": "a"}, "expires": 600.0,
                           "shadow": "renamed"}
    with time_machine.travel(NOW + timedelta(hours=2), tick=False):
        assert dispatch_due(app=celery_app).dispatched == 1
    (msg,) = broker.messages()
    assert msg.headers["id"] == "given-id" and msg.headers["shadow"] == "renamed"
    assert msg.headers["tenant"] == "a" and msg.properties["priority"] == 3
    assert msg.headers["eta"] is None
    assert datetime.fromisoformat(msg.headers["expires"]) == NOW + timedelta(hours=2, minutes=10)


def test_countdown_wins_over_eta_as_in_celery(frozen, threshold, broker):
    punch_out.apply_async((1,), countdown=3600, eta=NOW + timedelta(days=9))
    assert ScheduledTask.objects.get().due_at == NOW + timedelta(hours=1)


@pytest.mark.parametrize(
    "call, error, text",
    [
        (dict(args=(1,), countdown="soon"), TypeError, "'soon'"),
        (dict(args=(1,), eta=12345), TypeError, "12345"),
        (dict(args=(1,), eta="tomorrow"), ValueError, "'tomorrow'"),
        (dict(args=(1, 2, 3), countdown=3600), TypeError, "argument"),
        (dict(args=(object(),), countdown=3600), TypeError, "object"),
    ],
)
def test_bad_calls_raise_and_store_nothing(frozen, threshold, broker, call, error, text):
    with pytest.raises(error, match=text):
        punch_out.apply_async(**call)
    assert ScheduledTask.objects.count() == 0
    assert broker.ids() == []


def test_intercepted_call_is_part_of_the_callers_transaction(frozen, threshold, broker):
    with pytest.raises(RuntimeError), transaction.atomic():
        punch_out.apply_async((1,), countdown=3600)
        assert ScheduledTask.objects.count() == 1
        raise RuntimeError("roll back")
    assert ScheduledTask.objects.count() == 0
    assert broker.ids() == []


def test_requested_delay():
    with time_machine.travel(NOW, tick=False):
        assert requested_delay(None, None) is None
        assert requested_delay(None, 0) is None
        assert requested_delay(None, timedelta(minutes=2)) == (120.0, 120.0)
        assert requested_delay(NOW + timedelta(seconds=5), None) == (NOW + timedelta(seconds=5),
                                                                     5.0)


def test_importing_the_task_module_imports_no_models():
    code = (
        "import sys\n"
        "import celery_schedule.task\n"
        "from celery import Celery\n"
        "app = Celery('x', task_cls='celery_schedule:Scheduled')\n"
        "@app.task\n"
        "def t(): pass\n"
        "assert isinstance(t._get_current_object(), celery_schedule.task.Scheduled)\n"
        "loaded = [m for m in sys.modules if m.startswith(('django.db.models', "
        "'celery_schedule.models', 'django.apps.registry'))]\n"
        "assert not [m for m in loaded if m.startswith('celery_schedule.models')], loaded\n"
        "print('ok')\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": "."}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
