"""celery_schedule.testing: run due tasks in-process, list rows, move the clock; eager mode."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import freezegun
import pytest
import time_machine
from django.test import TestCase

from celery_schedule import signals, testing
from celery_schedule.dispatch import dispatch_due
from celery_schedule.models import ScheduledTask
from celery_schedule.pytest_plugin import scheduled_tasks  # noqa: F401
from celery_schedule.scheduling import schedule
from celery_schedule.tasks import enqueue_due_tasks
from celery_schedule.when import now_utc
from tests.proj.celery import app
from tests.proj.tasks import RUNS, plain_add, punch_out, record

UTC = timezone.utc
T0 = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)


@app.task(bind=True, name="tests.test_testing.boom")
def boom(self, n):
    record(self, n)
    raise ValueError(f"boom {n}")


@app.task(bind=True, name="tests.test_testing.chain_now")
def chain_now(self, n):
    record(self, n)
    return plain_add.s(n, 1).schedule(0).id


@app.task(bind=True, name="tests.test_testing.cancel_other")
def cancel_other(self, task_id):
    record(self, task_id)
    from celery_schedule import cancel

    return cancel(task_id)


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def eager(celery_app):
    before = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = True
    yield celery_app
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = before


def table(using="default"):
    """The rows left, as (task name, state, attempts), for comparing two runs."""
    return sorted(
        ScheduledTask.objects.using(using).values_list("task_name", "state", "attempts")
    )


def test_task_30_days_ahead_does_not_run_at_day_29_and_runs_at_day_30(
    scheduled_tasks, clock, runs  # noqa: F811
):
    r = punch_out.s(42, reason="auto").schedule(timedelta(days=30))

    clock.shift(timedelta(days=29))
    assert len(scheduled_tasks.run_due()) == 0
    assert runs.count(r.id) == 0
    assert [c.task_id for c in scheduled_tasks.scheduled()] == [r.id]

    clock.shift(timedelta(days=1))
    run = scheduled_tasks.run_due()
    assert run.ids == [r.id]
    assert run[0].result == {"shift": 42, "reason": "auto"}
    assert run[0].successful()
    assert runs.count(r.id) == 1
    assert scheduled_tasks.scheduled() == []
    assert len(scheduled_tasks.run_due()) == 0
    assert runs.count(r.id) == 1


def test_advance_shifts_a_time_machine_clock(scheduled_tasks, clock, runs):  # noqa: F811
    r = punch_out.s(7).schedule(timedelta(days=30))
    assert len(scheduled_tasks.advance(timedelta(days=29), clock=clock)) == 0
    assert now_utc() == T0 + timedelta(days=29)
    run = scheduled_tasks.advance(86400, clock=clock)
    assert now_utc() == T0 + timedelta(days=30)
    assert run.ids == [r.id]
    assert runs.count(r.id) == 1


def test_advance_with_an_explicit_now_leaves_the_clock_alone(scheduled_tasks, runs):  # noqa: F811
    r = punch_out.s(8).schedule(T0 + timedelta(days=30))
    assert len(scheduled_tasks.advance(timedelta(days=29, hours=23), now=T0)) == 0
    assert len(testing.run_due(T0 + timedelta(days=29, hours=23))) == 0
    run = scheduled_tasks.advance(timedelta(days=30), now=T0)
    assert run.ids == [r.id]
    assert runs.count(r.id) == 1


def test_advance_from_the_real_clock_runs_what_falls_due_within(scheduled_tasks, runs):  # noqa: F811
    soon = punch_out.s(1).schedule(timedelta(hours=1))
    later = punch_out.s(2).schedule(timedelta(hours=3))
    run = scheduled_tasks.advance(timedelta(hours=2))
    assert run.ids == [soon.id]
    assert [c.task_id for c in scheduled_tasks.scheduled()] == [later.id]
    assert runs.count(later.id) == 0


def test_cancelled_task_never_runs(scheduled_tasks, clock, runs):  # noqa: F811
    r = punch_out.s(42).schedule(timedelta(days=30))
    kept = punch_out.s(43).schedule(timedelta(days=30))
    assert r.cancel() is True
    run = scheduled_tasks.advance(timedelta(days=365), clock=clock)
    assert run.ids == [kept.id]
    assert runs.count(r.id) == 0
    assert scheduled_tasks.scheduled() == []


def test_task_that_raises_is_reported_and_its_row_removed(scheduled_tasks, clock, runs):  # noqa: F811
    bad = boom.s(3).schedule(timedelta(days=1))
    good = punch_out.s(4).schedule(timedelta(days=1, seconds=1))
    run = scheduled_tasks.advance(timedelta(days=2), clock=clock)
    assert run.ids == [bad.id, good.id]
    assert [e.id for e in run.errors] == [bad.id]
    assert run[0].state == "FAILURE"
    assert isinstance(run[0].result, ValueError) and str(run[0].result) == "boom 3"
    assert "ValueError: boom 3" in run[0].traceback
    assert run[1].successful()
    assert runs.count(bad.id) == 1 and runs.count(good.id) == 1
    assert not ScheduledTask.objects.filter(task_id=bad.id).exists()
    assert scheduled_tasks.failed() == []


def test_propagate_raises_and_leaves_later_rows_pending(scheduled_tasks, clock, runs):  # noqa: F811
    bad = boom.s(5).schedule(timedelta(days=1))
    later = punch_out.s(6).schedule(timedelta(days=1, seconds=1))
    with pytest.raises(ValueError, match="boom 5"):
        scheduled_tasks.advance(timedelta(days=2), clock=clock, propagate=True)
    assert not ScheduledTask.objects.filter(task_id=bad.id).exists()
    assert [c.task_id for c in scheduled_tasks.scheduled()] == [later.id]
    assert scheduled_tasks.run_due().ids == [later.id]


def test_propagate_defaults_to_task_eager_propagates(scheduled_tasks, eager, runs):  # noqa: F811
    eager.conf.task_eager_propagates = True
    bad = boom.s(9).schedule(0)
    with pytest.raises(ValueError, match="boom 9"):
        scheduled_tasks.run_due()
    assert runs.count(bad.id) == 1
    assert scheduled_tasks.scheduled() == []


def test_unknown_task_is_marked_failed_and_kept_as_the_dispatcher_does(
    scheduled_tasks, runs  # noqa: F811
):
    row = ScheduledTask.objects.schedule("tests.proj.tasks.no_such_task", 0, 1)
    not_a_task = ScheduledTask.objects.schedule("tests.proj.tasks.not_a_task", 0)
    run = scheduled_tasks.run_due()
    assert len(run) == 0
    assert [c.task_id for c in run.failed] == [row.task_id, not_a_task.task_id]
    failed = scheduled_tasks.failed()
    assert [(c.task_id, c.state, c.attempts) for c in failed] == [
        (row.task_id, "failed", 1), (not_a_task.task_id, "failed", 1)]
    assert "no_such_task" in failed[0].last_error
    assert "not a Celery task" in failed[1].last_error
    assert scheduled_tasks.scheduled() == []
    assert len(scheduled_tasks.run_due().failed) == 0


def test_failed_row_frees_its_key_as_the_dispatcher_does(scheduled_tasks):  # noqa: F811
    first = schedule("nowhere.gone", [], {}, 0, key="k1")
    scheduled_tasks.run_due()
    again = schedule("nowhere.gone", [], {}, 0, key="k1")
    assert [c.task_id for c in scheduled_tasks.scheduled(key="k1")] == [again.task_id]
    assert [c.task_id for c in scheduled_tasks.failed(key="k1")] == [first.task_id]


def test_expired_row_is_removed_without_running(scheduled_tasks, clock, runs):  # noqa: F811
    r = punch_out.s(1).schedule(timedelta(days=1), expires=3600)
    ok = punch_out.s(2).schedule(timedelta(days=1), expires=3600)
    clock.shift(timedelta(days=1, minutes=30))
    assert scheduled_tasks.run_due().ids == [r.id, ok.id]
    late = punch_out.s(3).schedule(timedelta(days=1), expires=3600)
    run = scheduled_tasks.advance(timedelta(days=1, hours=2), clock=clock)
    assert len(run) == 0
    assert [c.task_id for c in run.expired] == [late.id]
    assert runs.count(late.id) == 0
    assert scheduled_tasks.scheduled() == [] and scheduled_tasks.failed() == []


def test_run_due_leaves_the_table_as_the_dispatcher_does(scheduled_tasks, broker, runs):  # noqa: F811
    def make_rows():
        ScheduledTask.objects.all().delete()
        ids = [
            punch_out.s(1).schedule(0).id,
            boom.s(2).schedule(0).id,
            punch_out.s(3).schedule(datetime(2000, 1, 1), expires=1).id,
            punch_out.s(4).schedule(timedelta(days=1)).id,
        ]
        ScheduledTask.objects.schedule("tests.proj.tasks.no_such_task", 0)
        return ids

    ids = make_rows()
    run = scheduled_tasks.run_due()
    after_run_due = table()
    assert run.ids == ids[:2] and [c.task_id for c in run.expired] == [ids[2]]

    ids = make_rows()
    result = dispatch_due()
    after_dispatch = table()
    assert (result.dispatched, result.failed, result.expired) == (2, 1, 1)
    assert sorted(broker.ids()) == sorted(ids[:2])

    assert after_run_due == after_dispatch == sorted([
        ("tests.proj.tasks.no_such_task", "failed", 1),
        ("tests.proj.tasks.punch_out", "pending", 0),
    ])


def test_request_id_is_the_row_id_and_args_round_trip_as_json(scheduled_tasks, runs):  # noqa: F811
    from tests.proj.tasks import echo_types

    when = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    r = echo_types.s(Decimal("1.50"), date(2030, 1, 2), when=when).schedule(0)
    run = scheduled_tasks.run_due()
    assert run.ids == [r.id]
    assert run[0].result == ["Decimal('1.50')", "datetime.date(2030, 1, 2)",
                             f"when={when!r}"]
    assert runs.count(r.id) == 1


def test_scheduled_lists_pending_rows_readably(scheduled_tasks, clock):  # noqa: F811
    a = punch_out.s(42, reason=Decimal("2.5")).schedule(
        timedelta(days=2), key="shift:42", queue="q1", expires=60, headers={"h": 1})
    b = plain_add.s(1, 2).schedule(timedelta(days=1))
    ScheduledTask.objects.schedule("nowhere.gone", 0)
    scheduled_tasks.run_due()

    calls = scheduled_tasks.scheduled()
    assert [c.task_id for c in calls] == [b.id, a.id]
    first, second = calls
    assert (first.task_name, first.args, first.kwargs, first.key) == (
        "tests.proj.tasks.plain_add", [1, 2], {}, None)
    assert first.due_at == T0 + timedelta(days=1)
    assert second.kwargs == {"reason": Decimal("2.5")}
    assert second.key == "shift:42"
    assert second.options["queue"] == "q1"
    assert second.options["expires"] == 60
    assert second.options["headers"] == {"h": 1}
    assert second.state == "pending" and second.attempts == 0

    for task in (punch_out, punch_out.s(), "tests.proj.tasks.punch_out"):
        assert [c.task_id for c in scheduled_tasks.scheduled(task)] == [a.id]
    assert [c.task_id for c in scheduled_tasks.scheduled(key="shift:42")] == [a.id]
    assert scheduled_tasks.scheduled(plain_add, key="shift:42") == []
    assert len(scheduled_tasks) == 2
    assert [c.task_id for c in scheduled_tasks] == [b.id, a.id]
    assert [c.task_name for c in scheduled_tasks.failed()] == ["nowhere.gone"]


def test_one_pass_like_one_dispatcher_run(scheduled_tasks, runs):  # noqa: F811
    r = chain_now.s(10).schedule(0)
    run = scheduled_tasks.run_due()
    follow_up = run[0].result
    assert run.ids == [r.id]
    assert [c.task_id for c in scheduled_tasks.scheduled()] == [follow_up]
    second = scheduled_tasks.run_due()
    assert second.ids == [follow_up] and second[0].result == 11


def test_row_cancelled_by_an_earlier_task_does_not_run(scheduled_tasks, clock, runs):  # noqa: F811
    victim = punch_out.s(1).schedule(timedelta(seconds=2))
    killer = cancel_other.s(victim.id).schedule(timedelta(seconds=1))
    run = scheduled_tasks.advance(5, clock=clock)
    assert run.ids == [killer.id]
    assert run[0].result is True
    assert runs.count(victim.id) == 0


def test_run_due_sends_the_dispatcher_signals(scheduled_tasks):  # noqa: F811
    seen = []

    def on(name):
        def receiver(sender, row, **kwargs):
            seen.append((name, row.task_name, type(kwargs.get("exc")).__name__))
        return receiver

    receivers = {s: on(n) for s, n in ((signals.task_dispatched, "dispatched"),
                                        (signals.task_failed, "failed"),
                                        (signals.task_expired, "expired"))}
    for signal, receiver in receivers.items():
        signal.connect(receiver)
    try:
        plain_add.s(1, 1).schedule(0)
        ScheduledTask.objects.schedule("nowhere.gone", 0)
        plain_add.s(2, 2).schedule(0, expires=datetime(2000, 1, 1, tzinfo=UTC))
        scheduled_tasks.run_due()
    finally:
        for signal, receiver in receivers.items():
            signal.disconnect(receiver)
    assert sorted(seen) == [
        ("dispatched", "tests.proj.tasks.plain_add", "NoneType"),
        ("expired", "tests.proj.tasks.plain_add", "NoneType"),
        ("failed", "nowhere.gone", "UnknownTask"),
    ]


@pytest.mark.parametrize("by, error", [
    ("1 day", TypeError), (True, TypeError), (-1, ValueError), (float("nan"), ValueError)])
def test_advance_refuses_bad_durations(scheduled_tasks, by, error):  # noqa: F811
    punch_out.s(1).schedule(0)
    with pytest.raises(error, match=repr(by).replace("(", r"\(").replace(")", r"\)")):
        scheduled_tasks.advance(by)
    assert len(scheduled_tasks) == 1


def test_advance_refuses_a_bad_clock_and_clock_with_now(scheduled_tasks, clock):  # noqa: F811
    punch_out.s(1).schedule(0)
    with pytest.raises(TypeError, match="'not a clock'"):
        scheduled_tasks.advance(1, clock="not a clock")
    with pytest.raises(ValueError, match="not both"):
        scheduled_tasks.advance(1, clock=clock, now=T0)
    assert now_utc() == T0
    assert len(scheduled_tasks) == 1


def test_scheduled_refuses_a_bad_task(scheduled_tasks):  # noqa: F811
    with pytest.raises(TypeError, match="42"):
        scheduled_tasks.scheduled(42)


def test_schedule_under_always_eager_stores_the_row_and_does_not_run(
    scheduled_tasks, eager, runs  # noqa: F811
):
    r = punch_out.s(42).schedule(timedelta(days=30))
    t = punch_out.schedule(args=[43], countdown=60)
    assert [c.task_id for c in scheduled_tasks.scheduled()] == [t.id, r.id]
    assert runs.count(r.id) == 0 and runs.count(t.id) == 0


def test_dispatch_due_under_always_eager_runs_due_tasks_inline(
    scheduled_tasks, eager, runs  # noqa: F811
):
    due = punch_out.s(1).schedule(0)
    bad = boom.s(2).schedule(0)
    later = punch_out.s(3).schedule(timedelta(days=1))
    result = dispatch_due()
    assert (result.dispatched, result.failed, result.expired) == (2, 0, 0)
    assert runs.count(due.id) == 1 and runs.count(bad.id) == 1
    assert runs.count(later.id) == 0
    assert [c.task_id for c in scheduled_tasks.scheduled()] == [later.id]
    assert scheduled_tasks.failed() == []


def test_dispatch_under_eager_propagates_still_removes_a_raising_tasks_row(
    scheduled_tasks, eager, runs  # noqa: F811
):
    eager.conf.task_eager_propagates = True
    bad = boom.s(2).schedule(0)
    result = dispatch_due()
    assert (result.dispatched, result.failed) == (1, 0)
    assert runs.count(bad.id) == 1
    assert scheduled_tasks.scheduled() == [] and scheduled_tasks.failed() == []


def test_enqueue_due_tasks_under_always_eager_runs_due_tasks(
    scheduled_tasks, eager, runs  # noqa: F811
):
    due = punch_out.s(1).schedule(0)
    counts = enqueue_due_tasks.delay().get()
    assert counts["dispatched"] == 1
    assert runs.count(due.id) == 1
    assert scheduled_tasks.scheduled() == []


class DjangoTestCaseTests(TestCase):
    """The same helpers from a plain django.test.TestCase."""

    def test_thirty_days(self):
        tasks = testing.ScheduledTasks()
        with time_machine.travel(T0, tick=False) as traveller:
            r = punch_out.s(5, reason="tc").schedule(timedelta(days=30))
            self.assertEqual(len(tasks.advance(timedelta(days=29), clock=traveller)), 0)
            run = tasks.advance(timedelta(days=1), clock=traveller)
        self.assertEqual(run.ids, [r.id])
        self.assertEqual(run[0].result, {"shift": 5, "reason": "tc"})
        self.assertEqual(RUNS.llen(f"runs:{r.id}"), 1)
        self.assertEqual(testing.scheduled(), [])

    def test_module_functions(self):
        r = punch_out.s(6).schedule(T0)
        self.assertEqual([c.task_id for c in testing.scheduled(punch_out)], [r.id])
        self.assertEqual(testing.run_due(T0 - timedelta(seconds=1)).ids, [])
        self.assertEqual(testing.run_due(T0).ids, [r.id])
        self.assertEqual(testing.scheduled(), [])


def test_advance_ticks_a_freezegun_clock(scheduled_tasks, runs):  # noqa: F811
    with freezegun.freeze_time(T0) as frozen:
        r = punch_out.s(11, reason="fg").schedule(timedelta(days=30))
        assert len(scheduled_tasks.advance(timedelta(days=29), clock=frozen)) == 0
        assert now_utc() == T0 + timedelta(days=29)
        assert runs.count(r.id) == 0
        run = scheduled_tasks.advance(timedelta(days=1), clock=frozen)
        assert now_utc() == T0 + timedelta(days=30)
    assert run.ids == [r.id]
    assert run[0].result == {"shift": 11, "reason": "fg"}
    assert runs.count(r.id) == 1
