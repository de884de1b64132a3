"""What is waiting in the ScheduledTask table: counts, lag and next due time, for ops and health."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from .when import now_utc, to_utc


@dataclass(frozen=True)
class TaskStats:
    """The rows of one task name."""

    task_name: str
    pending: int
    due: int
    failed: int
    lag: float
    oldest_due_at: datetime | None
    next_due_at: datetime | None


@dataclass(frozen=True)
class Stats:
    """The whole table at `now`.

    `pending` counts every pending row, `due` those whose due time has come (a
    subset of pending), `failed` the rows that could not be dispatched. `lag` is
    how long the oldest due row has been waiting, in seconds (0.0 when nothing
    is due); `next_due_at` is the earliest due time still ahead.
    """

    now: datetime
    pending: int
    due: int
    failed: int
    lag: float
    oldest_due_at: datetime | None
    next_due_at: datetime | None
    tasks: dict[str, TaskStats] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: datetimes as ISO 8601 strings."""
        return _jsonable(asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def lag_seconds(oldest_due_at: datetime | None, now: datetime) -> float:
    """Seconds the oldest due row has waited past its due time (0.0 when none is due)."""
    if oldest_due_at is None:
        return 0.0
    return max(0.0, (now - oldest_due_at).total_seconds())


def stats(now: datetime | None = None, using: str | None = None) -> Stats:
    """Counts, lag and next due time of the table, overall and per task name (two queries).

    `now` defaults to the current time (a naive datetime means UTC); `using` is a
    database alias, else the one Django's routers give for writing ScheduledTask.
    """
    from .models import ScheduledTask, db_for_write

    if now is None:
        now = now_utc()
    elif isinstance(now, datetime):
        now = to_utc(now)
    else:
        raise TypeError(f"now must be a datetime, got {now!r}")
    rows = ScheduledTask.objects.db_manager(db_for_write(using))
    total = rows.summary(now)
    tasks = {
        entry["task_name"]: TaskStats(lag=lag_seconds(entry["oldest_due_at"], now), **entry)
        for entry in rows.summary_by_task(now)
    }
    return Stats(now=now, lag=lag_seconds(total["oldest_due_at"], now), tasks=tasks, **total)
