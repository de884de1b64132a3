"""PostgreSQL LISTEN/NOTIFY wake-up of the dispatcher loop (notify.py)."""

import select
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

import celery_schedule
from celery_schedule import notify
from celery_schedule.when import now_utc
from tests.proj.tasks import punch_out


@pytest.fixture
def postgres(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY exists on PostgreSQL only")


@pytest.fixture
def listener(postgres):
    listener = notify.waiter("default")
    assert isinstance(listener, notify.Listener)
    yield listener
    listener.close()


def wait_readable(listener, timeout=10.0) -> bool:
    ready, _, _ = select.select([listener.connection.connection.fileno()], [], [], timeout)
    return bool(ready)


def timed_wait(listener, seconds, stop=None) -> float:
    start = time.monotonic()
    listener.wait(stop or threading.Event(), seconds)
    return time.monotonic() - start


@pytest.mark.django_db
def test_schedule_sends_notify_only_on_postgresql_and_only_for_rows_due_soon(settings):
    settings.CELERY_SCHEDULE_LOOP_INTERVAL = 5.0
    with CaptureQueriesContext(connection) as queries:
        punch_out.schedule(args=[1], countdown=2)
        punch_out.schedule(args=[2], countdown=-60)
        punch_out.schedule(args=[3], countdown=60)
        punch_out.schedule(args=[4], countdown=86400 * 30)
    notifies = [q["sql"] for q in queries.captured_queries if "pg_notify" in q["sql"]]
    assert len(notifies) == (2 if connection.vendor == "postgresql" else 0)


@pytest.mark.django_db
def test_reschedule_and_schedule_many_notify_rows_due_soon(postgres):
    far = punch_out.schedule(args=[1], countdown=3600)
    with CaptureQueriesContext(connection) as queries:
        far.reschedule(1)
        celery_schedule.schedule_many([(punch_out.s(2), 3600), (punch_out.s(3), 1)])
        celery_schedule.schedule_many([(punch_out.s(4), 3600)])
    assert sum("pg_notify" in q["sql"] for q in queries.captured_queries) == 2


@pytest.mark.django_db
def test_other_databases_sleep(vendor):
    if vendor == "postgresql":
        pytest.skip("PostgreSQL listens")
    assert isinstance(notify.waiter("default"), notify.Sleeper)


def test_committed_schedule_delivers_its_due_time(listener):
    r = punch_out.schedule(args=[1], countdown=1)
    assert wait_readable(listener)
    (payload,) = listener.received()
    assert float(payload) == r.row.due_at.timestamp()


def test_rolled_back_schedule_notifies_nobody(listener):
    with pytest.raises(RuntimeError), transaction.atomic():
        punch_out.schedule(args=[1], countdown=5)
        raise RuntimeError("roll back")
    with transaction.atomic():
        r = punch_out.schedule(args=[2], countdown=2)
    assert wait_readable(listener)
    assert listener.received() == [repr(r.row.due_at.timestamp())]


def test_wait_ends_when_a_row_due_before_the_wake_up_is_committed(listener):
    def schedule_soon():
        time.sleep(0.3)
        punch_out.schedule(args=[1], countdown=1)

    thread = threading.Thread(target=schedule_soon)
    thread.start()
    elapsed = timed_wait(listener, 30)
    thread.join()
    assert elapsed < 10


def test_rows_due_after_the_wake_up_do_not_end_the_wait(listener):
    punch_out.schedule(args=[1], countdown=4)
    assert timed_wait(listener, 0.6) >= 0.6


def test_stop_ends_the_wait(listener):
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    assert timed_wait(listener, 30, stop) < 10


def test_a_broken_listen_connection_falls_back_to_sleeping_and_reconnects(listener):
    listener.connection.connection.close()
    assert timed_wait(listener, 0.3) >= 0.3
    assert listener.connection is None
    punch_out.schedule(args=[1], countdown=3600)
    listener.wait(threading.Event(), 0.1)
    assert listener.connection is not None
    punch_out.schedule(args=[2], eta=now_utc() + timedelta(seconds=1))
    assert wait_readable(listener)
    assert len(listener.received()) == 1


@pytest.mark.parametrize("payload, expected", [("100.5", True), ("200.0", False),
                                               ("garbage", True)])
def test_due_before(payload, expected):
    assert notify.due_before(payload, 150.0) is expected
