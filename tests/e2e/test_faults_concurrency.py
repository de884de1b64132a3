"""4 dispatcher processes drain 20 000 rows while other processes schedule, cancel, reschedule.

Every id that is still meant to run is published exactly once, an id whose
cancel() returned True is never published, and no caller sees a database error.
"""

from __future__ import annotations

import json
import random
import sys
import time
from datetime import timedelta

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from celery_schedule.models import ScheduledTask
from celery_schedule.when import now_utc

from .faultlib import (
    delivery,
    make_due_rows,
    queue_ids,
    report,
    server_databases_only,
    wait_until,
)

pytestmark = server_databases_only("concurrent dispatchers with row locks are PostgreSQL/MariaDB")

ROWS = 20_000
DISPATCHERS = 4
CHURNERS = 2
CHURN_OPS = 300


def churn(count: int, seed: int) -> None:
    """Schedule tasks due now and race the dispatchers with cancel/reschedule; print each op."""
    from tests.proj.tasks import punch_out

    rng = random.Random(seed)
    for n in range(count):
        result = punch_out.schedule(args=[n], countdown=0)
        time.sleep(rng.uniform(0, 0.02))
        op = rng.choice(["keep", "cancel", "cancel", "later", "now"])
        if op == "cancel":
            done = result.cancel()
        elif op == "later":
            done = result.reschedule(timedelta(days=30))
        elif op == "now":
            done = result.reschedule(now_utc())
        else:
            done = True
        print("OP " + json.dumps({"id": result.id, "op": op, "done": done}), flush=True)


def ops_of(log: str) -> list[dict]:
    return [json.loads(line[3:]) for line in log.splitlines() if line.startswith("OP ")]


def test_four_dispatchers_with_concurrent_callers(spawn, start_loop, broker, celery_app):
    ids = make_due_rows(ROWS)
    started = time.monotonic()
    loops = [start_loop("--interval", "0.2", "--batch-size", "500", name=f"dispatcher{n}")
             for n in range(DISPATCHERS)]
    churners = [
        spawn(f"churn{n}", [sys.executable, "-c",
                            "import django; django.setup(); "
                            "from tests.e2e.test_faults_concurrency import churn; "
                            f"churn({CHURN_OPS}, {n})"])
        for n in range(CHURNERS)
    ]
    for proc in churners:
        proc.popen.wait(timeout=300)
    wait_until(lambda: not ScheduledTask.objects.due().exists(), 300, "every due row published")
    time.sleep(1)
    codes = [loop.stop() for loop in loops]
    elapsed = time.monotonic() - started

    for proc in churners:
        assert proc.popen.returncode == 0, proc.log()[-3000:]
        assert "Error" not in proc.log(), proc.log()[-3000:]
    ops = [op for proc in churners for op in ops_of(proc.log())]
    assert len(ops) == CHURNERS * CHURN_OPS

    published = queue_ids(celery_app.conf.broker_url, broker.name)
    cancelled = {o["id"] for o in ops if o["op"] == "cancel" and o["done"]}
    deferred = {o["id"] for o in ops if o["op"] == "later" and o["done"]}
    expected = set(ids) | {o["id"] for o in ops} - cancelled - deferred
    figures = delivery(expected, published)
    waiting = set(ScheduledTask.objects.values_list("task_id", flat=True))
    figures.update(
        vendor=connection.vendor, dispatchers=DISPATCHERS, seconds=round(elapsed, 1),
        churn_ops=len(ops), cancelled=len(cancelled), deferred=len(deferred),
        cancel_lost_race=sum(o["op"] == "cancel" and not o["done"] for o in ops),
        reschedule_lost_race=sum(o["op"] != "cancel" and not o["done"] for o in ops),
        dispatcher_db_errors=sum(loop.log().count("database error") for loop in loops),
    )
    report(f"concurrency-{connection.vendor}", figures)

    assert codes == [0] * DISPATCHERS
    assert figures["missing"] == 0
    assert figures["duplicates"] == 0
    assert not cancelled & set(published), "an id was published after cancel() returned True"
    assert not deferred & set(published)
    assert deferred <= waiting
    assert not cancelled & waiting


def test_claim_skips_locked_rows_where_the_server_can(transactional_db):
    make_due_rows(3)
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        ScheduledTask.objects.claim(now_utc(), 2)
        transaction.set_rollback(True)
    claim_sql = next(q["sql"] for q in queries if "FOR UPDATE" in q["sql"])
    assert connection.features.has_select_for_update_skip_locked
    assert "SKIP LOCKED" in claim_sql
