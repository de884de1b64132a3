"""PostgreSQL LISTEN/NOTIFY: schedule() announces new rows so the dispatcher loop wakes early.

`notify_scheduled` sends the row's due time on CHANNEL (inside a transaction PostgreSQL
delivers it at commit, never after a rollback). The loop waits with `waiter(using)`:
on PostgreSQL a `Listener` that returns when a row due before its wake-up arrives,
elsewhere a plain `Sleeper`.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from django.db import connections

from . import conf
from .when import now_utc

logger = logging.getLogger("celery_schedule.notify")

CHANNEL = "celery_schedule"
# Longest single blocking wait, so a stop request is seen quickly.
SLICE = 0.5


def is_postgresql(using: str) -> bool:
    return connections[using].vendor == "postgresql"


def notify_scheduled(using: str, due_at: datetime) -> None:
    """Tell listening dispatcher loops that a row due at `due_at` exists (PostgreSQL only).

    Only a row due within CELERY_SCHEDULE_LOOP_INTERVAL needs it: a loop never sleeps
    longer, so it finds a later row by itself, and far-future rows cost no round trip.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    if due_at > now_utc() + timedelta(seconds=conf.loop_interval()):
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, repr(due_at.timestamp())])


class Sleeper:
    """The wake-up of databases without NOTIFY: sleep the whole time, or until stopped."""

    def wait(self, stop: threading.Event, seconds: float) -> None:
        stop.wait(seconds)

    def close(self) -> None:
        pass


class Listener:
    """LISTENs on CHANNEL over its own connection; `wait` ends early for rows due before it ends.

    A broken or unreachable listen connection is logged and the wait falls back to
    sleeping; it reconnects on the next wait.
    """

    def __init__(self, using: str) -> None:
        self.using = using
        self.connection: Any = None
        self.payloads: list[str] = []

    def connect(self) -> None:
        base = connections[self.using]
        connection = type(base)(dict(base.settings_dict), self.using)
        connection.ensure_connection()
        connection.set_autocommit(True)
        self.connection = connection
        raw = connection.connection
        if hasattr(raw, "add_notify_handler"):
            raw.add_notify_handler(lambda notify: self.payloads.append(notify.payload))
        with connection.cursor() as cursor:
            cursor.execute(f"LISTEN {CHANNEL}")

    def received(self) -> list[str]:
        """Payloads that arrived on the connection since the last call."""
        raw = self.connection.connection
        if hasattr(raw, "add_notify_handler"):
            raw.execute("SELECT 1")
        else:
            raw.poll()
            while raw.notifies:
                self.payloads.append(raw.notifies.pop(0).payload)
        payloads, self.payloads = self.payloads, []
        return payloads

    def wait(self, stop: threading.Event, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        wake_at = time.time() + seconds
        try:
            if self.connection is None:
                self.connect()
            fileno = self.connection.connection.fileno()
            while not stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                ready, _, _ = select.select([fileno], [], [], min(left, SLICE))
                if ready and any(due_before(p, wake_at) for p in self.received()):
                    return
        except Exception as exc:
            logger.warning("celery_schedule: LISTEN connection failed, sleeping instead: %s", exc)
            self.close()
            stop.wait(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception as exc:
                logger.debug("celery_schedule: closing the LISTEN connection: %s", exc)


def due_before(payload: str, wake_at: float) -> bool:
    """Whether a notification's due time (epoch seconds) comes before `wake_at`; unreadable: yes."""
    try:
        return float(payload) < wake_at
    except ValueError:
        return True


def waiter(using: str) -> Sleeper | Listener:
    """How the dispatcher loop on database `using` waits between runs."""
    if not is_postgresql(using):
        return Sleeper()
    listener = Listener(using)
    try:
        listener.connect()
    except Exception as exc:
        logger.warning("celery_schedule: cannot LISTEN yet, will retry: %s", exc)
        listener.close()
    return listener
