"""The dispatcher against a real database and a real Redis broker."""

import logging
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from celery import Celery
from kombu.utils.json import loads as kombu_loads

from celery_schedule.dispatch import DispatchResult, dispatch_due, find_task, next_due_at
from celery_schedule.models import ScheduledTask
from tests.conftest import run_concurrently
from tests.proj.tasks import plain_add, punch_out, routed

UTC = timezone.utc


def due(n=1, task=punch_out, **options):
    return [task.s(i).schedule(-1, **options) for i in range(n)]


def body(msg):
    return kombu_loads(msg.body) if isinstance(msg.body, (str, bytes)) else msg.payload


@pytest.mark.django_db
def test_due_rows_become_ordinary_messages_with_their_ids(broker, celery_app):
    r = punch_out.schedule(args=[42], kwargs={"reason": "auto"}, countdown=-5)
    ScheduledTask.objects.schedule(plain_add.name, -1, Decimal("1.5"),
                                   y=datetime(2027, 1, 1, tzinfo=UTC))
    result = dispatch_due(app=celery_app)
    assert (result.dispatched, result.failed, result.expired) == (2, 0, 0)
    assert not ScheduledTask.objects.exists()
    messages = {m.headers["id"]: m for m in broker.messages()}
    assert r.id in messages and len(messages) == 2
    msg = messages[r.id]
    assert msg.headers["task"] == punch_out.name
    args, kwargs, _embed = msg.payload
    assert (args, kwargs) == ([42], {"reason": "auto"})
    (other,) = [m for i, m in messages.items() if i != r.id]
    args, kwargs, _ = other.payload
    assert args == [Decimal("1.5")] and kwargs == {"y": datetime(2027, 1, 1, tzinfo=UTC)}


@pytest.mark.django_db
def test_future_and_failed_rows_stay(broker, celery_app):
    future = punch_out.schedule(args=[1], countdown=3600)
    failed = punch_out.schedule(args=[2], countdown=-1)
    ScheduledTask.objects.filter(task_id=failed.id).update(state="failed")
    assert dispatch_due(app=celery_app).claimed == 0
    assert broker.ids() == []
    assert set(ScheduledTask.objects.values_list("task_id", flat=True)) == {future.id, failed.id}


@pytest.mark.django_db
def test_now_is_passed_in(broker, celery_app):
    r = punch_out.schedule(args=[1], countdown=3600)
    assert dispatch_due(app=celery_app).dispatched == 0
    later = datetime.now(UTC) + timedelta(hours=2)
    assert dispatch_due(app=celery_app, now=later).dispatched == 1
    assert broker.ids() == [r.id]


@pytest.mark.django_db
def test_stored_options_are_used_and_task_defaults_applied(celery_app, broker):
    from tests.conftest import BrokerQueue

    special = BrokerQueue(celery_app, "special")
    special.purge()
    other = BrokerQueue(celery_app, f"{broker.name}-other")
    other.purge()
    a = routed.schedule(countdown=-1)
    b = punch_out.schedule(args=[1], countdown=-1, queue=other.name, priority=3,
                           headers={"tenant": "acme"}, time_limit=30)
    assert dispatch_due(app=celery_app).dispatched == 2
    assert special.ids() == [a.id]
    (msg,) = other.messages()
    assert msg.headers["id"] == b.id
    assert msg.headers["tenant"] == "acme"
    assert msg.headers["timelimit"] == [30, None]
    assert msg.properties["priority"] == 3


@pytest.mark.django_db
def test_relative_expires_counts_from_due_time(broker, celery_app):
    r = punch_out.schedule(args=[1], countdown=-30, expires=3600)
    row = r.row
    assert dispatch_due(app=celery_app).dispatched == 1
    (msg,) = broker.messages()
    expires = datetime.fromisoformat(msg.headers["expires"])
    assert expires == row.due_at + timedelta(hours=1)


@pytest.mark.django_db
def test_expired_rows_are_removed_counted_and_logged(broker, celery_app, caplog):
    gone = punch_out.schedule(args=[1], countdown=-120, expires=60)
    gone_abs = punch_out.schedule(args=[2], countdown=-1,
                                  expires=datetime.now(UTC) - timedelta(seconds=1))
    fine = punch_out.schedule(args=[3], countdown=-120, expires=3600)
    with caplog.at_level(logging.WARNING, logger="celery_schedule"):
        result = dispatch_due(app=celery_app)
    assert (result.dispatched, result.expired) == (1, 2)
    assert broker.ids() == [fine.id]
    assert not ScheduledTask.objects.exists()
    assert gone.id in caplog.text and gone_abs.id in caplog.text and "expired" in caplog.text


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name, error",
    [
        ("no.such.task", "cannot import"),
        ("nodots", "no task registered"),
        ("os.system", "is not a Celery task"),
        ("tests.proj.tasks.not_a_task", "is not a Celery task"),
        ("tests.proj.broken_module.anything", "always fails to import"),
    ],
)
def test_poison_rows_fail_visibly_and_never_block_good_rows(broker, celery_app, name, error):
    good_before = punch_out.schedule(args=[1], countdown=-10)
    bad = ScheduledTask.objects.schedule(name, -5, "echo pwned")
    good_after = punch_out.schedule(args=[2], countdown=-1)
    result = dispatch_due(app=celery_app)
    assert (result.dispatched, result.failed) == (2, 1)
    assert sorted(broker.ids()) == sorted([good_before.id, good_after.id])
    row = ScheduledTask.objects.get()
    assert row.task_id == bad.task_id
    assert (row.state, row.attempts) == ("failed", 1)
    assert error in row.last_error
    again = dispatch_due(app=celery_app)
    assert again.claimed == 0
    assert ScheduledTask.objects.get().attempts == 1


@pytest.mark.django_db
def test_a_retried_failed_row_counts_attempts(broker, celery_app):
    bad = ScheduledTask.objects.schedule("no.such.task", -5)
    dispatch_due(app=celery_app)
    assert ScheduledTask.objects.retry_failed() == (1, [])
    dispatch_due(app=celery_app)
    row = ScheduledTask.objects.get(task_id=bad.task_id)
    assert (row.state, row.attempts) == ("failed", 2)


def test_find_task_imports_a_dotted_name_only_for_real_tasks(celery_app):
    import sys

    sys.modules.pop("tests.proj.lazy_tasks", None)
    celery_app.tasks.pop("tests.proj.lazy_tasks.lazy", None)
    task = find_task(celery_app, "tests.proj.lazy_tasks.lazy")
    assert task.name == "tests.proj.lazy_tasks.lazy"
    assert find_task(celery_app, punch_out.name) is celery_app.tasks[punch_out.name]
    with pytest.raises(LookupError):
        find_task(celery_app, "builtins.print")


@pytest.mark.django_db
def test_batches_and_the_per_run_limit_bound_a_run(broker, celery_app):
    ids = [r.id for r in due(12)]
    first = dispatch_due(app=celery_app, batch_size=2, limit=5)
    assert (first.claimed, first.dispatched) == (5, 5)
    assert ScheduledTask.objects.count() == 7
    rest = dispatch_due(app=celery_app, batch_size=4)
    assert rest.dispatched == 7
    assert sorted(broker.ids()) == sorted(ids)


@pytest.mark.django_db
def test_settings_bound_a_run(broker, celery_app, settings):
    settings.CELERY_SCHEDULE_BATCH_SIZE = 3
    settings.CELERY_SCHEDULE_MAX_PER_RUN = 4
    due(10)
    assert dispatch_due(app=celery_app).claimed == 4
    assert ScheduledTask.objects.count() == 6


@pytest.mark.django_db
def test_oldest_due_rows_go_first(broker, celery_app):
    late = punch_out.s(1).schedule(-10)
    early = punch_out.s(2).schedule(-100)
    dispatch_due(app=celery_app, limit=1)
    assert broker.ids() == [early.id]
    assert ScheduledTask.objects.get().task_id == late.id


@pytest.mark.django_db
def test_broker_outage_keeps_rows_pending(celery_app):
    ids = {r.id for r in due(3)}
    down = Celery("down", broker="redis://127.0.0.1:1/0", set_as_current=False)
    down.conf.task_default_queue = celery_app.conf.task_default_queue
    result = dispatch_due(app=down)
    assert result.dispatched == 0 and result.broker_error
    assert "Connection refused" in result.broker_error or "111" in result.broker_error
    rows = ScheduledTask.objects.all()
    assert {r.task_id for r in rows} == ids
    assert {(r.state, r.attempts) for r in rows} == {("pending", 0)}


@pytest.mark.django_db
def test_after_an_outage_each_row_is_published_once(broker, celery_app):
    ids = {r.id for r in due(3)}
    down = Celery("down", broker="redis://127.0.0.1:1/0", set_as_current=False)
    dispatch_due(app=down)
    assert dispatch_due(app=celery_app).dispatched == 3
    assert sorted(broker.ids()) == sorted(ids)


@pytest.mark.django_db
def test_result_counts_and_text():
    result = DispatchResult(dispatched=2, failed=1, expired=0, claimed=3)
    assert str(result) == "dispatched=2 failed=1 expired=0"
    assert "broker_error=x" in str(DispatchResult(broker_error="x"))


@pytest.mark.django_db
def test_next_due_at(celery_app):
    assert next_due_at() is None
    r = punch_out.schedule(args=[1], countdown=60)
    assert next_due_at() == r.row.due_at


@pytest.mark.django_db
def test_per_run_log_line(broker, celery_app, caplog):
    due(2)
    with caplog.at_level(logging.INFO, logger="celery_schedule"):
        dispatch_due(app=celery_app)
    assert "dispatched=2 failed=0 expired=0" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_concurrent_dispatchers_in_threads_publish_each_row_once(broker, celery_app):
    ids = sorted(r.id for r in due(300))

    def work(_):
        for _ in range(20):
            if dispatch_due(app=celery_app, batch_size=7, limit=21).claimed == 0:
                break

    assert run_concurrently(4, work) == []
    published = broker.ids()
    assert sorted(published) == ids
    assert not ScheduledTask.objects.exists()
