"""Shared fixtures: the test project's Celery app, a real Redis broker queue, run counters."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timezone

import pytest
import time_machine
from django.db import connection, connections
from kombu import Queue

from tests.proj.celery import app as proj_app
from tests.proj.tasks import RUNS

# The frozen "now" of unit tests: 09:30 in Europe/Berlin (CET), the test app's zone.
NOW = datetime(2027, 3, 15, 8, 30, tzinfo=timezone.utc)


def pytest_report_header(config):
    return [f"celery_schedule database: {os.environ.get('CELERY_SCHEDULE_TEST_DB', 'sqlite')}"]


@pytest.fixture(scope="session", autouse=True)
def _require_services():
    """A required service that does not answer fails the run; it is never skipped."""
    for name, port in (("Redis", 6379),):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=3).close()
        except OSError as exc:
            pytest.exit(f"{name} on 127.0.0.1:{port} is not answering: {exc}", returncode=3)


@pytest.fixture
def frozen():
    """The clock stopped at NOW."""
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def threshold(settings):
    """Drop-in mode on: delays over 60 s become rows."""
    settings.CELERY_SCHEDULE_ETA_THRESHOLD = 60
    return 60


@pytest.fixture
def celery_app():
    return proj_app


@pytest.fixture
def vendor(db):
    return connection.vendor


class BrokerQueue:
    """A real queue on the test broker: purged at the start, read back by tests."""

    def __init__(self, app, name):
        self.app = app
        self.name = name

    def purge(self):
        with self.app.connection_for_write() as conn:
            try:
                Queue(self.name, channel=conn.default_channel).purge()
            except Exception:
                pass

    def messages(self, timeout: float = 0.5) -> list:
        """Take every message now in the queue (acked)."""
        taken = []
        with self.app.connection_for_read() as conn:
            with conn.SimpleQueue(Queue(self.name)) as queue:
                while True:
                    try:
                        msg = queue.get(block=True, timeout=timeout)
                    except queue.Empty:
                        break
                    msg.ack()
                    taken.append(msg)
        return taken

    def ids(self, timeout: float = 0.5) -> list[str]:
        return [m.headers["id"] for m in self.messages(timeout)]


@pytest.fixture
def broker(celery_app):
    """The app's default queue on real Redis, empty at the start of the test."""
    queue = BrokerQueue(celery_app, celery_app.conf.task_default_queue)
    queue.purge()
    yield queue
    queue.purge()


@pytest.fixture
def runs():
    """Read how often a task id ran (the test tasks record each run in Redis)."""

    class Runs:
        def count(self, task_id: str) -> int:
            return RUNS.llen(f"runs:{task_id}")

    return Runs()


@pytest.fixture
def unique():
    return lambda prefix="k": f"{prefix}-{uuid.uuid4().hex[:12]}"


def run_concurrently(threads: int, work: Callable[[int], None]) -> list[Exception]:
    """Run work(0..threads-1) in threads released together, each on its own connection.

    Returns the exceptions raised, for the test to assert on.
    """
    barrier = threading.Barrier(threads)
    errors: list[Exception] = []

    def run(n: int) -> None:
        try:
            barrier.wait()
            work(n)
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    pool = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return errors
