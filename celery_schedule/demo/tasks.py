"""The demo's tasks; each run records its id in the demo folder's runs file."""

from __future__ import annotations

import os
from decimal import Decimal

from celery import shared_task

from celery_schedule import Scheduled

from .project import runs_file


def record(task_id: str) -> None:
    """Append one line for this run (O_APPEND keeps concurrent lines whole)."""
    fd = os.open(runs_file(), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, f"{task_id}\n".encode())
    finally:
        os.close(fd)


@shared_task(base=Scheduled, bind=True, name="demo.greet")
def greet(self, name: str) -> str:
    record(self.request.id)
    return f"Hello, {name}!"


@shared_task(base=Scheduled, bind=True, name="demo.render_invoice")
def render_invoice(self, invoice: int, total: Decimal) -> str:
    record(self.request.id)
    return f"invoice-{invoice}.pdf ({type(total).__name__} {total})"
