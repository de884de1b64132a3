"""Tasks of the test project; each run is counted in Redis so tests can see it ran once."""

import json
import os

import redis
from celery import shared_task

from celery_schedule import Scheduled

RUNS = redis.Redis.from_url(os.environ.get("CELERY_SCHEDULE_TEST_RUNS", "redis://127.0.0.1:6379/13"))


def record(task, *args, **kwargs):
    RUNS.rpush(f"runs:{task.request.id}", json.dumps({"args": repr(args), "kwargs": repr(kwargs)}))


@shared_task(base=Scheduled, bind=True)
def punch_out(self, shift_id, reason=None):
    record(self, shift_id, reason=reason)
    return {"shift": shift_id, "reason": reason}


@shared_task(bind=True)
def plain_add(self, x, y):
    record(self, x, y)
    return x + y


@shared_task(base=Scheduled, bind=True)
def echo_types(self, *args, **kwargs):
    record(self, *args, **kwargs)
    return [repr(a) for a in args] + [f"{k}={v!r}" for k, v in sorted(kwargs.items())]


@shared_task(base=Scheduled, bind=True, queue="special")
def routed(self):
    record(self)
    return "routed"


def not_a_task():
    raise AssertionError("must never be called")


@shared_task(base=Scheduled, bind=True, max_retries=2)
def flaky(self, countdown, fail_times=1):
    """Fails `fail_times` runs, each retried after `countdown` seconds; then returns its retries."""
    record(self, countdown, fail_times=fail_times)
    if self.request.retries < fail_times:
        raise self.retry(countdown=countdown, exc=RuntimeError("flaky"))
    return {"retries": self.request.retries}


@shared_task(base=Scheduled, bind=True)
def scan_pdfs(self, period=30.0, key="scan-pdfs", crash=False):
    """Recipe: schedule the next run first (one pending row per key), then do the work."""
    self.schedule(kwargs={"period": period, "key": key, "crash": crash}, countdown=period, key=key)
    RUNS.rpush(f"scans:{key}", self.request.id)
    if crash:
        raise RuntimeError("scan crashed")
    return "scanned"
