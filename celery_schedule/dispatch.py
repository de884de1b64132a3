"""The dispatcher: move due rows to the broker as ordinary Celery messages.

Plain functions with the clock passed in; the Celery task (tasks.py) and the
management command are thin shells around `dispatch_due`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery import Task, current_app
from celery.exceptions import QueueNotFound
from celery.utils.imports import symbol_by_name
from django.db import OperationalError, connections, transaction
from kombu.exceptions import OperationalError as KombuOperationalError

from . import conf, message, signals
from .models import ScheduledTask, db_for_write
from .publish import BATCH_ERRORS, Publisher, producer_for
from .when import now_utc

logger = logging.getLogger("celery_schedule.dispatch")

CLAIM_RETRIES = 5


@dataclass
class DispatchResult:
    """What one dispatcher run did."""

    dispatched: int = 0
    failed: int = 0
    expired: int = 0
    claimed: int = 0
    broker_error: str | None = None

    def __str__(self) -> str:
        text = f"dispatched={self.dispatched} failed={self.failed} expired={self.expired}"
        return text + (f" broker_error={self.broker_error}" if self.broker_error else "")


class UnknownTask(LookupError):
    """A row names something that is not a registered or importable Celery task."""


def find_task(app: Any, name: str) -> Task:
    """The Celery task called `name`: the app's registry, else the imported dotted name.

    Anything that is not a celery.Task instance is refused, never called.
    """
    task = app.tasks.get(name)
    if task is not None:
        return task
    if "." not in name:
        raise UnknownTask(f"no task registered as {name!r}")
    try:
        obj = symbol_by_name(name)
    except Exception as exc:
        raise UnknownTask(f"cannot import {name!r}: {type(exc).__name__}: {exc}") from None
    task = app.tasks.get(name, obj)
    if not isinstance(task, Task):
        raise UnknownTask(f"{name!r} is not a Celery task ({type(obj).__name__})")
    return task


def broker_errors(app: Any) -> tuple[type[BaseException], ...]:
    """Exceptions meaning "the broker cannot be reached" (rows stay pending) for this app."""
    conn = app.connection_for_write()
    try:
        return tuple(conn.connection_errors) + (OSError, KombuOperationalError)
    finally:
        conn.release()


def broker_unreachable(app: Any, exc: BaseException) -> bool:
    """Whether a broker-class error `exc` means an outage, not one bad message.

    kombu reports a message's own fault (say a compression that is not installed)
    with the same exception types as a lost connection, so unless the error is
    plain I/O, a fresh connection decides: if the broker answers, the row is at fault.
    """
    if isinstance(exc, OSError) or isinstance(exc.__cause__, OSError):
        return True
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0,
                                   timeout=conf.broker_timeout())
    except Exception:
        return True
    return False


def dispatch_options(row: ScheduledTask) -> dict[str, Any]:
    """apply_async options of a row: stored options decoded, expires made absolute."""
    options = message.decode(row.options) if row.options else {}
    if "expires" in options:
        options["expires"] = message.expires_at(row.options, row.due_at)
    return options


def send_signal(signal: Any, row: ScheduledTask, **kwargs: Any) -> None:
    """Send a per-row signal; a raising receiver is logged and never undoes a dispatch."""
    for receiver, response in signal.send_robust(ScheduledTask, row=row, **kwargs):
        if isinstance(response, Exception):
            logger.error("celery_schedule: signal receiver %r raised: %r", receiver, response)


def mark_failed(row: ScheduledTask, exc: BaseException) -> None:
    row.state = ScheduledTask.FAILED
    row.attempts += 1
    row.last_error = f"{type(exc).__name__}: {exc}"
    logger.warning("celery_schedule: task %s [%s] failed to dispatch: %s",
                   row.task_name, row.task_id, row.last_error)


def publish(app: Any, rows: list[ScheduledTask], now: datetime,
            result: DispatchResult) -> list[ScheduledTask]:
    """Publish claimed rows over one producer, in one broker round trip where the
    transport can batch; returns the rows to put back.

    After a broker error, rows whose batched push was not confirmed are put back
    too (at least once: they may be sent again).
    """
    put_back: list[ScheduledTask] = []
    sent: list[ScheduledTask] = []

    def fail_row(row: ScheduledTask, exc: BaseException) -> None:
        mark_failed(row, exc)
        put_back.append(row)
        result.failed += 1
        send_signal(signals.task_failed, row, exc=exc)

    errors = broker_errors(app) + BATCH_ERRORS
    policy = conf.publish_retry_policy()
    index = 0
    batched = False
    try:
        with producer_for(app) as producer:
            publisher = Publisher(app, producer, retry=True, retry_policy=policy)
            batched = publisher.batched
            with publisher.batch(len(rows)):
                for index, row in enumerate(rows):  # noqa: B007
                    options = dispatch_options(row)
                    expires = options.get("expires")
                    if expires is not None and expires <= now:
                        result.expired += 1
                        logger.warning("celery_schedule: task %s [%s] expired at %s, not sent",
                                       row.task_name, row.task_id, expires.isoformat())
                        send_signal(signals.task_expired, row)
                        continue
                    try:
                        task = find_task(app, row.task_name)
                        publisher.send(task, row.task_id, tuple(message.decode(row.task_args)),
                                       message.decode(row.task_kwargs), options)
                    except QueueNotFound as exc:
                        fail_row(row, exc)
                    except errors as exc:
                        if broker_unreachable(app, exc):
                            raise
                        fail_row(row, exc)
                    except Exception as exc:
                        fail_row(row, exc)
                    else:
                        sent.append(row)
                index = len(rows)
    except errors as exc:
        unconfirmed = sent if batched else []
        put_back.extend(unconfirmed)
        put_back.extend(rows[index:])
        sent = sent if not batched else []
        result.broker_error = f"{type(exc).__name__}: {exc}"
        logger.error("celery_schedule: broker unreachable, %d rows kept pending: %s",
                     len(unconfirmed) + len(rows) - index, result.broker_error)
    result.dispatched += len(sent)
    for row in sent:
        send_signal(signals.task_dispatched, row)
    return put_back


def lock_for_write(using: str) -> None:
    """On SQLite, take the write lock first so concurrent dispatchers queue up, not fail."""
    connection = connections[using]
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {ScheduledTask._meta.db_table} SET id = id WHERE 0")


def dispatch_batch(app: Any, now: datetime, size: int, using: str,
                   result: DispatchResult) -> int:
    """Claim, publish and remove one batch in one transaction; returns rows claimed.

    Rows are removed before anything is sent and put back if they could not be
    published; a claim that deadlocks is retried, since nothing was sent yet.
    """
    rows = ScheduledTask.objects.db_manager(using)
    for attempt in range(CLAIM_RETRIES):
        sent = False
        try:
            with transaction.atomic(using=using):
                lock_for_write(using)
                claimed = rows.claim(now, size)
                if claimed:
                    sent = True
                    rows.put_back(publish(app, claimed, now, result))
            result.claimed += len(claimed)
            return len(claimed)
        except OperationalError as exc:
            if sent or attempt == CLAIM_RETRIES - 1:
                raise
            logger.info("celery_schedule: claim retried after %s", exc)
            if not connections[using].in_atomic_block:
                connections[using].close_if_unusable_or_obsolete()
            time.sleep(0.05 * (attempt + 1))
    return 0


def dispatch_due(
    *,
    app: Any = None,
    now: datetime | None = None,
    batch_size: int | None = None,
    limit: int | None = None,
    using: str | None = None,
) -> DispatchResult:
    """Publish the rows due at `now`, batch by batch, at most `limit` claimed in all.

    Returns the counts; on a broker outage the rows stay pending and
    `broker_error` says why. Database errors propagate.
    """
    app = app or current_app
    now = now or now_utc()
    size = batch_size or conf.batch_size()
    limit = limit or conf.max_per_run()
    using = db_for_write(using)
    result = DispatchResult()
    while result.claimed < limit and result.broker_error is None:
        wanted = min(size, limit - result.claimed)
        if dispatch_batch(app, now, wanted, using, result) < wanted:
            break
    logger.log(logging.INFO if result.claimed else logging.DEBUG, "celery_schedule: %s", result)
    return result


def next_due_at(using: str | None = None) -> datetime | None:
    """The due time of the earliest pending row."""
    return ScheduledTask.objects.db_manager(db_for_write(using)).next_due_at()

