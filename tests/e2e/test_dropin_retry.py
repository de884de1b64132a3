"""End to end: drop-in retries through a real worker and loop; the loop woken by NOTIFY."""

import time

import pytest

from celery_schedule.models import ScheduledTask
from tests.proj.tasks import flaky, punch_out

pytestmark = pytest.mark.e2e


def wait_until(predicate, timeout=30.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return None


def test_retry_past_the_threshold_waits_as_a_row_and_runs_again(start_worker, start_loop, runs):
    start_loop("--interval", "1")
    worker = start_worker(CELERY_SCHEDULE_TEST_ETA_THRESHOLD="2")
    r = flaky.delay(5)
    row = wait_until(lambda: ScheduledTask.objects.filter(task_id=r.id).first())
    assert row is not None, worker.log()[-3000:]
    assert row.task_name == flaky.name and row.args == [5]
    assert row.options["retries"] == 1
    assert runs.count(r.id) == 1
    assert r.get(timeout=60) == {"retries": 1}
    assert runs.count(r.id) == 2
    assert not ScheduledTask.objects.filter(task_id=r.id).exists()
    assert "Retry in 5s" in worker.log()


def test_loop_on_postgresql_wakes_for_a_row_due_before_its_next_run(start_loop, broker,
                                                                   db_vendor):
    if db_vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY exists on PostgreSQL only; other databases sleep")
    loop = start_loop("--interval", "30", "-v", "2")
    loop.wait_for("dispatched=0")
    time.sleep(1.0)
    start = time.monotonic()
    r = punch_out.schedule(args=[1], countdown=1)
    ids = wait_until(lambda: broker.ids(timeout=0.1), timeout=25.0)
    elapsed = time.monotonic() - start
    assert ids == [r.id], loop.log()
    assert elapsed < 10, f"published after {elapsed:.1f}s, the loop interval is 30s"
    assert "dispatched=1 failed=0" in loop.log()
