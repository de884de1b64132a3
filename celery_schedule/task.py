"""Scheduled: a celery.Task whose calls can wait in the database until they are due.

Importing this module imports no Django models, so `Celery(task_cls="celery_schedule:Scheduled")`
works before django.setup().
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from celery import Task

from . import when as _when

logger = logging.getLogger("celery_schedule.task")


def requested_delay(eta: Any, countdown: Any) -> tuple[Any, float] | None:
    """The due time given to apply_async and its distance from now in seconds, or None.

    As in Celery, a non-zero `countdown` wins over `eta`.
    """
    if countdown:
        seconds = _when.seconds(countdown)
        return seconds, seconds
    if eta is None:
        return None
    if not isinstance(eta, (datetime, str)):
        raise TypeError(f"eta must be a datetime or an ISO 8601 string, got {eta!r}")
    due = _when.resolve(eta)
    return due, (due - _when.now_utc()).total_seconds()


class Scheduled(Task):
    """Task base adding `schedule()`: store the call as a ScheduledTask row, dispatched when due.

    With `CELERY_SCHEDULE_ETA_THRESHOLD` set, `apply_async()` (so also `delay()`, signatures
    and `self.retry()`) stores calls due further ahead than the threshold as rows too.
    """

    abstract = True

    def schedule(
        self,
        args: Any = None,
        kwargs: Any = None,
        *,
        eta: Any = None,
        countdown: Any = None,
        **options: Any,
    ) -> Any:
        """Store this call to run at `eta` or after `countdown` seconds; exactly one is required.

        Options are those of apply_async (queue, priority, headers, expires counted from
        the due time, task_id, ...) plus `key`/`on_conflict` for dedup and `using`.
        Returns a ScheduledResult.
        """
        from .scheduling import schedule_call

        if (eta is None) == (countdown is None):
            raise ValueError(
                f"give exactly one of eta and countdown, got eta={eta!r}, countdown={countdown!r}"
            )
        options = dict(options, eta=eta, countdown=countdown)
        return schedule_call(self.name, args, kwargs, None, options, self.app)

    def apply_async(
        self,
        args: Any = None,
        kwargs: Any = None,
        task_id: str | None = None,
        producer: Any = None,
        link: Any = None,
        link_error: Any = None,
        shadow: str | None = None,
        **options: Any,
    ) -> Any:
        """Celery's apply_async; in drop-in mode a far eta/countdown becomes a row instead.

        Returns a ScheduledResult for a stored call, else what Celery returns.
        """
        due = self._drop_in_due(task_id, options)
        if due is None:
            return super().apply_async(args, kwargs, task_id, producer, link, link_error,
                                       shadow, **options)
        from .scheduling import schedule_call

        options = {k: v for k, v in options.items() if k not in ("eta", "countdown")}
        options.update(task_id=task_id, link=link, link_error=link_error, shadow=shadow)
        return schedule_call(self.name, args, kwargs, due, options, self.app)

    def _drop_in_due(self, task_id: str | None, options: dict[str, Any]) -> Any:
        """The due time to store this apply_async call at, or None to send it to the broker."""
        eta, countdown = options.get("eta"), options.get("countdown")
        if eta is None and not countdown:
            return None
        from . import conf

        threshold = conf.eta_threshold()
        if threshold is None or self.app.conf.task_always_eager:
            return None
        due, delay = requested_delay(eta, countdown)
        if delay <= threshold:
            return None
        if self._is_retry(task_id) and self._in_atomic_block(options.get("using")):
            logger.info("celery_schedule: retry of %s [%s] sent to the broker: called inside "
                        "transaction.atomic(), which the Retry exception rolls back",
                        self.name, task_id)
            return None
        return due

    def _is_retry(self, task_id: str | None) -> bool:
        request = self.request
        return task_id is not None and not request.called_directly and request.id == task_id

    @staticmethod
    def _in_atomic_block(using: str | None) -> bool:
        from django.db import connections

        from .models import db_for_write

        return connections[db_for_write(using)].in_atomic_block
