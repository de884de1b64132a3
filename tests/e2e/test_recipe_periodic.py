"""Recipe "periodic work without job explosions", with a real worker, the loop and celery beat.

The task schedules its own next run with a dedup key before it works, so at most
one run is ever pending: a worker outage of many periods is followed by one run,
and a crash inside the task still leaves the next run scheduled.
"""

from __future__ import annotations

import sys
import time

import pytest
from kombu import Queue

from celery_schedule.models import ScheduledTask
from tests.e2e.conftest import ARTIFACTS
from tests.proj.tasks import RUNS, scan_pdfs

pytestmark = pytest.mark.e2e

PERIOD = 1.0


def scans(key: str) -> int:
    return RUNS.llen(f"scans:{key}")


def waiting(app) -> int:
    """Messages now in the app's default queue (not consumed)."""
    with app.connection_for_write() as conn:
        queue = Queue(app.conf.task_default_queue, channel=conn.default_channel)
        return queue.queue_declare().message_count


def wait_until(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout}s: {what}")
        time.sleep(0.1)


def rows(key: str):
    return ScheduledTask.objects.filter(key=key)


def test_worker_outage_is_followed_by_exactly_one_run(start_worker, start_loop, celery_app,
                                                      broker, unique):
    key = unique("scan")
    loop = start_loop("--interval", "0.2")
    worker = start_worker()
    scan_pdfs.s(period=PERIOD, key=key).schedule(0, key=key)
    wait_until(lambda: scans(key) >= 2, "two periodic runs")

    worker.stop()
    before = scans(key)
    wait_until(lambda: not rows(key).exists(), "the pending run dispatched to the stopped worker")
    time.sleep(4 * PERIOD)
    assert waiting(celery_app) == 1, "one message for an outage of several periods"
    assert not rows(key).exists(), "no further run was scheduled while none ran"

    loop.stop()
    start_worker(name="worker-again")
    wait_until(lambda: scans(key) == before + 1, "the one run after the outage")
    wait_until(lambda: rows(key).filter(state=ScheduledTask.PENDING).count() == 1,
               "the next run scheduled by that run")
    wait_until(lambda: waiting(celery_app) == 0, "the queue drained")
    assert scans(key) == before + 1
    assert rows(key).count() == 1


def test_a_crashing_run_still_leaves_the_next_run_scheduled(start_worker, start_loop, broker,
                                                            unique):
    key = unique("scan-crash")
    start_loop("--interval", "0.2")
    worker = start_worker()
    scan_pdfs.s(period=PERIOD, key=key, crash=True).schedule(0, key=key)
    wait_until(lambda: scans(key) >= 3, "three runs, each one crashing")
    wait_until(lambda: worker.log().count("RuntimeError: scan crashed") >= 3,
               "three crashes logged")
    wait_until(lambda: rows(key).filter(state=ScheduledTask.PENDING).count() == 1,
               "the next run pending")
    assert rows(key).count() == 1


def test_celery_beat_queues_one_message_per_period_while_workers_are_down(spawn, celery_app,
                                                                            broker,
                                                                            transactional_db):
    """The contrast: a beat periodic task piles up one message per period during an outage."""
    beat = spawn("beat", [sys.executable, "-m", "celery", "-A", "tests.proj", "beat", "-l", "info",
                          "-s", str(ARTIFACTS / f"beat-recipe-{time.monotonic_ns()}"),
                          "--max-interval", "1"],
                 CELERY_SCHEDULE_TEST_BEAT_INTERVAL=str(PERIOD))
    beat.wait_for("beat: Starting")
    wait_until(lambda: waiting(celery_app) >= 4, "one message per period, four periods")
    beat.stop()
    tasks = {m.headers["task"] for m in broker.messages()}
    assert tasks == {"celery_schedule.enqueue_due_tasks"}
