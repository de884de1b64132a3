"""Settings of the benchmark: the test project's, on the benchmark's own databases and queues."""

import os

os.environ.setdefault("CELERY_SCHEDULE_TEST_PREFIX", "bench_run")

from tests.proj.settings import *  # noqa: E402,F403

if os.environ.get("BENCH_VISIBILITY_TIMEOUT"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": float(os.environ["BENCH_VISIBILITY_TIMEOUT"]),
    }
LOGGING = {"version": 1, "disable_existing_loggers": False}
