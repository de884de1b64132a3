"""Django signals sent by the dispatcher, one per row, for metrics and audit hooks.

Each is sent with sender=ScheduledTask and `row` (the ScheduledTask, already
removed or marked failed); `task_failed` also gets `exc`.
"""

from django.dispatch import Signal

task_dispatched = Signal()
task_failed = Signal()
task_expired = Signal()
