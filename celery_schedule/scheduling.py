"""One path from every schedule() form to a stored row: validate, encode, insert."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery import current_app
from celery.utils import uuid

from . import message
from . import when as _when
from .models import ScheduledTask, db_for_write
from .notify import notify_scheduled


def due_time(when: Any, app: Any = None) -> Any:
    """The aware UTC due time for `when`, relativedelta applied in the app's time zone."""
    tz = (app or current_app).timezone
    return _when.resolve(when, tz=tz)


def pick_when(when: Any, options: dict[str, Any]) -> Any:
    """The one due time among `when` and the eta/countdown options (popped from `options`)."""
    eta = options.pop("eta", None)
    countdown = options.pop("countdown", None)
    given = [v for v in (when, eta, countdown) if v is not None]
    if len(given) > 1:
        raise ValueError(
            f"give one due time, not several: when={when!r}, eta={eta!r}, countdown={countdown!r}"
        )
    if not given:
        raise ValueError("no due time: give when, eta or countdown")
    if countdown is not None:
        _when.seconds(countdown)
        return countdown
    if eta is not None and not isinstance(eta, (str, _when.datetime)):
        raise TypeError(f"eta must be a datetime or an ISO 8601 string, got {eta!r}")
    return given[0]


def build_row(task_name: str, args: Any, kwargs: Any, when: Any, *, app: Any = None,
              key: str | None = None, options: dict[str, Any]) -> ScheduledTask:
    """A validated, unsaved row for a call of `task_name` due at `when` (pops task_id)."""
    if not isinstance(task_name, str) or not task_name:
        raise TypeError(f"task name must be a non-empty string, got {task_name!r}")
    if key is not None and (not isinstance(key, str) or not key):
        raise TypeError(f"key must be a non-empty string, got {key!r}")
    task_args, task_kwargs = message.encode_args(args, kwargs)
    check_arguments(app, task_name, args, kwargs)
    task_id = options.pop("task_id", None) or uuid()
    return ScheduledTask(
        task_id=str(task_id),
        task_name=task_name,
        task_args=task_args,
        task_kwargs=task_kwargs,
        due_at=due_time(when, app),
        options=message.encode_options(options),
        key=key,
    )


def schedule(
    task_name: str,
    args: Any,
    kwargs: Any,
    when: Any,
    *,
    app: Any = None,
    key: str | None = None,
    on_conflict: str = "keep",
    using: str | None = None,
    **options: Any,
) -> ScheduledTask:
    """Store a call of `task_name` due at `when`; returns the row (an existing one on conflict)."""
    row = build_row(task_name, args, kwargs, when, app=app, key=key, options=options)
    using = db_for_write(using)
    row = ScheduledTask.objects.db_manager(using).insert(row, on_conflict)
    notify_scheduled(using, row.due_at)
    return row


def check_arguments(app: Any, task_name: str, args: Any, kwargs: Any) -> None:
    """TypeError when the args do not fit a registered task's signature, as apply_async does."""
    task = (app or current_app).tasks.get(task_name)
    if task is not None and task.typing:
        header = getattr(task, "__header__", None)
        if header is not None:
            header(*(args or ()), **(kwargs or {}))


def schedule_call(
    task_name: str,
    args: Any,
    kwargs: Any,
    when: Any,
    options: Mapping[str, Any],
    app: Any,
):
    """schedule() for Task.schedule/Signature.schedule: returns a ScheduledResult."""
    from .result import ScheduledResult

    options = dict(options)
    when = pick_when(when, options)
    using = db_for_write(options.pop("using", None))
    row = schedule(task_name, args, kwargs, when, app=app, using=using, **options)
    return ScheduledResult(row.task_id, app=app, using=using)
