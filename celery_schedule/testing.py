"""Helpers for testing code that schedules tasks: list rows, run due tasks in-process.

`run_due()` is the dispatcher with the broker and the worker taken out: every due
row's task runs here with Celery's `apply` (so `self.request.id` is the row's id)
and the table ends up exactly as one dispatcher run would leave it:

- a row whose task is found is removed, whatever the task then does (the real
  dispatcher removes a row once its message is published); a task that raises
  is reported by its `EagerResult` (state FAILURE), or raises out of `run_due`
  when `propagate` (default: the app's `task_eager_propagates`);
- a row whose task cannot be found is marked failed and kept, attempts + 1;
- a row whose `expires` passed is removed without running.

The dispatcher's signals are sent for each row as the dispatcher sends them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from celery.result import EagerResult
from django.db import transaction

from . import message, signals
from . import when as _when
from .dispatch import UnknownTask, dispatch_options, find_task, mark_failed, send_signal
from .models import ScheduledTask, db_for_write


@dataclass(frozen=True)
class ScheduledCall:
    """A row as a test reads it: what will run, when, with which options."""

    task_id: str
    task_name: str
    args: list
    kwargs: dict
    due_at: datetime
    key: str | None
    options: dict
    state: str
    attempts: int
    last_error: str

    @classmethod
    def from_row(cls, row: ScheduledTask) -> ScheduledCall:
        return cls(
            task_id=row.task_id,
            task_name=row.task_name,
            args=message.decode(row.task_args),
            kwargs=message.decode(row.task_kwargs),
            due_at=row.due_at,
            key=row.key,
            options=message.decode(row.options) if row.options else {},
            state=row.state,
            attempts=row.attempts,
            last_error=row.last_error,
        )


@dataclass
class Run:
    """What one `run_due()` did; iterating it gives the EagerResults of the tasks run."""

    results: list[EagerResult] = field(default_factory=list)
    failed: list[ScheduledCall] = field(default_factory=list)
    expired: list[ScheduledCall] = field(default_factory=list)

    def __iter__(self) -> Iterator[EagerResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, index: int) -> EagerResult:
        return self.results[index]

    @property
    def ids(self) -> list[str]:
        """Task ids of the tasks run, in due order."""
        return [r.id for r in self.results]

    @property
    def errors(self) -> list[EagerResult]:
        """Results of the tasks that raised."""
        return [r for r in self.results if r.failed()]


def task_name(task: Any) -> str:
    """The registered name of `task`: a name, a Task or a Signature."""
    if isinstance(task, str):
        return task
    name = getattr(task, "name", None) or (task.get("task") if isinstance(task, dict) else None)
    if not isinstance(name, str):
        raise TypeError(f"task must be a task name, a Celery task or a signature, got {task!r}")
    return name


def rows(state: str, task: Any = None, key: str | None = None, *,
         using: str | None = None) -> list[ScheduledCall]:
    qs = ScheduledTask.objects.using(db_for_write(using)).filter(state=state)
    if task is not None:
        qs = qs.filter(task_name=task_name(task))
    if key is not None:
        qs = qs.filter(key=key)
    return [ScheduledCall.from_row(row) for row in qs.order_by("due_at", "id")]


def scheduled(task: Any = None, key: str | None = None, *,
              using: str | None = None) -> list[ScheduledCall]:
    """Pending rows, earliest first, optionally only those of `task` and/or `key`."""
    return rows(ScheduledTask.PENDING, task, key, using=using)


def failed(task: Any = None, key: str | None = None, *,
           using: str | None = None) -> list[ScheduledCall]:
    """Rows the dispatcher (or run_due) could not dispatch, earliest first."""
    return rows(ScheduledTask.FAILED, task, key, using=using)


def run_due(now: datetime | None = None, *, using: str | None = None, app: Any = None,
            propagate: bool | None = None) -> Run:
    """Run every row due at `now` (default: the clock, frozen or not) in this process.

    One pass, like one dispatcher run: rows that the tasks schedule due now wait for
    the next call. See the module docstring for what becomes of each row.
    """
    app = app or current_app
    now = _when.to_utc(now) if now is not None else _when.now_utc()
    using = db_for_write(using)
    run = Run()
    for row in list(ScheduledTask.objects.using(using).due(now)):
        options = dispatch_options(row)
        expires = options.pop("expires", None)
        if not remove(row, using):
            continue
        if expires is not None and expires <= now:
            run.expired.append(ScheduledCall.from_row(row))
            send_signal(signals.task_expired, row)
            continue
        try:
            task = find_task(app, row.task_name)
        except UnknownTask as exc:
            keep_failed(row, exc, using)
            run.failed.append(ScheduledCall.from_row(row))
            send_signal(signals.task_failed, row, exc=exc)
            continue
        send_signal(signals.task_dispatched, row)
        run.results.append(task.apply(
            message.decode(row.task_args), message.decode(row.task_kwargs),
            task_id=row.task_id, throw=propagate, **options,
        ))
    return run


def remove(row: ScheduledTask, using: str) -> bool:
    """Remove `row` unless something (a task run before it) already cancelled it."""
    with transaction.atomic(using=using):
        return bool(ScheduledTask.objects.using(using).filter(pk=row.pk).delete()[0])


def keep_failed(row: ScheduledTask, exc: BaseException, using: str) -> None:
    mark_failed(row, exc)
    ScheduledTask.objects.using(using).put_back([row])


def advance(by: float | timedelta, *, clock: Any = None, now: datetime | None = None,
            using: str | None = None, app: Any = None, propagate: bool | None = None) -> Run:
    """Let `by` (seconds or timedelta) pass, then `run_due()`.

    `clock`: a time-machine traveller (shifted) or a freezegun frozen time (ticked),
    so the tasks see the new time too. Without it, rows due at `now` (default: the
    clock) + `by` run, and the clock itself does not move.
    """
    delta = timedelta(seconds=_when.seconds(by))
    if delta < timedelta(0):
        raise ValueError(f"advance by a positive time, got {by!r}")
    if clock is not None and now is not None:
        raise ValueError(f"give clock or now, not both: clock={clock!r}, now={now!r}")
    if clock is None:
        base = _when.to_utc(now) if now is not None else _when.now_utc()
        return run_due(base + delta, using=using, app=app, propagate=propagate)
    if hasattr(clock, "shift"):
        clock.shift(delta)
    elif hasattr(clock, "tick"):
        clock.tick(delta)
    else:
        raise TypeError(
            f"clock must be a time-machine traveller or a freezegun frozen time, got {clock!r}"
        )
    return run_due(using=using, app=app, propagate=propagate)


class ScheduledTasks:
    """The helpers bound to one database and app: the `scheduled_tasks` pytest fixture.

    Usable as is from django.test.TestCase: `ScheduledTasks().run_due()`.
    """

    def __init__(self, using: str | None = None, app: Any = None) -> None:
        self.using = using
        self.app = app

    def scheduled(self, task: Any = None, key: str | None = None) -> list[ScheduledCall]:
        return scheduled(task, key, using=self.using)

    def failed(self, task: Any = None, key: str | None = None) -> list[ScheduledCall]:
        return failed(task, key, using=self.using)

    def run_due(self, now: datetime | None = None, *, propagate: bool | None = None) -> Run:
        return run_due(now, using=self.using, app=self.app, propagate=propagate)

    def advance(self, by: float | timedelta, *, clock: Any = None, now: datetime | None = None,
                propagate: bool | None = None) -> Run:
        return advance(by, clock=clock, now=now, using=self.using, app=self.app,
                       propagate=propagate)

    def __len__(self) -> int:
        return len(self.scheduled())

    def __iter__(self) -> Iterator[ScheduledCall]:
        return iter(self.scheduled())
