"""What the demo schedules, and how each item's state is read back from the database and worker."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

WAITING, DUE, SENT, RAN, FAILED, CANCELLED = (
    "waiting", "due", "sent", "ran", "failed", "cancelled")
FINAL = {"runs": RAN, "fails": FAILED, "never runs": CANCELLED}


@dataclass
class Item:
    """One scheduled call of the demo and what it is expected to end as."""

    label: str
    call: str
    task_id: str
    due_at: datetime
    expect: str
    note: str = ""
    status: str = WAITING
    runs: int = 0
    result: str = ""
    error: str = ""
    ran_at: datetime | None = None

    @property
    def settled(self) -> bool:
        return self.status == FINAL[self.expect] and (self.status != RAN or bool(self.result))

    @property
    def ok(self) -> bool:
        return self.settled and self.runs == (1 if self.expect == "runs" else 0)


def schedule_all(now: datetime) -> list[Item]:
    """Schedule the demo's calls a few seconds after `now`; returns them in due order."""
    from celery_schedule.models import ScheduledTask

    from .tasks import greet, render_invoice

    def due(task_id):
        return ScheduledTask.objects.get(task_id=task_id).due_at

    def item(label, call, task_id, expect, note="", due_at=None):
        return Item(label, call, task_id, due_at or due(task_id), expect, note)

    items = []
    r = greet.schedule(args=["Ada"], countdown=2)
    items.append(item("plain", "greet('Ada')", r.id, "runs", "greet.schedule(countdown=2)"))

    first = render_invoice.s(42, total=Decimal("19.90")).schedule(3, key="invoice:42")
    again = render_invoice.s(42, total=Decimal("19.90")).schedule(4, key="invoice:42")
    rows = ScheduledTask.objects.filter(key="invoice:42").count()
    items.append(item("dedup", "render_invoice(42, total=Decimal('19.90'))", first.id, "runs",
                      f"scheduled twice with key='invoice:42': same id={again.id == first.id}, "
                      f"rows={rows}"))

    r = greet.s("Bob").schedule(timedelta(seconds=4))
    due_at = due(r.id)
    cancelled = r.cancel()
    items.append(item("cancelled", "greet('Bob')", r.id, "never runs",
                      f"due in 4 s, then r.cancel() -> {cancelled}", due_at))

    r = greet.s("Cleo").schedule(timedelta(hours=1))
    moved = r.reschedule(timedelta(seconds=5))
    items.append(item("rescheduled", "greet('Cleo')", r.id, "runs",
                      f"due in 1 h, then r.reschedule(5 s) -> {moved}"))

    row = ScheduledTask.objects.schedule("demo.no_such_task", timedelta(seconds=3), 1)
    items.append(item("missing task", "demo.no_such_task(1)", row.task_id, "fails",
                      "ScheduledTask.objects.schedule('demo.no_such_task', ...)"))
    return sorted(items, key=lambda i: i.due_at)


def read_runs(path: Path) -> Counter:
    """How often each task id ran, from the runs file the tasks append to."""
    try:
        return Counter(path.read_text().split())
    except FileNotFoundError:
        return Counter()


def refresh(items: list[Item], runs: Counter, now: datetime, app) -> list[Item]:
    """Update each item's status from the table, the runs file and the result backend.

    Returns the items whose status changed.
    """
    from celery_schedule.models import ScheduledTask

    rows = {r.task_id: r for r in ScheduledTask.objects.filter(
        task_id__in=[i.task_id for i in items])}
    changed = []
    for item in items:
        before = (item.status, item.runs, item.result)
        item.runs = runs[item.task_id]
        row = rows.get(item.task_id)
        if item.runs:
            item.status = RAN
            item.ran_at = item.ran_at or now
            res = app.AsyncResult(item.task_id)
            if res.ready():
                item.result = repr(res.result)
        elif item.expect == "never runs" and row is None:
            item.status = CANCELLED
        elif row is not None and row.state == ScheduledTask.FAILED:
            item.status = FAILED
            item.error = row.last_error
        elif row is not None:
            item.status = DUE if row.due_at <= now else WAITING
        else:
            item.status = SENT
        if (item.status, item.runs, item.result) != before:
            changed.append(item)
    return changed
