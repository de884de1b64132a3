"""Scheduled: a celery.Task whose calls can wait in the database until they are due."""

from __future__ import annotations

from typing import Any

from celery import Task


class Scheduled(Task):
    """Task base adding `schedule()`: store the call as a ScheduledTask row, dispatched when due."""

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
        options.update(eta=eta, countdown=countdown)
        return schedule_call(self.name, args, kwargs, None, options, self.app)
