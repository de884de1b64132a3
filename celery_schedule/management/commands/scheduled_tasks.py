"""manage.py scheduled_tasks: stats, list, cancel and retry rows, and a health check."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from celery_schedule.models import ScheduledTask, db_for_write
from celery_schedule.statistics import Stats, stats
from celery_schedule.when import now_utc

STATES = ("pending", "due", "failed")
LIST_FIELDS = ("task_id", "task_name", "state", "due_at", "attempts", "key", "last_error")


def when(value) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%SZ")


def stats_text(result: Stats) -> str:
    lines = [
        f"pending {result.pending}  due now {result.due}  failed {result.failed}",
        f"oldest due row waiting {result.lag:.1f}s  next due {when(result.next_due_at)}",
    ]
    if result.tasks:
        width = max(len("task"), *(len(name) for name in result.tasks))
        lines.append("")
        lines.append(f"{'task':<{width}}  {'pending':>7}  {'due':>7}  {'failed':>7}  {'lag s':>8}"
                     "  next due")
        for name, task in result.tasks.items():
            lines.append(f"{name:<{width}}  {task.pending:>7}  {task.due:>7}  {task.failed:>7}  "
                         f"{task.lag:>8.1f}  {when(task.next_due_at)}")
    return "\n".join(lines)


class Command(BaseCommand):
    help = ("Show what waits in the ScheduledTask table; list, cancel or retry rows; "
            "--check exits 1 when due rows wait longer than --max-lag seconds.")
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--list", action="store_true", help="list the matching rows")
        action.add_argument("--cancel", action="store_true",
                            help="delete the matching rows (pending or failed)")
        action.add_argument("--retry", action="store_true",
                            help="make the matching failed rows pending, due now")
        action.add_argument("--check", action="store_true",
                            help="health check: exit 1 when due rows wait longer than --max-lag")
        parser.add_argument("task_ids", nargs="*", metavar="TASK_ID",
                            help="select rows by task id")
        parser.add_argument("--task", dest="task_name", help="select rows by task name")
        parser.add_argument("--key", help="select rows by dedup key")
        parser.add_argument("--state", choices=STATES,
                            help="select rows by state (due = pending and due now)")
        parser.add_argument("--limit", type=int, default=100, help="rows --list shows at most")
        parser.add_argument("--max-lag", type=float, default=None,
                            help="seconds a due row may wait before --check fails")
        parser.add_argument("--max-failed", type=int, default=None,
                            help="failed rows --check tolerates (default: not checked)")
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.add_argument("--database", default=None, help="database alias of the table")

    def handle(self, *args, **options):
        task_ids = options["task_ids"]
        using = db_for_write(options["database"])
        if options["limit"] < 1:
            raise CommandError(f"--limit must be at least 1, got {options['limit']}")
        if options["check"]:
            return self.health_check(using, options)
        if options["max_lag"] is not None or options["max_failed"] is not None:
            raise CommandError("--max-lag and --max-failed go with --check")
        selectors = [task_ids, options["task_name"], options["key"], options["state"]]
        selected = any(selectors)
        if selected and not (options["list"] or options["cancel"] or options["retry"]):
            options["list"] = True
        rows = ScheduledTask.objects.db_manager(using).select(
            task_ids=task_ids or None, task_name=options["task_name"], key=options["key"],
            state=options["state"],
        )
        if options["list"]:
            return self.list_rows(rows, options)
        if options["cancel"] or options["retry"]:
            if not selected:
                raise CommandError("give task ids, --task, --key or --state to say which rows")
            return self.cancel(rows, options) if options["cancel"] else self.retry(rows, options)
        result = stats(using=using)
        self.stdout.write(json.dumps(result.as_dict(), indent=2) if options["json"]
                          else stats_text(result))

    def list_rows(self, rows, options):
        found = list(rows.order_by("due_at", "id").values(*LIST_FIELDS)[: options["limit"]])
        if options["json"]:
            for row in found:
                row["due_at"] = row["due_at"].isoformat()
            self.stdout.write(json.dumps(found, indent=2))
            return
        for row in found:
            error = row["last_error"].splitlines()[0][:80] if row["last_error"] else ""
            self.stdout.write(
                f"{row['task_id']}  {row['task_name']}  {row['state']}  {when(row['due_at'])}  "
                f"attempts={row['attempts']}  key={row['key'] or '-'}"
                + (f"  error={error}" if error else "")
            )
        shown = f"{len(found)} row(s)"
        if len(found) == options["limit"]:
            shown += f" of {rows.count()} (--limit {options['limit']})"
        self.stdout.write(shown)

    def cancel(self, rows, options):
        removed = rows.delete()[0]
        self.report({"cancelled": removed}, f"cancelled {removed} row(s)", options)

    def retry(self, rows, options):
        retried, clashes = rows.retry_failed(now_utc())
        text = f"retried {retried} row(s)"
        if clashes:
            text += (f"; {len(clashes)} left failed, their key already has a pending row: "
                     + ", ".join(clashes))
        self.report({"retried": retried, "key_clashes": clashes}, text, options)

    def report(self, data, text, options):
        self.stdout.write(json.dumps(data) if options["json"] else text)

    def health_check(self, using, options):
        max_lag, max_failed = options["max_lag"], options["max_failed"]
        if max_lag is None:
            raise CommandError("--check needs --max-lag SECONDS")
        if not max_lag >= 0:
            raise CommandError(f"--max-lag must be a number of seconds >= 0, got {max_lag}")
        if max_failed is not None and max_failed < 0:
            raise CommandError(f"--max-failed must be >= 0, got {max_failed}")
        try:
            result = stats(using=using)
        except DatabaseError as exc:
            self.stdout.write(f"FAIL database error: {exc}")
            raise SystemExit(2) from None
        problems = []
        if result.lag > max_lag:
            problems.append(f"{result.due} due row(s), oldest waiting {result.lag:.1f}s "
                            f"> {max_lag:g}s")
        if max_failed is not None and result.failed > max_failed:
            problems.append(f"{result.failed} failed row(s) > {max_failed}")
        status = "FAIL" if problems else "OK"
        if options["json"]:
            self.stdout.write(json.dumps(dict(result.as_dict(), status=status, problems=problems)))
        else:
            self.stdout.write(f"{status} " + ("; ".join(problems) or
                              f"{result.due} due, lag {result.lag:.1f}s <= {max_lag:g}s, "
                              f"{result.failed} failed"))
        if problems:
            raise SystemExit(1)
