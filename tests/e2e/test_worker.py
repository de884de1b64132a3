"""End to end: a real worker with beat running enqueue_due_tasks, on Redis and on RabbitMQ."""

import time
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from celery.result import AsyncResult

from celery_schedule.models import ScheduledTask
from tests.proj.tasks import echo_types, plain_add, punch_out

UTC = timezone.utc
BROKERS = {
    "redis": "redis://127.0.0.1:6379/15",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//",
}


def wait_until(predicate, timeout=30.0, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


@pytest.mark.e2e
@pytest.mark.parametrize("broker_name", sorted(BROKERS))
def test_scheduled_tasks_run_once_with_their_ids(start_worker, runs, celery_app, broker_name):
    soon = datetime.now(UTC) + timedelta(seconds=2)
    stamp = datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)
    results = {
        "eta": punch_out.schedule(args=[1], kwargs={"reason": "eta"}, eta=soon),
        "timedelta": punch_out.s(2, reason="td").schedule(timedelta(seconds=2)),
        "set-countdown": punch_out.s(3).set(countdown=2).schedule(),
        "plain": plain_add.s(2, 3).schedule(1),
        "types": echo_types.s(stamp, Decimal("1.10"), uuid.UUID(int=7), date(2027, 1, 2),
                              when=stamp).schedule(1),
    }
    cancelled = punch_out.s(99).schedule(1)
    assert cancelled.cancel() is True
    moved = punch_out.s(7).schedule(timedelta(days=30))
    far = punch_out.s(8).schedule(timedelta(days=30))
    assert moved.reschedule(1) is True

    start_worker(beat=True, CELERY_SCHEDULE_TEST_BROKER=BROKERS[broker_name])

    assert results["eta"].get(timeout=30) == {"shift": 1, "reason": "eta"}
    assert results["timedelta"].get(timeout=30) == {"shift": 2, "reason": "td"}
    assert results["set-countdown"].get(timeout=30) == {"shift": 3, "reason": None}
    assert AsyncResult(results["plain"].id, app=celery_app).get(timeout=30) == 5
    assert results["types"].get(timeout=30) == [
        repr(stamp), repr(Decimal("1.10")), repr(uuid.UUID(int=7)), repr(date(2027, 1, 2)),
        f"when={stamp!r}",
    ]
    assert moved.get(timeout=30) == {"shift": 7, "reason": None}
    time.sleep(2)
    for r in [*results.values(), moved]:
        assert runs.count(r.id) == 1, r.id
    assert runs.count(cancelled.id) == 0
    assert list(ScheduledTask.objects.values_list("task_id", flat=True)) == [far.id]


@pytest.mark.e2e
def test_loop_command_instead_of_beat(start_worker, start_loop, runs):
    r = punch_out.s(5).schedule(2)
    start_worker()
    loop = start_loop("--interval", "1")
    assert r.get(timeout=30) == {"shift": 5, "reason": None}
    assert runs.count(r.id) == 1
    assert wait_until(lambda: "dispatched=1" in loop.log())
    assert loop.stop() == 0
    assert "dispatcher loop stopped" in loop.log()
