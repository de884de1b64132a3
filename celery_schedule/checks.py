"""Django system checks that catch a project whose scheduled tasks would never be dispatched."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery import _state
from django.core import checks

from . import conf

TAG = "celery_schedule"
ENQUEUE_TASK = "celery_schedule.enqueue_due_tasks"
DISPATCHERS = ("beat", "cron", "loop")


def is_fallback(app: Any) -> bool:
    """True for the app Celery makes up when none was created: 'default', no fixups, not current."""
    return app.main == "default" and not app.fixups and app.set_as_current is False


def find_app() -> Any:
    """The Celery app tasks bind to in this process, or None when only Celery's fallback exists.

    Reads Celery's state without calling get_current_app(), which would create the fallback.
    """
    app = _state._tls.current_app or _state.default_app
    return None if app is None or is_fallback(app) else app


def in_beat_schedule(app: Any) -> bool:
    """Whether some entry of the app's beat schedule runs enqueue_due_tasks."""
    schedule = app.conf.beat_schedule or {}
    return any(
        isinstance(entry, Mapping) and entry.get("task") == ENQUEUE_TASK
        for entry in schedule.values()
    )


def app_errors(app: Any) -> list[checks.CheckMessage]:
    if app is not None:
        return []
    return [checks.Error(
        "No Celery app was found: scheduled tasks would be published with Celery's "
        "unconfigured default app.",
        hint="Create your Celery app in your project package (proj/celery.py) and import it in "
             "proj/__init__.py: `from .celery import app as celery_app`.",
        id="celery_schedule.E001",
    )]


def serializer_warnings(app: Any) -> list[checks.CheckMessage]:
    serializer = app.conf.task_serializer
    if serializer == "json":
        return []
    return [checks.Warning(
        f"CELERY_TASK_SERIALIZER is {serializer!r}: scheduled rows store args as JSON, so "
        "tasks receive what the json serializer would deliver, not what "
        f"{serializer!r} would.",
        hint="Use task_serializer = 'json', or pass only JSON-friendly args to schedule().",
        id="celery_schedule.W001",
    )]


def dispatcher_messages(app: Any) -> list[checks.CheckMessage]:
    dispatcher = conf.get("CELERY_SCHEDULE_DISPATCHER")
    if dispatcher is not None and dispatcher not in DISPATCHERS:
        return [checks.Error(
            f"CELERY_SCHEDULE_DISPATCHER is {dispatcher!r}; it must be one of {DISPATCHERS} "
            "or unset.",
            id="celery_schedule.E002",
        )]
    if dispatcher is not None or in_beat_schedule(app):
        return []
    return [checks.Warning(
        f"{ENQUEUE_TASK!r} is in no beat schedule and CELERY_SCHEDULE_DISPATCHER is not set: "
        "nothing may ever dispatch scheduled tasks.",
        hint=f"Add {{'task': {ENQUEUE_TASK!r}, 'schedule': 10.0}} to beat_schedule, or run "
             "`manage.py enqueue_due_tasks` from cron (CELERY_SCHEDULE_DISPATCHER = 'cron') or "
             "`--loop` (= 'loop'), or set 'beat' when the schedule lives elsewhere "
             "(e.g. django-celery-beat).",
        id="celery_schedule.W002",
    )]


@checks.register(TAG)
def check_celery(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E001 no Celery app, E002 bad CELERY_SCHEDULE_DISPATCHER, W001 serializer not json,
    W002 nothing dispatches (no beat entry, no CELERY_SCHEDULE_DISPATCHER)."""
    app = find_app()
    if app is None:
        return app_errors(app)
    return serializer_warnings(app) + dispatcher_messages(app)
