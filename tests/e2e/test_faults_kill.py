"""kill -9 of the `enqueue_due_tasks --loop` process while 20 000 due rows drain.

At least once, never lost: no id may be missing from the broker queue, and a
kill can duplicate at most the one batch it interrupted between publish and commit.
"""

from __future__ import annotations

import os
import random
import time

from django.db import connection

from celery_schedule.models import ScheduledTask

from .faultlib import (
    delivery,
    make_due_rows,
    queue_ids,
    report,
    server_databases_only,
    wait_until,
)

pytestmark = server_databases_only("the kill -9 drain is specified for PostgreSQL and MariaDB")

ROWS = 20_000
KILLS = 6
BATCH = 1000


def test_kill_9_during_drain_loses_nothing(start_loop, broker, celery_app):
    seed = int(os.environ.get("CELERY_SCHEDULE_FAULT_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    ids = make_due_rows(ROWS)
    started = time.monotonic()
    kills = []
    for n in range(KILLS):
        before = ScheduledTask.objects.count()
        if before == 0:
            break
        loop = start_loop("--interval", "0.5", "--batch-size", str(BATCH), name=f"loop{n}")
        target = before - rng.randrange(BATCH // 2, 2 * BATCH)
        wait_until(lambda t=target: ScheduledTask.objects.count() <= t, 120, f"{target} rows left")
        time.sleep(rng.uniform(0, 0.2))
        loop.kill()
        kills.append({"pending_before": before, "pending_after": ScheduledTask.objects.count()})

    last = start_loop("--interval", "0.5", "--batch-size", str(BATCH), name="last")
    wait_until(lambda: not ScheduledTask.objects.exists(), 300, "the table to drain")
    assert last.stop() == 0
    elapsed = time.monotonic() - started

    figures = delivery(ids, queue_ids(celery_app.conf.broker_url, broker.name))
    figures.update(vendor=connection.vendor, seed=seed, kills=len(kills), batch=BATCH,
                   mid_drain_kills=sum(k["pending_after"] < k["pending_before"] for k in kills),
                   seconds=round(elapsed, 1), kill_points=kills)
    report(f"kill-{connection.vendor}", figures)
    assert figures["missing"] == 0
    assert figures["strays"] == 0
    assert figures["duplicates"] <= len(kills) * BATCH
    assert len(kills) == KILLS
