"""schedule_many(): many signatures stored at once, validated like schedule(), all or nothing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from celery.canvas import Signature
from django.db import transaction

from . import conf
from .canvas import check_schedulable
from .models import ScheduledTask, db_for_write
from .notify import notify_scheduled
from .result import ScheduledResult
from .scheduling import build_row, pick_when

BULK_REFUSED = ("key", "on_conflict", "using")


def schedule_many(
    items: Iterable[tuple[Signature, Any]],
    *,
    using: str | None = None,
    app: Any = None,
) -> list[ScheduledResult]:
    """Store each `(signature, when)` pair as a row; all or nothing.

    `when` takes every form `Signature.schedule(when)` takes (None: the signature's
    own eta/countdown). Every item is validated before anything is written; a bad
    item raises TypeError/ValueError naming its position and nothing is stored.
    Rows go in with one COPY on PostgreSQL, else one INSERT per
    CELERY_SCHEDULE_BATCH_SIZE rows, inside one transaction. Dedup keys are refused
    here (use schedule(key=...)): a bulk insert cannot keep one row per key and
    report which one it kept.
    """
    built = [build_item(index, item, app) for index, item in enumerate(items)]
    rows = [row for row, _ in built]
    using = db_for_write(using)
    with transaction.atomic(using=using):
        ScheduledTask.objects.db_manager(using).bulk_insert(rows, conf.batch_size())
        if rows:
            notify_scheduled(using, min(row.due_at for row in rows))
    return [ScheduledResult(row.task_id, app=row_app, using=using) for row, row_app in built]


def build_item(index: int, item: Any, app: Any) -> tuple[ScheduledTask, Any]:
    """The validated row of item number `index` and its app, or TypeError/ValueError naming it."""
    try:
        sig, when = item
    except (TypeError, ValueError):
        raise TypeError(f"item {index} must be a (signature, when) pair, got {item!r}") from None
    if not isinstance(sig, Signature):
        raise TypeError(f"item {index}: expected a celery Signature, got {sig!r}")
    try:
        check_schedulable(sig)
        options = dict(sig.options)
        refused = [name for name in BULK_REFUSED if options.get(name) is not None]
        if refused:
            raise ValueError(
                f"{', '.join(refused)} cannot be set per item in schedule_many "
                "(schedule one by one for dedup keys; pass using= to schedule_many)"
            )
        for name in BULK_REFUSED:
            options.pop(name, None)
        due = pick_when(when, options)
        row_app = app or sig.app
        row = build_row(sig.task, sig.args, sig.kwargs, due, app=row_app, options=options)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"item {index} ({sig!r}): {exc}") from None
    return row, row_app
