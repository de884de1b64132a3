"""Django admin for ScheduledTask: see what waits, what is due and what failed; act on it.

"Run now" makes the selected rows due now; the dispatcher (beat, cron or --loop)
sends them at its next run, so the admin never publishes to the broker itself.
"""

from __future__ import annotations

import json
import pprint
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html

from .models import ScheduledTask
from .when import now_utc

UNITS = ((86400, "day", "days"), (3600, "h", "h"), (60, "min", "min"), (1, "s", "s"))
ERROR_WIDTH = 80


def humanize(seconds: float) -> str:
    """A rough length of time in its largest unit: "3 days", "5 min", "1 h"."""
    seconds = abs(seconds)
    for size, one, many in UNITS:
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {one if count == 1 else many}"
    return "0 s"


def relative_due(row: ScheduledTask, now: datetime) -> str:
    """ "in 3 days", "overdue 5 min", "due now"; a failed row "was due 5 min ago"."""
    seconds = (row.due_at - now).total_seconds()
    if row.state == ScheduledTask.FAILED:
        return f"was due {humanize(seconds)} ago" if seconds < 0 else f"due in {humanize(seconds)}"
    if seconds >= 1:
        return f"in {humanize(seconds)}"
    if seconds > -1:
        return "due now"
    return f"overdue {humanize(seconds)}"


def pretty(value: Any) -> str:
    return pprint.pformat(value, width=88, sort_dicts=True)


def decoded(row: ScheduledTask, what: str) -> str:
    """The decoded args/kwargs/options as Python sees them, or the raw JSON if undecodable."""
    from .message import decode

    raw = {"args": row.task_args, "kwargs": row.task_kwargs, "options": row.options}[what]
    try:
        return pretty(decode(raw))
    except Exception as exc:
        return f"{json.dumps(raw, indent=2)}\n(cannot decode: {type(exc).__name__}: {exc})"


class DueStateFilter(admin.SimpleListFilter):
    """Pending rows split by whether their time has come, plus failed rows."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return (("waiting", "pending, not yet due"), ("due", "due now"), ("failed", "failed"))

    def queryset(self, request, queryset):
        now = now_utc()
        if self.value() == "waiting":
            return queryset.pending().filter(due_at__gt=now)
        if self.value() == "due":
            return queryset.due(now)
        if self.value() == "failed":
            return queryset.failed()
        return queryset


@admin.register(ScheduledTask)
class ScheduledTaskAdmin(admin.ModelAdmin):
    list_display = ("task_name", "due", "state", "attempts", "short_error", "key", "task_id")
    list_filter = (DueStateFilter, "task_name")
    search_fields = ("task_id", "task_name", "key")
    ordering = ("due_at",)
    actions = ("run_now", "retry_failed", "cancel")
    fields = ("task_id", "task_name", "call", "args", "kwargs", "options_pretty", "due", "state",
              "attempts", "last_error", "key", "created_at")
    readonly_fields = fields

    @admin.display(description="due", ordering="due_at")
    def due(self, row: ScheduledTask) -> str:
        local = timezone.localtime(row.due_at)
        return format_html('{}<br><span class="cs-relative">{}</span>',
                           local.strftime("%Y-%m-%d %H:%M:%S %Z"),
                           relative_due(row, now_utc()))

    @admin.display(description="last error")
    def short_error(self, row: ScheduledTask) -> str:
        error = row.last_error or ""
        return error if len(error) <= ERROR_WIDTH else error[: ERROR_WIDTH - 1] + "…"

    @admin.display(description="call")
    def call(self, row: ScheduledTask) -> str:
        from .message import decode

        try:
            parts = [repr(a) for a in decode(row.task_args)]
            parts += [f"{k}={v!r}" for k, v in decode(row.task_kwargs).items()]
        except Exception:
            return f"{row.task_name}(…)"
        return f"{row.task_name}({', '.join(parts)})"

    @admin.display(description="args")
    def args(self, row: ScheduledTask) -> str:
        return format_html("<pre>{}</pre>", decoded(row, "args"))

    @admin.display(description="kwargs")
    def kwargs(self, row: ScheduledTask) -> str:
        return format_html("<pre>{}</pre>", decoded(row, "kwargs"))

    @admin.display(description="options")
    def options_pretty(self, row: ScheduledTask) -> str:
        return format_html("<pre>{}</pre>", decoded(row, "options"))

    def has_add_permission(self, request) -> bool:
        return False

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "show_save": False,
                         "show_save_and_continue": False, "show_save_and_add_another": False}
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def update_rows(self, request, queryset, change: Callable[[Any], tuple[int, list[str]]],
                    verb: str) -> None:
        """Apply `change` (making rows pending) and report it, and any key clash."""
        count, clashes = change(queryset)
        self.message_user(request, f"{count} scheduled task(s) {verb}.", messages.SUCCESS)
        if clashes:
            self.message_user(
                request,
                f"{len(clashes)} row(s) left as they were: another pending task already holds "
                f"their key ({', '.join(clashes)}). Cancel one of them first.",
                messages.ERROR,
            )

    @admin.action(description="Run selected tasks now (due now, sent by the next dispatcher run)",
                  permissions=["change"])
    def run_now(self, request, queryset):
        self.update_rows(request, queryset, lambda qs: qs.run_now(),
                         "marked due now: the dispatcher sends them at its next run")

    @admin.action(description="Retry selected failed tasks", permissions=["change"])
    def retry_failed(self, request, queryset):
        self.update_rows(request, queryset, lambda qs: qs.retry_failed(),
                         "moved from failed to due now")

    @admin.action(description="Cancel selected tasks (delete them)", permissions=["delete"])
    def cancel(self, request, queryset):
        count = queryset.delete()[0]
        self.message_user(request, f"{count} scheduled task(s) cancelled.", messages.SUCCESS)
