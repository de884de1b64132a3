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

    check_schedulable(self)
    return schedule_call(
        self.task, self.args, self.kwargs, when, dict(self.options, **options), self.app
    )


def check_schedulable(sig: Signature) -> None:
    """TypeError for a chain, group or chord: they are not stored as one row."""
    if isinstance(sig, NOT_SCHEDULABLE) or sig.subtask_type in ("chain", "group", "chord"):
        raise TypeError(
            f"cannot schedule a {sig.subtask_type or type(sig).__name__} ({sig!r}): "
            "schedule a task that starts it instead"
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
