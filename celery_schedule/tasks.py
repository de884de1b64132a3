"""The Celery task `celery_schedule.enqueue_due_tasks`, for the beat schedule."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="celery_schedule.enqueue_due_tasks", ignore_result=True, bind=True)
def enqueue_due_tasks(self) -> dict:
    """Dispatch due rows (one bounded run); returns the counts."""
    from dataclasses import asdict

    from .dispatch import dispatch_due

    return asdict(dispatch_due(app=self.app))
