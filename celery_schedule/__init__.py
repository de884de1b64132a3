"""Keep far-future Celery tasks in the Django database; dispatch them when due.

Importing this package imports no models: the public names resolve on first use,
so it is safe in settings.py and celery.py.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Scheduled": "task",
    "ScheduledResult": "result",
    "AlreadyScheduled": "exceptions",
    "cancel": "result",
    "reschedule": "result",
    "install": "canvas",
    "uninstall": "canvas",
    "enqueue_due_tasks": "tasks",
    "schedule_many": "bulk",
    "stats": "statistics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'celery_schedule' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
