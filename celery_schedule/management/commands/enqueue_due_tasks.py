"""manage.py enqueue_due_tasks: one dispatcher run for cron, or --loop for a long-running one."""

from __future__ import annotations

import signal
import sys
import threading

from django.core.management.base import BaseCommand

from celery_schedule import conf
from celery_schedule.dispatch import DispatchResult, dispatch_due
from celery_schedule.loop import run_loop


class Command(BaseCommand):
    help = "Publish due scheduled tasks to the broker (once, or forever with --loop)."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true",
                            help="keep running, sleeping until the next due row")
        parser.add_argument("--interval", type=float, default=None,
                            help="longest sleep of --loop in seconds "
                                 "(default CELERY_SCHEDULE_LOOP_INTERVAL)")
        parser.add_argument("--batch-size", type=int, default=None,
                            help="rows per transaction (default CELERY_SCHEDULE_BATCH_SIZE)")
        parser.add_argument("--limit", type=int, default=None,
                            help="rows per run at most (default CELERY_SCHEDULE_MAX_PER_RUN)")
        parser.add_argument("--database", default=None, help="database alias of the table")

    def handle(self, *args, loop=False, interval=None, batch_size=None, limit=None,
               database=None, verbosity=1, **options):
        def report(result: DispatchResult) -> None:
            if verbosity >= 2 or (verbosity >= 1 and (result.claimed or result.broker_error)):
                self.stdout.write(str(result))

        if not loop:
            result = dispatch_due(batch_size=batch_size, limit=limit, using=database)
            if verbosity >= 1:
                self.stdout.write(str(result))
            if result.broker_error:
                sys.exit(1)
            return
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        if verbosity >= 1:
            self.stdout.write("celery_schedule: dispatcher loop started")
        run_loop(stop, interval=interval or conf.loop_interval(), batch_size=batch_size,
                 limit=limit, using=database, on_run=report)
        if verbosity >= 1:
            self.stdout.write("celery_schedule: dispatcher loop stopped")
