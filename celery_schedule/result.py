"""ScheduledResult: the AsyncResult of a task that waits in the database."""

from __future__ import annotations

from typing import Any

from celery.result import AsyncResult


def cancel(task_id: str, *, using: str | None = None) -> bool:
    """Remove the row of `task_id` before dispatch: True if removed, False if gone or unknown."""
    from .models import ScheduledTask, db_for_write

    return ScheduledTask.objects.db_manager(db_for_write(using)).cancel(str(task_id))


def reschedule(task_id: str, when: Any, *, using: str | None = None, app: Any = None) -> bool:
    """Move the row of `task_id` to `when`: True if it was still waiting, else False."""
    from .models import ScheduledTask, db_for_write
    from .notify import notify_scheduled
    from .scheduling import due_time

    due_at = due_time(when, app)
    using = db_for_write(using)
    moved = ScheduledTask.objects.db_manager(using).reschedule(str(task_id), due_at)
    if moved:
        notify_scheduled(using, due_at)
    return moved


class ScheduledResult(AsyncResult):
    """The result of a scheduled task; its id is the id the dispatched message will carry."""

    def __init__(self, id: str, *args: Any, using: str | None = None, **kwargs: Any) -> None:
        super().__init__(id, *args, **kwargs)
        self.using = using

    def cancel(self) -> bool:
        """Remove the row before dispatch: True if removed, False if already dispatched/unknown."""
        return cancel(self.id, using=self.using)

    def reschedule(self, when: Any) -> bool:
        """Move the due time: True if the row was still waiting, else False."""
        return reschedule(self.id, when, using=self.using, app=self.app)

    @property
    def row(self) -> Any:
        """The waiting ScheduledTask row, or None once dispatched or cancelled."""
        from .models import ScheduledTask, db_for_write

        return ScheduledTask.objects.using(db_for_write(self.using)).filter(task_id=self.id).first()
