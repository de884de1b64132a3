"""Dispatcher signals and log lines, per row and per run, on a real database and real Redis."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from celery import Celery

from celery_schedule import signals
from celery_schedule.dispatch import UnknownTask, dispatch_due
from celery_schedule.models import ScheduledTask
from celery_schedule.when import now_utc
from tests.proj.tasks import plain_add, punch_out


@pytest.fixture
def received():
    """Every signal the dispatcher sends during the test, as (name, sender, kwargs)."""
    got: list[tuple[str, object, dict]] = []
    receivers = {}
    for name in ("task_dispatched", "task_failed", "task_expired"):
        def receiver(sender, signal, _name=name, **kwargs):
            got.append((_name, sender, kwargs))

        receivers[name] = receiver
        getattr(signals, name).connect(receiver, weak=False)
    yield got
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver)


@pytest.fixture
def three_rows(db):
    """One row that dispatches, one for an unknown task, one that expired before dispatch."""
    past = now_utc() - timedelta(hours=1)
    return {
        "ok": plain_add.s(1, 2).schedule(past).id,
        "unknown": ScheduledTask.objects.schedule("nosuchtask", past, 1).task_id,
        "expired": punch_out.schedule(args=[7], eta=past, expires=60).id,
    }


def by_name(received, name):
    return [kwargs for signal, _, kwargs in received if signal == name]


def test_one_signal_per_row(three_rows, received, broker, celery_app):
    result = dispatch_due(app=celery_app)
    assert (result.dispatched, result.failed, result.expired) == (1, 1, 1)
    assert {sender for _, sender, _ in received} == {ScheduledTask}

    [dispatched] = by_name(received, "task_dispatched")
    assert dispatched["row"].task_id == three_rows["ok"]
    assert dispatched["row"].task_name == "tests.proj.tasks.plain_add"

    [failed] = by_name(received, "task_failed")
    assert failed["row"].task_id == three_rows["unknown"]
    assert failed["row"].state == ScheduledTask.FAILED and failed["row"].attempts == 1
    assert isinstance(failed["exc"], UnknownTask) and "nosuchtask" in str(failed["exc"])

    [expired] = by_name(received, "task_expired")
    assert expired["row"].task_id == three_rows["expired"]

    assert broker.ids() == [three_rows["ok"]]
    assert list(ScheduledTask.objects.values_list("task_id", "state")) == [
        (three_rows["unknown"], "failed")
    ]


def test_no_signals_for_rows_not_due(db, received, broker, celery_app):
    plain_add.s(1, 2).schedule(timedelta(hours=1))
    assert dispatch_due(app=celery_app).claimed == 0
    assert received == []
    assert broker.ids() == []


def test_failed_row_signals_once_not_on_every_run(three_rows, received, broker, celery_app):
    dispatch_due(app=celery_app)
    dispatch_due(app=celery_app)
    assert len(by_name(received, "task_failed")) == 1
    assert len(by_name(received, "task_dispatched")) == 1


def test_log_lines(three_rows, caplog, broker, celery_app):
    caplog.set_level(logging.DEBUG, logger="celery_schedule")
    dispatch_due(app=celery_app)
    records = [r for r in caplog.records if r.name.startswith("celery_schedule")]
    infos = [r.getMessage() for r in records if r.levelno == logging.INFO]
    assert infos == ["celery_schedule: dispatched=1 failed=1 expired=1"]
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    [failed] = [w for w in warnings if three_rows["unknown"] in w]
    assert "failed to dispatch" in failed and "nosuchtask" in failed
    [expired] = [w for w in warnings if three_rows["expired"] in w]
    assert "expired" in expired and "punch_out" in expired
    assert three_rows["ok"] not in " ".join(warnings)


def test_idle_run_logs_at_debug_only(db, caplog, broker, celery_app):
    caplog.set_level(logging.DEBUG, logger="celery_schedule")
    dispatch_due(app=celery_app)
    lines = [(r.levelno, r.getMessage()) for r in caplog.records
             if r.name == "celery_schedule.dispatch"]
    assert lines == [(logging.DEBUG, "celery_schedule: dispatched=0 failed=0 expired=0")]


def test_broker_outage_logs_an_error_and_sends_no_signal(db, received, caplog, settings):
    settings.CELERY_SCHEDULE_BROKER_TIMEOUT = 1.0
    settings.CELERY_SCHEDULE_PUBLISH_RETRY_POLICY = {"max_retries": 0}
    down = Celery("down", broker="redis://127.0.0.1:1/0", set_as_current=False)
    down.conf.broker_connection_timeout = 1.0
    task_id = plain_add.s(1, 2).schedule(now_utc() - timedelta(seconds=5)).id
    caplog.set_level(logging.INFO, logger="celery_schedule")
    result = dispatch_due(app=down)
    assert result.broker_error and result.dispatched == 0
    assert received == []
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "broker unreachable, 1 rows kept pending" in errors[0]
    assert ScheduledTask.objects.get(task_id=task_id).state == ScheduledTask.PENDING


def test_a_raising_receiver_does_not_undo_a_dispatch(db, broker, celery_app, caplog):
    def broken(sender, **kwargs):
        raise RuntimeError("metrics backend down")

    task_id = plain_add.s(1, 2).schedule(now_utc() - timedelta(seconds=5)).id
    signals.task_dispatched.connect(broken, weak=False)
    try:
        result = dispatch_due(app=celery_app)
    finally:
        signals.task_dispatched.disconnect(broken)
    assert result.dispatched == 1
    assert broker.ids() == [task_id]
    assert not ScheduledTask.objects.filter(task_id=task_id).exists()
    errors = [r.getMessage() for r in caplog.records
              if r.levelno == logging.ERROR and r.name.startswith("celery_schedule")]
    assert len(errors) == 1 and "metrics backend down" in errors[0]
