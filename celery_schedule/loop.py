"""The long-running dispatcher: run, then sleep until the next due row (at most `interval`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import Error, connections

from .dispatch import DispatchResult, dispatch_due, next_due_at
from .models import db_for_write
from .notify import waiter
from .when import now_utc

logger = logging.getLogger("celery_schedule.loop")


def seconds_to_sleep(result: DispatchResult | None, next_due: datetime | None, now: datetime,
                     interval: float, limit_hit: bool) -> float:
    """How long the loop waits before its next run."""
    if result is None or result.broker_error:
        return interval
    if limit_hit:
        return 0.0
    if next_due is None:
        return interval
    return max(0.0, min(interval, (next_due - now).total_seconds()))


def run_loop(
    stop: threading.Event,
    *,
    app: Any = None,
    interval: float = 5.0,
    batch_size: int | None = None,
    limit: int | None = None,
    using: str | None = None,
    on_run: Callable[[DispatchResult], None] | None = None,
) -> None:
    """Dispatch until `stop` is set; database and broker errors are logged and retried."""
    using = db_for_write(using)
    from . import conf

    run_limit = limit or conf.max_per_run()
    wake = waiter(using)
    while not stop.is_set():
        result: DispatchResult | None = None
        next_due = None
        try:
            result = dispatch_due(app=app, batch_size=batch_size, limit=run_limit, using=using)
            if on_run is not None:
                on_run(result)
            next_due = next_due_at(using)
        except Error as exc:
            logger.error("celery_schedule: database error, reconnecting: %s", exc)
            connections[using].close()
        limit_hit = result is not None and result.claimed >= run_limit
        wake.wait(stop, seconds_to_sleep(result, next_due, now_utc(), interval, limit_hit))
    wake.close()
