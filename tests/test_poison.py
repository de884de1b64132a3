"""Poison rows: each is marked failed with its error and attempts, never called, never
retried by the next run, and never blocks the good rows around it (real DB, real Redis)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from celery_schedule.dispatch import dispatch_due
from celery_schedule.models import ScheduledTask
from celery_schedule.when import now_utc

GOOD = "tests.proj.tasks.plain_add"

RAISING_MODULE = """
import pathlib
pathlib.Path({marker!r}).write_text("imported")
raise RuntimeError("boom while importing")

def job():
    pathlib.Path({marker!r}).write_text("called")
"""


@pytest.fixture
def raising_module(tmp_path, monkeypatch):
    """A module on sys.path whose import raises; its marker file says whether it ran."""
    marker = tmp_path / "marker"
    (tmp_path / "fault_raising_mod.py").write_text(RAISING_MODULE.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path))
    return marker


def add_row(task_name, due, args=(), options=None, n=0):
    return ScheduledTask.objects.create(
        task_id=f"{task_name[:40]}-{n}-{due.timestamp()}", task_name=task_name,
        task_args=list(args), options=options or {}, due_at=due,
    )


def poison_specs(tmp_path):
    canary = tmp_path / "os-system-ran"
    return canary, [
        ("no_such_task", (), None, "no task registered"),
        ("tests.proj.tasks.missing_task", (), None, "cannot import"),
        ("tests.proj.tasks.not_a_task", (), None, "is not a Celery task"),
        ("os.system", (f"touch {canary}",), None, "is not a Celery task"),
        ("fault_raising_mod.job", (), None, "boom while importing"),
        (GOOD, (1, 2), {"compression": "zstd-not-installed"}, "zstd-not-installed"),
        (GOOD, (1, 2), {"serializer": "msgpack-not-installed"}, "msgpack-not-installed"),
    ]


@pytest.mark.django_db(transaction=True)
def test_poison_rows_fail_visibly_and_never_block_good_rows(broker, celery_app, tmp_path,
                                                            raising_module):
    canary, specs = poison_specs(tmp_path)
    start = now_utc() - timedelta(hours=1)
    poison, good = [], []
    for n, (name, args, options, _) in enumerate(specs):
        poison.append(add_row(name, start + timedelta(seconds=2 * n), args, options, n))
        good.append(add_row(GOOD, start + timedelta(seconds=2 * n + 1), (n, 1), None, n))

    first = dispatch_due(app=celery_app, batch_size=2)
    assert (first.dispatched, first.failed, first.broker_error) == (len(good), len(poison), None)
    assert sorted(broker.ids()) == sorted(row.task_id for row in good)
    assert not ScheduledTask.objects.filter(task_id__in=[r.task_id for r in good]).exists()

    failed = {row.task_id: row for row in ScheduledTask.objects.all()}
    assert set(failed) == {row.task_id for row in poison}
    for row, (name, _, _, error) in zip(poison, specs, strict=True):
        stored = failed[row.task_id]
        assert (stored.state, stored.attempts) == (ScheduledTask.FAILED, 1), name
        assert error in stored.last_error, (name, stored.last_error)

    second = dispatch_due(app=celery_app, batch_size=2)
    assert (second.claimed, second.dispatched, second.failed) == (0, 0, 0)
    assert broker.ids() == []
    for stored in ScheduledTask.objects.all():
        assert (stored.state, stored.attempts) == (ScheduledTask.FAILED, 1)
        assert stored.last_error == failed[stored.task_id].last_error

    assert not canary.exists(), "os.system was called"
    assert raising_module.read_text() == "imported"
