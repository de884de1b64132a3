"""Drop-in mode across Celery's own calls (retry, signatures, chains, groups, task_cls) and
debounce keys (on_conflict="push" / "earliest")."""

from datetime import timedelta, timezone

import pytest
import time_machine
from celery import Celery, chain, group
from celery.exceptions import MaxRetriesExceededError, Retry
from celery.utils import uuid
from django.db import transaction

from celery_schedule import Scheduled, ScheduledResult
from celery_schedule.dispatch import dispatch_due
from celery_schedule.models import ScheduledTask
from tests.conftest import NOW, run_concurrently
from tests.proj.tasks import flaky, punch_out

UTC = timezone.utc
LATER = NOW + timedelta(days=2)




def retry_as_worker(task, celery_app, *, retries=0, **retry_options):
    """Call task.retry() as the worker would while running message `id` (no eager request)."""
    task_id = uuid()
    task.push_request(
        id=task_id, args=[3600], kwargs={"fail_times": 1}, retries=retries,
        called_directly=False, is_eager=False, root_id=task_id,
        delivery_info={"exchange": "", "routing_key": celery_app.conf.task_default_queue},
    )
    try:
        return task_id, task.retry(**{"exc": RuntimeError("flaky"), **retry_options})
    finally:
        task.pop_request()


# -- self.retry() ---------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_retry_past_the_threshold_is_a_row_and_keeps_id_and_retry_count(
        celery_app, broker, frozen, threshold):
    with pytest.raises(Retry) as info:
        retry_as_worker(flaky, celery_app, countdown=3600)
    task_id = info.value.sig.id
    row = ScheduledTask.objects.get()
    assert row.task_id == task_id and row.task_name == flaky.name
    assert row.due_at == NOW + timedelta(hours=1)
    assert (row.args, row.kwargs) == ([3600], {"fail_times": 1})
    assert row.options["retries"] == 1 and row.options["root_id"] == task_id
    assert broker.ids() == []
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        assert dispatch_due(app=celery_app).dispatched == 1
    (msg,) = broker.messages()
    assert msg.headers["id"] == task_id and msg.headers["retries"] == 1
    assert msg.headers["root_id"] == task_id and msg.headers["eta"] is None


@pytest.mark.django_db(transaction=True)
def test_retry_with_eta_is_a_row(celery_app, broker, frozen, threshold):
    with pytest.raises(Retry):
        retry_as_worker(flaky, celery_app, eta=LATER)
    assert ScheduledTask.objects.get().due_at == LATER
    assert broker.ids() == []


@pytest.mark.django_db(transaction=True)
def test_retry_at_or_under_the_threshold_goes_to_the_broker(celery_app, broker, threshold):
    with pytest.raises(Retry) as info:
        retry_as_worker(flaky, celery_app, countdown=60)
    assert ScheduledTask.objects.count() == 0
    (msg,) = broker.messages()
    assert msg.headers["id"] == info.value.sig.id and msg.headers["retries"] == 1


@pytest.mark.django_db(transaction=True)
def test_max_retries_still_holds(celery_app, broker, threshold):
    with pytest.raises(RuntimeError, match="flaky"):
        retry_as_worker(flaky, celery_app, retries=flaky.max_retries, countdown=3600)
    with pytest.raises(MaxRetriesExceededError):
        retry_as_worker(flaky, celery_app, retries=1, countdown=3600, max_retries=1, exc=None)
    assert ScheduledTask.objects.count() == 0
    assert broker.ids() == []


@pytest.mark.django_db(transaction=True)
def test_retry_inside_atomic_goes_to_the_broker_not_to_a_row_that_rolls_back(
        celery_app, broker, threshold):
    with pytest.raises(Retry) as info, transaction.atomic():
        retry_as_worker(flaky, celery_app, countdown=3600)
    assert ScheduledTask.objects.count() == 0
    assert broker.ids() == [info.value.sig.id]


@pytest.mark.django_db(transaction=True)
def test_retry_throw_false_returns_retry_and_stores_the_row(celery_app, broker, threshold):
    task_id, ret = retry_as_worker(flaky, celery_app, countdown=3600, throw=False)
    assert isinstance(ret, Retry)
    assert ScheduledTask.objects.get().task_id == task_id


# -- signatures, chains, groups ------------------------------------------------------------

@pytest.mark.django_db
def test_signature_apply_async_and_delay_are_intercepted(broker, frozen, threshold):
    a = punch_out.s(1).apply_async(countdown=3600)
    b = punch_out.s(2).set(countdown=7200).delay()
    c = punch_out.signature((3,), countdown=30).apply_async()
    assert isinstance(a, ScheduledResult) and isinstance(b, ScheduledResult)
    rows = {row.task_id: row for row in ScheduledTask.objects.all()}
    assert set(rows) == {a.id, b.id}
    assert rows[b.id].due_at == NOW + timedelta(hours=2) and rows[b.id].args == [2]
    assert broker.ids() == [c.id]


@pytest.mark.django_db
def test_chain_with_countdown_stores_its_first_task_with_the_rest_of_the_chain(celery_app,
        broker, frozen, threshold):
    chain(punch_out.si(1), punch_out.si(2)).apply_async(countdown=3600)
    row = ScheduledTask.objects.get()
    assert row.args == [1]
    assert [sig["args"] for sig in row.options["chain"]] == [[2]]
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        assert dispatch_due(app=celery_app).dispatched == 1
    (msg,) = broker.messages()
    _, _, embed = msg.decode()
    assert [sig["args"] for sig in embed["chain"]] == [[2]]


@pytest.mark.django_db
def test_group_with_countdown_stores_each_task_with_its_group_id(broker, frozen, threshold):
    result = group(punch_out.s(1), punch_out.s(2)).apply_async(countdown=3600)
    rows = ScheduledTask.objects.order_by("task_args")
    assert [row.args for row in rows] == [[1], [2]]
    assert {row.options["group_id"] for row in rows} == {result.id}
    assert [r.id for r in result.results] == [row.task_id for row in rows]
    assert broker.ids() == []


@pytest.mark.django_db
def test_app_wide_task_cls(broker, frozen, threshold, celery_app):
    app = Celery("dropin", task_cls="celery_schedule:Scheduled", set_as_current=False)
    app.conf.update(broker_url=celery_app.conf.broker_url,
                    task_default_queue=celery_app.conf.task_default_queue)

    @app.task(name="tests.dropin.app_wide")
    def app_wide(x):
        return x

    r = app_wide.apply_async((5,), countdown=3600)
    assert isinstance(app_wide, Scheduled)
    row = ScheduledTask.objects.get()
    assert (row.task_id, row.task_name, row.args) == (r.id, "tests.dropin.app_wide", [5])
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        assert dispatch_due(app=app).dispatched == 1
    assert broker.ids() == [r.id]


# -- debounce keys -------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize(
    "policy, second, expected",
    [
        ("push", 7200, 7200),
        ("push", 600, 3600),
        ("earliest", 600, 600),
        ("earliest", 7200, 3600),
    ],
)
def test_debounce_moves_only_the_due_time(frozen, policy, second, expected):
    first = punch_out.schedule(args=[1], countdown=3600, key="mail:7", on_conflict=policy)
    again = punch_out.schedule(args=[2], countdown=second, key="mail:7", on_conflict=policy,
                               queue="other")
    assert again.id == first.id
    row = ScheduledTask.objects.get()
    assert row.due_at == NOW + timedelta(seconds=expected)
    assert row.args == [1] and "queue" not in row.options


@pytest.mark.django_db
def test_push_moves_relative_expiry_with_the_due_time(celery_app, frozen):
    punch_out.schedule(args=[1], countdown=60, key="k", on_conflict="push", expires=30)
    punch_out.schedule(args=[1], countdown=900, key="k", on_conflict="push", expires=30)
    with time_machine.travel(NOW + timedelta(seconds=901), tick=False):
        result = dispatch_due(app=celery_app)
    assert (result.dispatched, result.expired) == (1, 0)


@pytest.mark.django_db
def test_debounce_of_a_failed_row_makes_a_new_pending_row(frozen):
    first = punch_out.schedule(args=[1], countdown=60, key="k", on_conflict="push")
    ScheduledTask.objects.filter(task_id=first.id).update(state="failed", pending_key=None)
    again = punch_out.schedule(args=[1], countdown=30, key="k", on_conflict="push")
    assert again.id != first.id
    assert ScheduledTask.objects.get(task_id=again.id).due_at == NOW + timedelta(seconds=30)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("policy, pick", [("push", max), ("earliest", min)])
def test_concurrent_debounce_keeps_one_row_at_the_right_time(vendor, policy, pick):
    if vendor == "sqlite":
        pytest.skip("SQLite has a single writer; concurrency is tested on server databases")
    threads, rounds, ids = 6, 5, set()
    offsets = [60 * (n * rounds + i + 1) for n in range(threads) for i in range(rounds)]

    def work(n):
        for i in range(rounds):
            with transaction.atomic():
                r = punch_out.schedule(args=[n], eta=NOW + timedelta(
                    seconds=offsets[n * rounds + i]), key="debounce", on_conflict=policy)
            ids.add(r.id)

    assert run_concurrently(threads, work) == []
    row = ScheduledTask.objects.get(key="debounce")
    assert ids == {row.task_id}
    assert row.due_at == NOW + timedelta(seconds=pick(offsets))
