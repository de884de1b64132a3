"""Broker down: a closed port and a broker killed mid-drain keep every row pending, log the
error, and the same --loop process publishes each kept row once the broker is back."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections import Counter

import pytest
import redis
from django.conf import settings
from django.db import connection

from celery_schedule.models import ScheduledTask

from .faultlib import delivery, make_due_rows, queue_ids, report, wait_until

pytestmark = pytest.mark.e2e

CLOSED = "redis://127.0.0.1:1/0"
BATCH = 500


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThrowawayRedis:
    """A redis-server of this test only, persisting every write so kill -9 loses none."""

    def __init__(self, directory):
        self.port = free_port()
        self.dir = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
             str(self.dir), "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        wait_until(lambda: self._answers(client), 30, f"redis-server on port {self.port}")
        client.close()

    @staticmethod
    def _answers(client) -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture
def throwaway_redis(tmp_path):
    server = ThrowawayRedis(tmp_path)
    server.start()
    yield server
    server.kill()


def pending_ids() -> set[str]:
    return set(ScheduledTask.objects.filter(state=ScheduledTask.PENDING, attempts=0)
               .values_list("task_id", flat=True))


def test_one_shot_with_closed_broker_port_keeps_rows_and_exits_1(spawn, transactional_db):
    ids = make_due_rows(300)
    started = time.monotonic()
    proc = spawn("oneshot", [sys.executable, "-m", "django", "enqueue_due_tasks"],
                 CELERY_SCHEDULE_TEST_BROKER=CLOSED)
    code = proc.popen.wait(timeout=120)
    elapsed = time.monotonic() - started
    log = proc.log()
    report(f"broker-closed-port-{connection.vendor}",
           {"rows": len(ids), "exit": code, "seconds": round(elapsed, 1)})
    assert code == 1, log
    assert "broker unreachable" in log and "Connection refused" in log, log
    assert "Traceback" not in log, log
    assert pending_ids() == set(ids)


def test_loop_with_closed_broker_port_stays_alive(start_loop, transactional_db):
    ids = make_due_rows(50)
    loop = start_loop("--interval", "0.3", CELERY_SCHEDULE_TEST_BROKER=CLOSED)
    wait_until(lambda: loop.log().count("broker unreachable") >= 3, 120, "three failed runs")
    assert loop.popen.poll() is None, loop.log()
    assert pending_ids() == set(ids)
    assert loop.stop() == 0


def test_broker_killed_mid_drain_then_back(start_loop, throwaway_redis, transactional_db):
    rows = 10_000
    ids = make_due_rows(rows)
    loop = start_loop("--interval", "0.5", "--batch-size", str(BATCH), name="loop",
                      CELERY_SCHEDULE_TEST_BROKER=throwaway_redis.url)
    wait_until(lambda: ScheduledTask.objects.count() <= rows - 2 * BATCH, 120, "draining")
    throwaway_redis.kill()
    wait_until(lambda: "broker unreachable" in loop.log(), 60, "the outage in the loop's log")
    kept = pending_ids()
    time.sleep(2)
    assert loop.popen.poll() is None, loop.log()
    assert pending_ids() == kept
    assert ScheduledTask.objects.count() == len(kept)

    throwaway_redis.start()
    wait_until(lambda: not ScheduledTask.objects.exists(), 300, "the table to drain")
    assert loop.popen.poll() is None, "the loop restarted or died"
    published = queue_ids(throwaway_redis.url, settings.CELERY_TASK_DEFAULT_QUEUE)
    counts = Counter(published)
    figures = delivery(ids, published)
    figures.update(vendor=connection.vendor, batch=BATCH, kept_pending_during_outage=len(kept),
                   kept_published_once=sum(counts[i] == 1 for i in kept),
                   outage_errors_logged=loop.log().count("broker unreachable"))
    report(f"broker-killed-{connection.vendor}", figures)
    assert loop.stop() == 0
    assert kept, "the broker went down after the table had drained"
    assert figures["missing"] == 0
    assert figures["kept_published_once"] == len(kept)
    assert figures["duplicates"] <= BATCH
