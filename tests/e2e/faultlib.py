"""Helpers of the fault tests: bulk due rows, ids read straight from a Redis queue, figures."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from celery.utils import uuid

from celery_schedule.models import ScheduledTask
from celery_schedule.when import now_utc

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
TASK = "tests.proj.tasks.plain_add"


def make_due_rows(count: int, task_name: str = TASK, chunk: int = 5000) -> list[str]:
    """Insert `count` rows due a minute ago; returns their task ids."""
    due = now_utc() - timedelta(minutes=1)
    ids = [uuid() for _ in range(count)]
    for start in range(0, count, chunk):
        ScheduledTask.objects.bulk_create(
            ScheduledTask(task_id=task_id, task_name=task_name, task_args=[n, 1], due_at=due)
            for n, task_id in enumerate(ids[start:start + chunk], start)
        )
    return ids


def queue_ids(broker_url: str, queue: str) -> list[str]:
    """Task ids of every message in a kombu Redis queue (read, not consumed)."""
    client = redis.Redis.from_url(broker_url)
    try:
        raw = client.lrange(queue, 0, -1)
    finally:
        client.close()
    return [json.loads(item)["headers"]["id"] for item in raw]


def wait_until(check: Callable[[], bool], timeout: float, what: str, poll: float = 0.2) -> None:
    """Poll `check` until it holds; fail naming `what` after `timeout` seconds (a hang guard)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def delivery(expected: Iterable[str], published: Iterable[str]) -> dict[str, int]:
    """How the published ids compare with the expected ones: missing, duplicates, strays."""
    wanted = set(expected)
    counts = Counter(published)
    return {
        "expected": len(wanted),
        "published": sum(counts.values()),
        "missing": len(wanted - counts.keys()),
        "duplicates": sum(n - 1 for n in counts.values() if n > 1),
        "strays": len(counts.keys() - wanted),
    }


def report(name: str, figures: dict) -> None:
    """Print the figures of a fault test and keep them in artifacts/faults-<name>.json."""
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"faults-{name}.json").write_text(json.dumps(figures, indent=2, default=str))
    print(f"\n[faults] {name}: {json.dumps(figures, default=str)}")


def server_databases_only(why: str) -> list:
    """pytestmark of a fault test needing PostgreSQL or MariaDB (skipped on SQLite, by vendor)."""
    return [
        pytest.mark.e2e,
        pytest.mark.skipif(os.environ.get("CELERY_SCHEDULE_TEST_DB", "sqlite") == "sqlite",
                           reason=f"database vendor: {why}"),
    ]
