"""Signature.schedule(), added to celery.canvas.Signature by install(), removed by uninstall()."""

from __future__ import annotations

from typing import Any

from celery.canvas import Signature, _chain, chord, group

NOT_SCHEDULABLE = (_chain, group, chord)


def schedule(self: Signature, when: Any = None, **options: Any) -> Any:
    """Store this signature's call to run at `when` (or its own eta/countdown option).

    `when`: timedelta, relativedelta, datetime, ISO 8601 string or seconds.
    Returns a ScheduledResult.
    """
    from .scheduling import schedule_call

    if isinstance(self, NOT_SCHEDULABLE) or self.subtask_type in ("chain", "group", "chord"):
        raise TypeError(
            f"cannot schedule a {self.subtask_type or type(self).__name__} ({self!r}): "
            "schedule a task that starts it instead"
        )
    return schedule_call(
        self.task, self.args, self.kwargs, when, dict(self.options, **options), self.app
    )


def install() -> None:
    """Add `schedule()` to celery.canvas.Signature (idempotent)."""
    Signature.schedule = schedule


def uninstall() -> None:
    """Remove `schedule()` from celery.canvas.Signature (idempotent)."""
    if Signature.__dict__.get("schedule") is schedule:
        del Signature.schedule


def installed() -> bool:
    return Signature.__dict__.get("schedule") is schedule
