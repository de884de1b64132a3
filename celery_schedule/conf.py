"""All settings of celery_schedule and their defaults, read from Django settings at use."""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings

DEFAULTS: dict[str, Any] = {
    # Rows claimed (and removed) in one transaction; bounds duplicates after a crash.
    "CELERY_SCHEDULE_BATCH_SIZE": 1000,
    # Rows one dispatcher run claims at most, whatever becomes of them.
    "CELERY_SCHEDULE_MAX_PER_RUN": 10_000,
    # Drop-in mode: apply_async/retry delays longer than this (seconds) become rows. None = off.
    "CELERY_SCHEDULE_ETA_THRESHOLD": None,
    # Where dispatching runs when not in the beat schedule: "beat", "cron" or "loop".
    "CELERY_SCHEDULE_DISPATCHER": None,
    # Longest sleep of `enqueue_due_tasks --loop` between two runs, in seconds.
    "CELERY_SCHEDULE_LOOP_INTERVAL": 5.0,
    # Publish retry policy for one dispatch: short, so a broker outage returns in seconds.
    "CELERY_SCHEDULE_PUBLISH_RETRY_POLICY": {
        "max_retries": 2,
        "interval_start": 0,
        "interval_step": 0.5,
        "interval_max": 1,
    },
    # Seconds a dispatch waits for the broker connection before giving up.
    "CELERY_SCHEDULE_BROKER_TIMEOUT": 3.0,
}


def get(name: str) -> Any:
    """The value of setting `name` (with its CELERY_SCHEDULE_ prefix), or its default."""
    return getattr(django_settings, name, DEFAULTS[name])


def batch_size() -> int:
    return int(get("CELERY_SCHEDULE_BATCH_SIZE"))


def max_per_run() -> int:
    return int(get("CELERY_SCHEDULE_MAX_PER_RUN"))


def eta_threshold() -> float | None:
    value = get("CELERY_SCHEDULE_ETA_THRESHOLD")
    return None if value is None else float(value)


def loop_interval() -> float:
    return float(get("CELERY_SCHEDULE_LOOP_INTERVAL"))


def publish_retry_policy() -> dict[str, Any]:
    return dict(get("CELERY_SCHEDULE_PUBLISH_RETRY_POLICY"))


def broker_timeout() -> float:
    return float(get("CELERY_SCHEDULE_BROKER_TIMEOUT"))

