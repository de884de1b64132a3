"""The ScheduledTask table and every query made on it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from django.db import IntegrityError, OperationalError, connections, models, router, transaction

from .when import now_utc

ON_CONFLICT = ("keep", "replace", "raise", "push", "earliest")
CONFLICT_RETRIES = 5


class ScheduledTaskQuerySet(models.QuerySet):
    def due(self, now: datetime | None = None) -> ScheduledTaskQuerySet:
        """Pending rows whose due time has come, oldest first."""
        return self.filter(state=ScheduledTask.PENDING, due_at__lte=now or now_utc()).order_by(
            "due_at"
        )

    def pending(self) -> ScheduledTaskQuerySet:
        return self.filter(state=ScheduledTask.PENDING)

    def failed(self) -> ScheduledTaskQuerySet:
        return self.filter(state=ScheduledTask.FAILED)

    def schedule(self, task_name: str, when: Any, /, *args: Any, **kwargs: Any) -> ScheduledTask:
        """Create a row for the task registered as `task_name` (no import of the task)."""
        from .scheduling import schedule

        return schedule(task_name, args, kwargs, when, using=self._db)

    def next_due_at(self) -> datetime | None:
        """The due time of the earliest pending row."""
        return self.pending().order_by("due_at").values_list("due_at", flat=True).first()

    def insert(self, row: ScheduledTask, on_conflict: str = "keep") -> ScheduledTask:
        """Insert `row`; with a key, resolve a clash with the pending row holding it.

        The unique `pending_key` column makes the database the judge, so two
        connections scheduling one key at once leave one pending row.
        """
        from .exceptions import AlreadyScheduled

        if on_conflict not in ON_CONFLICT:
            raise ValueError(f"on_conflict must be one of {ON_CONFLICT}, got {on_conflict!r}")
        if row.key is None:
            row.save(force_insert=True, using=self.db)
            return row
        row.pending_key = row.key
        for _ in range(CONFLICT_RETRIES):
            try:
                with transaction.atomic(using=self.db):
                    row.save(force_insert=True, using=self.db)
                return row
            except IntegrityError:
                with transaction.atomic(using=self.db):
                    existing = self.select_for_update().filter(pending_key=row.key).first()
                    if existing is None:
                        if self.filter(task_id=row.task_id).exists():
                            raise
                        continue
                    if on_conflict == "raise":
                        raise AlreadyScheduled(row.key, existing.task_id) from None
                    if on_conflict == "replace":
                        for field in ("task_name", "task_args", "task_kwargs", "options", "due_at"):
                            setattr(existing, field, getattr(row, field))
                        existing.save(
                            using=self.db,
                            update_fields=["task_name", "task_args", "task_kwargs", "options",
                                           "due_at"],
                        )
                    if (on_conflict == "push" and row.due_at > existing.due_at) or (
                        on_conflict == "earliest" and row.due_at < existing.due_at
                    ):
                        existing.due_at = row.due_at
                        existing.save(using=self.db, update_fields=["due_at"])
                    return existing
        raise IntegrityError(f"could not settle the conflict on key {row.key!r}")

    def by_task_id(self, task_id: str) -> ScheduledTaskQuerySet:
        """The row of `task_id` addressed by primary key.

        A write through it locks the primary key first, as the dispatcher's claim
        does, so the two cannot deadlock on InnoDB (a write by task_id can).
        """
        pk = self.filter(task_id=task_id).values_list("pk", flat=True).first()
        return self.filter(pk=pk, task_id=task_id) if pk is not None else self.none()

    def retrying(self, write: Callable[[], Any]) -> Any:
        """Run `write` in a transaction, again if it was a deadlock victim (InnoDB).

        Only when the caller has no transaction of its own: a deadlock rolls that
        back whole, so inside one the error is the caller's to see.
        """
        connection = connections[self.db]
        for attempt in range(CONFLICT_RETRIES):
            outer = connection.in_atomic_block
            try:
                with transaction.atomic(using=self.db):
                    return write()
            except OperationalError as exc:
                if outer or not is_deadlock(exc) or attempt == CONFLICT_RETRIES - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))

    def cancel(self, task_id: str) -> bool:
        """Remove the row of `task_id` if it was not dispatched (pending or failed)."""

        def delete() -> bool:
            qs = self.by_task_id(task_id)
            return bool(qs.delete()[0]) or (qs.exists() and bool(qs.delete()[0]))

        return self.retrying(delete)

    def reschedule(self, task_id: str, due_at: datetime) -> bool:
        """Move the row of `task_id` to `due_at`; a failed row becomes pending (attempts kept)."""
        from .exceptions import AlreadyScheduled

        fields = {"due_at": due_at, "state": ScheduledTask.PENDING, "pending_key": models.F("key")}

        def update() -> bool:
            qs = self.by_task_id(task_id)
            return bool(qs.update(**fields)) or (qs.exists() and bool(qs.update(**fields)))

        try:
            return self.retrying(update)
        except IntegrityError:
            qs = self.by_task_id(task_id)
            key = qs.values_list("key", flat=True).first()
            holder = self.filter(pending_key=key).values_list("task_id", flat=True).first()
            raise AlreadyScheduled(key, holder or "?") from None

    def run_now(self, now: datetime | None = None) -> tuple[int, list[str]]:
        """Make these rows pending and due `now` (attempts kept) for the next dispatcher run.

        Returns how many rows changed and the task ids left as they were because
        another pending row holds their key.
        """
        now = now or now_utc()
        pending = {"state": ScheduledTask.PENDING, "due_at": now}
        changed = self.filter(key__isnull=True).update(**pending)
        clashes = []
        rows = self.model.objects.db_manager(self.db)
        for pk, task_id, key in self.filter(key__isnull=False).values_list("pk", "task_id", "key"):
            try:
                with transaction.atomic(using=self.db):
                    changed += rows.filter(pk=pk).update(pending_key=key, **pending)
            except IntegrityError:
                clashes.append(task_id)
        return changed, clashes

    def retry_failed(self, now: datetime | None = None) -> tuple[int, list[str]]:
        """run_now() for the failed rows among these."""
        return self.failed().run_now(now)

    def claim(self, now: datetime, limit: int) -> list[ScheduledTask]:
        """Lock up to `limit` due rows that no other dispatcher holds, and remove them.

        Must run inside a transaction: the rows come back only if it rolls back.
        Servers without SKIP LOCKED (MySQL < 8, MariaDB < 10.6) wait for the lock instead.
        """
        skip = connections[self.db].features.has_select_for_update_skip_locked
        rows = list(self.due(now).select_for_update(skip_locked=skip)[:limit])
        if rows:
            self.filter(pk__in=[row.pk for row in rows]).delete()
        return rows

    def bulk_insert(self, rows: list[ScheduledTask], batch_size: int) -> None:
        """Insert new rows in as few statements as the database allows.

        PostgreSQL with psycopg 3 takes them in one COPY, several times faster than
        a multi-row INSERT; elsewhere one INSERT per `batch_size` rows.
        """
        connection = connections[self.db]
        if not rows:
            return
        if connection.vendor != "postgresql" or not hasattr(connection.cursor().cursor, "copy"):
            self.bulk_create(rows, batch_size=batch_size)
            return
        fields = [f for f in self.model._meta.concrete_fields if not f.primary_key]
        columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        table = connection.ops.quote_name(self.model._meta.db_table)
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([f.get_db_prep_save(f.pre_save(row, True), connection)
                                    for f in fields])

    def put_back(self, rows: Iterable[ScheduledTask]) -> None:
        """Insert claimed rows again as they are (their pk, id and key kept)."""
        rows = list(rows)
        for row in rows:
            row.pending_key = row.key if row.state == ScheduledTask.PENDING else None
        if rows:
            self.bulk_create(rows)

    def select(
        self,
        *,
        task_ids: Iterable[str] | None = None,
        task_name: str | None = None,
        key: str | None = None,
        state: str | None = None,
        now: datetime | None = None,
    ) -> ScheduledTaskQuerySet:
        """Rows matching every filter given; `state` is "pending", "due" or "failed"."""
        qs = self
        if task_ids is not None:
            qs = qs.filter(task_id__in=[str(task_id) for task_id in task_ids])
        if task_name is not None:
            qs = qs.filter(task_name=task_name)
        if key is not None:
            qs = qs.filter(key=key)
        if state == "due":
            qs = qs.filter(state=ScheduledTask.PENDING, due_at__lte=now or now_utc())
        elif state in (ScheduledTask.PENDING, ScheduledTask.FAILED):
            qs = qs.filter(state=state)
        elif state is not None:
            raise ValueError(f"state must be 'pending', 'due' or 'failed', got {state!r}")
        return qs

    def summary(self, now: datetime) -> dict[str, Any]:
        """Counts and due times of these rows at `now`, in one aggregate query."""
        return self.aggregate(**summary_columns(now))

    def summary_by_task(self, now: datetime) -> list[dict[str, Any]]:
        """summary() per task name, in one grouped query."""
        return list(
            self.order_by("task_name").values("task_name").annotate(**summary_columns(now))
        )


def summary_columns(now: datetime) -> dict[str, Any]:
    """The aggregates of summary(): pending, due and failed counts, oldest due, next due."""
    pending = models.Q(state=ScheduledTask.PENDING)
    due = pending & models.Q(due_at__lte=now)
    return {
        "pending": models.Count("pk", filter=pending),
        "due": models.Count("pk", filter=due),
        "failed": models.Count("pk", filter=models.Q(state=ScheduledTask.FAILED)),
        "oldest_due_at": models.Min("due_at", filter=due),
        "next_due_at": models.Min("due_at", filter=pending & models.Q(due_at__gt=now)),
    }


class ScheduledTask(models.Model):
    """A Celery task waiting in the database until its due time."""

    PENDING = "pending"
    FAILED = "failed"
    STATES = [(PENDING, "pending"), (FAILED, "failed")]

    id = models.BigAutoField(primary_key=True)
    task_id = models.CharField(max_length=255, unique=True)
    task_name = models.CharField(max_length=255, db_index=True)
    task_args = models.JSONField(default=list, blank=True)
    task_kwargs = models.JSONField(default=dict, blank=True)
    options = models.JSONField(default=dict, blank=True)
    due_at = models.DateTimeField()
    state = models.CharField(max_length=16, choices=STATES, default=PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    key = models.CharField(max_length=255, null=True, blank=True, db_index=True)
    # The key while the row is pending, else NULL: a plain unique index (no condition,
    # so it holds on MySQL/MariaDB too) allows one pending row per key.
    pending_key = models.CharField(max_length=255, null=True, blank=True, unique=True,
                                   editable=False)
    created_at = models.DateTimeField(default=now_utc)

    objects = ScheduledTaskQuerySet.as_manager()

    class Meta:
        verbose_name = "scheduled task"
        indexes = [models.Index(fields=["state", "due_at"], name="celery_sched_state_due")]

    def __str__(self) -> str:
        return f"{self.task_name} [{self.task_id}] at {self.due_at:%Y-%m-%d %H:%M:%S}Z"

    @property
    def args(self) -> list:
        """The positional args the task will receive (decoded)."""
        from .message import decode

        return decode(self.task_args)

    @property
    def kwargs(self) -> dict:
        """The keyword args the task will receive (decoded)."""
        from .message import decode

        return decode(self.task_kwargs)


def is_deadlock(exc: BaseException) -> bool:
    """Whether a database error is a deadlock (MySQL/MariaDB 1213, PostgreSQL 40P01)."""
    cause = exc.__cause__
    code = getattr(cause, "args", (None,))[0] if cause is not None else None
    return code == 1213 or getattr(cause, "sqlstate", None) == "40P01"


def db_for_write(using: str | None = None) -> str:
    """The database alias ScheduledTask is written to: `using`, else Django's routers."""
    return using or router.db_for_write(ScheduledTask)
