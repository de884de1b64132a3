"""Exceptions raised by celery_schedule."""

from __future__ import annotations

from typing import Any


class AlreadyScheduled(Exception):
    """A pending row already holds the dedup key (raised with on_conflict="raise")."""

    def __init__(self, key: str, task_id: str, result: Any = None) -> None:
        super().__init__(f"a task is already scheduled with key {key!r} (task id {task_id})")
        self.key = key
        self.task_id = task_id
        self.result = result
