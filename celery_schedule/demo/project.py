"""The demo's Django settings and Celery app: SQLite, filesystem broker, file results."""

from __future__ import annotations

from pathlib import Path

import django
from celery import Celery
from django.conf import settings

QUEUE = "demo"
_workdir: list[Path] = []


def workdir() -> Path:
    """The folder of the running demo (set by `configure`)."""
    if not _workdir:
        raise RuntimeError("the demo project is not configured")
    return _workdir[0]


def runs_file() -> Path:
    """Each task run appends its id here, so the demo can count runs per id."""
    return workdir() / "runs.log"


def configure(folder: Path) -> Celery:
    """Configure Django in-process and return the demo's Celery app (the current app)."""
    folder = Path(folder).resolve()
    broker = folder / "broker"
    for sub in (broker / "queue", broker / "processed", broker / "control", folder / "results"):
        sub.mkdir(parents=True, exist_ok=True)
    _workdir[:] = [folder]
    settings.configure(
        SECRET_KEY="celery-schedule-demo",
        USE_TZ=True,
        TIME_ZONE="UTC",
        INSTALLED_APPS=["celery_schedule", "celery_schedule.demo"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(folder / "demo.sqlite3"),
                "OPTIONS": {"timeout": 20},
            }
        },
        CELERY_SCHEDULE_DISPATCHER="loop",
        LOGGING={
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "file": {"class": "logging.FileHandler", "filename": str(folder / "dispatcher.log")}
            },
            "loggers": {
                "celery_schedule": {"handlers": ["file"], "level": "INFO", "propagate": False}
            },
        },
    )
    django.setup()
    app = Celery("celery_schedule_demo", set_as_current=True)
    app.conf.update(
        broker_url="filesystem://",
        broker_transport_options={
            "data_folder_in": str(broker / "queue"),
            "data_folder_out": str(broker / "queue"),
            "processed_folder": str(broker / "processed"),
            "store_processed": True,
            "control_folder": str(broker / "control"),
            "polling_interval": 0.1,
        },
        broker_connection_retry_on_startup=True,
        result_backend=f"file://{folder / 'results'}",
        task_default_queue=QUEUE,
        worker_enable_remote_control=False,
        worker_hijack_root_logger=True,
        timezone="UTC",
    )
    app.set_default()
    from . import tasks  # noqa: F401

    return app
