"""Poison rows: each is marked failed with its error and attempts, never called, never
retried by the next run, and never blocks the good rows around it (real DB, real Redis)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery import Celery

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


RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"


@pytest.fixture(params=[True, False, None], ids=["confirm_publish", "no_confirms", "default"])
def rabbit_app(request, unique):
    """A Celery app on the real RabbitMQ, its own default queue, deleted at the end."""
    app = Celery("fault-rabbit", broker=RABBITMQ, set_as_current=False)
    app.conf.task_default_queue = unique("fault-rabbit")
    if request.param is not None:
        app.conf.broker_transport_options = {"confirm_publish": request.param}
    yield app
    with app.connection_for_write() as conn:
        conn.default_channel.queue_delete(app.conf.task_default_queue)


def rabbit_ids(app) -> list[str]:
    ids = []
    with app.connection_for_read() as conn, conn.SimpleQueue(app.conf.task_default_queue) as q:
        while True:
            try:
                msg = q.get(timeout=1)
            except q.Empty:
                return ids
            msg.ack()
            ids.append(msg.headers["id"])


@pytest.mark.django_db(transaction=True)
def test_rabbitmq_rejected_exchange_fails_its_row_only(rabbit_app):
    start = now_utc() - timedelta(hours=1)
    bad_options = {"exchange": "fault-no-such-exchange", "routing_key": "x"}
    rows = [add_row(GOOD, start + timedelta(seconds=n), (n, 1),
                    bad_options if n == 1 else None, n) for n in range(4)]
    good = [row.task_id for n, row in enumerate(rows) if n != 1]

    first = dispatch_due(app=rabbit_app, batch_size=10)
    assert (first.dispatched, first.failed, first.broker_error) == (3, 1, None)
    assert sorted(rabbit_ids(rabbit_app)) == sorted(good)
    bad = ScheduledTask.objects.get()
    assert (bad.task_id, bad.state, bad.attempts) == (rows[1].task_id, ScheduledTask.FAILED, 1)
    assert "NOT_FOUND" in bad.last_error and "fault-no-such-exchange" in bad.last_error

    second = dispatch_due(app=rabbit_app, batch_size=10)
    assert (second.claimed, second.dispatched, second.failed) == (0, 0, 0)
    assert ScheduledTask.objects.get().attempts == 1
