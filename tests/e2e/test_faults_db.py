"""Database connection lost under the --loop process (pg_terminate_backend / KILL CONNECTION):
the loop logs, reconnects and goes on, and no row is lost."""

from __future__ import annotations

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

pytestmark = server_databases_only("SQLite is a file, it has no server connection to kill")

ROWS = 6000
BATCH = 200
KILLS = 3


def kill_other_connections() -> int:
    """End every other server connection to this test database; returns how many."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            return cursor.fetchone()[0]
        cursor.execute("SELECT id FROM information_schema.processlist "
                       "WHERE db = DATABASE() AND id <> CONNECTION_ID()")
        ids = [row[0] for row in cursor.fetchall()]
        for pid in ids:
            cursor.execute(f"KILL CONNECTION {int(pid)}")
        return len(ids)


def errors_logged(log: str) -> int:
    """Database errors the loop logged: a failed run, or a claim retried on a new connection."""
    return log.count("database error") + log.count("claim retried")


def test_loop_survives_lost_database_connections(start_loop, broker, celery_app):
    ids = make_due_rows(ROWS)
    loop = start_loop("--interval", "0.3", "--batch-size", str(BATCH))
    killed = []
    for n in range(KILLS):
        target = ROWS * (KILLS - n) // (KILLS + 1)
        wait_until(lambda t=target: ScheduledTask.objects.count() <= t, 120, f"{target} rows left")
        killed.append(kill_other_connections())
        wait_until(lambda k=n + 1: errors_logged(loop.log()) >= k, 60,
                   f"database error #{n + 1} in the loop's log")
    wait_until(lambda: not ScheduledTask.objects.exists(), 300, "the table to drain")

    killed.append(kill_other_connections())
    late = make_due_rows(20)
    wait_until(lambda: errors_logged(loop.log()) > KILLS, 60, "the idle loop's database error")
    wait_until(lambda: not ScheduledTask.objects.exists(), 120, "rows added after the last kill")
    assert loop.popen.poll() is None, "the loop died or restarted"

    figures = delivery(ids + late, queue_ids(celery_app.conf.broker_url, broker.name))
    figures.update(vendor=connection.vendor, batch=BATCH, connections_killed=killed,
                   errors_logged=errors_logged(loop.log()))
    report(f"db-lost-{connection.vendor}", figures)
    assert loop.stop() == 0
    assert all(killed), "no loop connection was found to kill"
    assert figures["missing"] == 0
    assert figures["strays"] == 0
    assert figures["duplicates"] <= KILLS * BATCH
