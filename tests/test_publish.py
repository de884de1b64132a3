"""The dispatcher's publish path sends exactly the message apply_async sends.

Both ways publish to the same real Redis queue; the raw stored messages are compared.
Ignored, because they differ between any two publishes of one call:
- properties.delivery_tag: a fresh uuid per publish (kombu);
- properties.expiration: milliseconds left until `expires`, computed at publish time
  (compared to within 5 s instead).
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
import redis
from celery import signals as celery_signals
from celery.utils import uuid
from django.db import connection
from django.test.utils import CaptureQueriesContext

from celery_schedule import signals
from celery_schedule.dispatch import dispatch_due
from celery_schedule.models import ScheduledTask
from celery_schedule.publish import Publisher
from celery_schedule.when import now_utc
from tests.proj.celery import app
from tests.proj.settings import PREFIX
from tests.proj.tasks import plain_add, punch_out

ROUTED_QUEUE = f"{PREFIX}-publish-routed"


@app.task(name="tests.test_publish.routed_task", queue=ROUTED_QUEUE, priority=6,
          time_limit=30, soft_time_limit=20, shared=False)
def routed_task(x):
    return x


def raw_messages(queue: str) -> list[dict]:
    """Every message stored for `queue` (all priority lists), taken off the broker."""
    client = redis.Redis.from_url(app.conf.broker_url)
    found = []
    for key in sorted(client.keys(f"{queue}*")):
        if key.decode() != queue and not key.decode().startswith(queue + "\x06\x16"):
            continue
        found += [json.loads(m) for m in client.lrange(key, 0, -1)]
        client.delete(key)
    return found


def comparable(msg: dict) -> dict:
    msg = json.loads(json.dumps(msg))
    msg["properties"].pop("delivery_tag")
    expiration = msg["properties"].pop("expiration", None)
    msg["expiration_s"] = None if expiration is None else round(int(expiration) / 5000)
    msg["body"] = json.loads(base64.b64decode(msg["body"]))
    return msg


CALLS = [
    pytest.param(plain_add, (2, 3), {}, {}, id="plain"),
    pytest.param(punch_out, (42,), {"reason": "auto"}, {}, id="scheduled-kwargs"),
    pytest.param(plain_add, (1, 2), {}, {"priority": 3, "headers": {"x-trace": "abc"},
                                         "time_limit": 9, "soft_time_limit": 5,
                                         "ignore_result": True}, id="options"),
    pytest.param(plain_add, (1, 2), {}, {"expires": 3600.0}, id="expires-seconds"),
    pytest.param(routed_task, (7,), {}, {}, id="task-routing-options"),
    pytest.param(plain_add, (1, 2), {}, {"queue": ROUTED_QUEUE, "routing_key": ROUTED_QUEUE},
                 id="queue-option"),
]


@pytest.mark.parametrize(("task", "args", "kwargs", "options"), CALLS)
def test_fast_path_sends_the_message_apply_async_sends(task, args, kwargs, options):
    task = app.tasks[task.name]
    queue = options.get("queue") or getattr(task, "queue", None) or app.conf.task_default_queue
    raw_messages(queue)
    if "expires" in options:
        options = dict(options, expires=now_utc() + timedelta(seconds=options["expires"]))
    task_id = uuid()
    with app.producer_or_acquire() as producer:
        task.apply_async(args, kwargs, task_id=task_id, producer=producer, **options)
        publisher = Publisher(app, producer)
        with publisher.batch(1):
            publisher.send(task, task_id, args, kwargs, dict(options))
    celery_msg, ours = raw_messages(queue)
    assert celery_msg["headers"]["id"] == task_id
    assert comparable(ours) == comparable(celery_msg)


def test_fast_path_is_batched_on_redis():
    with app.producer_or_acquire() as producer:
        assert Publisher(app, producer).batched


def test_celery_publish_signals_fire_like_apply_async():
    seen: dict[str, list] = {"before": [], "after": []}

    def before(sender, headers, routing_key, exchange, **kw):
        seen["before"].append((sender, headers["id"], headers["argsrepr"], routing_key, exchange))

    def after(sender, headers, routing_key, exchange, **kw):
        seen["after"].append((sender, headers["id"], routing_key, exchange))

    celery_signals.before_task_publish.connect(before, weak=False)
    celery_signals.after_task_publish.connect(after, weak=False)
    try:
        task_id = uuid()
        with app.producer_or_acquire() as producer:
            plain_add.apply_async((1, 2), task_id=task_id, producer=producer)
            publisher = Publisher(app, producer)
            with publisher.batch(1):
                publisher.send(plain_add, task_id, (1, 2), {}, {})
    finally:
        celery_signals.before_task_publish.disconnect(before)
        celery_signals.after_task_publish.disconnect(after)
        raw_messages(app.conf.task_default_queue)
    assert len(seen["before"]) == 2 and seen["before"][0] == seen["before"][1]
    assert len(seen["after"]) == 2 and seen["after"][0] == seen["after"][1]


def make_due(n: int, **fields) -> list[str]:
    rows = [ScheduledTask(task_id=uuid(), task_name=plain_add.name, task_args=[i, 1],
                          task_kwargs={}, due_at=now_utc() - timedelta(seconds=1), **fields)
            for i in range(n)]
    ScheduledTask.objects.bulk_create(rows)
    return [r.task_id for r in rows]


@pytest.mark.django_db(transaction=True)
def test_query_count_per_batch_does_not_grow_with_rows(broker):
    counts = []
    for n in (10, 100):
        ids = make_due(n)
        with CaptureQueriesContext(connection) as queries:
            result = dispatch_due(batch_size=1000)
        assert result.dispatched == n
        assert sorted(broker.ids()) == sorted(ids)
        counts.append(len(queries))
    assert counts[0] == counts[1]


@pytest.mark.django_db(transaction=True)
def test_bad_rows_fail_alone_and_expired_rows_are_counted(broker):
    good = make_due(3)
    bad_args = make_due(1)
    ScheduledTask.objects.filter(task_id=bad_args[0]).update(task_args=[1, 2, 3])
    unknown = make_due(1)
    ScheduledTask.objects.filter(task_id=unknown[0]).update(task_name="no.such.task")
    expired = make_due(1, options={"expires": "2000-01-01T00:00:00+00:00"})
    sent, failed = [], []
    signals.task_dispatched.connect(lambda row, **kw: sent.append(row.task_id), weak=False,
                                    dispatch_uid="test-sent")
    signals.task_failed.connect(lambda row, **kw: failed.append(row.task_id), weak=False,
                                dispatch_uid="test-failed")
    try:
        result = dispatch_due()
    finally:
        signals.task_dispatched.disconnect(dispatch_uid="test-sent")
        signals.task_failed.disconnect(dispatch_uid="test-failed")
    assert (result.dispatched, result.failed, result.expired) == (3, 2, 1)
    assert sorted(broker.ids()) == sorted(good) == sorted(sent)
    assert sorted(failed) == sorted(bad_args + unknown)
    rows = {r.task_id: r for r in ScheduledTask.objects.all()}
    assert set(rows) == set(bad_args + unknown)
    assert "TypeError" in rows[bad_args[0]].last_error
    assert all(r.state == ScheduledTask.FAILED and r.attempts == 1 for r in rows.values())
    assert expired[0] not in rows


@pytest.mark.django_db(transaction=True)
def test_unreachable_broker_keeps_every_row_pending(settings):
    ids = make_due(5)
    dead = app.__class__("dead", broker="redis://127.0.0.1:1/0", set_as_current=False)
    dead.conf.broker_connection_timeout = 0.5
    settings.CELERY_SCHEDULE_PUBLISH_RETRY_POLICY = {"max_retries": 0}
    result = dispatch_due(app=dead)
    assert result.broker_error and result.dispatched == 0
    assert sorted(ScheduledTask.objects.pending().values_list("task_id", flat=True)) == sorted(ids)
