"""The dispatcher's publish path: Celery's own message, sent with less work per row.

`Task.apply_async` spends most of its time on things a dispatcher does not need
for each row: reading the same settings again, subscribing to the result of a
task it will never wait for (Redis/RPC result backends), building an AsyncResult,
and one broker round trip per message. `Publisher.send` builds the message with
Celery's own `amqp.create_task_message` and publishes it with Celery's own
`amqp.send_task_message` (so `before_task_publish`/`after_task_publish` fire and
routing, headers, properties and body are Celery's), doing once per batch what
apply_async does per call. `Publisher.batch()` groups the pushes of a batch into
one round trip where kombu supports it (Redis pipelines, kombu >= 5.7).

Rows this path does not cover (unusual options, tasks that override apply_async,
shadow_name or use pydantic arguments, eager mode) go through `apply_async`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from celery import Celery, Task
from celery.utils.time import maybe_make_aware
from kombu import Producer

try:
    from kombu.exceptions import BatchPublishError
except ImportError:
    BATCH_ERRORS: tuple[type[BaseException], ...] = ()
else:
    BATCH_ERRORS = (BatchPublishError,)

# Options whose handling in apply_async/send_task this module reproduces.
FAST_OPTIONS = frozenset({
    "queue", "routing_key", "exchange", "priority", "headers", "expires", "time_limit",
    "soft_time_limit", "ignore_result", "serializer", "compression", "delivery_mode",
})


def default_apply_async(task: Task) -> bool:
    """Whether `task` sends like celery.Task: its class overrides nothing this path skips."""
    cls = type(getattr(task, "_get_current_object", lambda: task)())
    if cls.shadow_name is not Task.shadow_name or getattr(task, "__v2_compat__", False):
        return False
    if getattr(task, "_dump_pydantic_arguments", None) is not None:
        return False
    from .task import Scheduled

    # Scheduled.apply_async only diverts calls with an eta/countdown; dispatch sends none.
    return cls.apply_async in (Task.apply_async, Scheduled.apply_async)


@contextlib.contextmanager
def producer_for(app: Celery) -> Iterator[Any]:
    """The producer of one dispatch batch: the app's pool, but with publisher confirms on AMQP.

    Without confirms RabbitMQ refuses a message (say, to a missing exchange) after
    the publish returned: the row would be removed as dispatched and the message lost.
    """
    with app.connection_for_write() as probe:
        amqp = probe.transport.driver_type == "amqp"
    if not amqp or (app.conf.broker_transport_options or {}).get("confirm_publish"):
        with app.producer_or_acquire() as producer:
            yield producer
        return
    with app.connection_for_write(transport_options={"confirm_publish": True}) as conn:
        yield Producer(conn)


class Publisher:
    """Publishes due rows over one producer, as `task.apply_async` would."""

    def __init__(self, app: Celery, producer: Any, *, retry: bool = True,
                 retry_policy: Mapping[str, Any] | None = None) -> None:
        app = getattr(app, "_get_current_object", lambda: app)()
        self.app = app
        self.producer = producer
        self.retry = retry
        self.retry_policy = dict(retry_policy or {})
        conf = app.conf
        self.amqp = app.amqp
        self.router = app.amqp.router
        self.eager = bool(conf.task_always_eager)
        self.fast = not self.eager and type(app).send_task is Celery.send_task
        self.sent_event = conf.task_send_sent_event
        self.reply_to = app.thread_oid
        self.parent = app.current_worker_task
        self.inherit_priority = bool(self.parent) and conf.task_inherit_parent_priority
        self._plain: dict[str, bool] = {}
        self.batched = bool(getattr(producer, "batch", None)) and bool(
            getattr(producer, "supports_batch_publish", False))

    @contextlib.contextmanager
    def batch(self, size: int) -> Iterator[None]:
        """Buffer the pushes of up to `size` messages and send them in one go at the end.

        Without batch support in the transport, messages are sent one by one.
        """
        if not self.batched:
            yield
            return
        with self.producer.batch(max_size=max(1, size) * 16):
            yield

    def send(self, task: Task, task_id: str, args: tuple, kwargs: dict,
             options: dict[str, Any]) -> None:
        """Publish one call of `task`; raises what apply_async would raise.

        Under task_always_eager the task runs inline, as apply_async would run it,
        and its own exception never counts as a failed dispatch.
        """
        if self.eager:
            task.apply(args, kwargs, task_id=task_id, throw=False, **options)
            return
        if not self.fast or not self.plain(task) or not FAST_OPTIONS.issuperset(options):
            task.apply_async(args, kwargs, task_id=task_id, producer=self.producer,
                             retry=self.retry, retry_policy=self.retry_policy, **options)
            return
        if task.soft_time_limit and task.time_limit and task.soft_time_limit > task.time_limit:
            raise ValueError("soft_time_limit must be less than or equal to time_limit")
        if task.typing:
            check_arguments = getattr(task, "__header__", None)
            if check_arguments is not None:
                check_arguments(*args, **kwargs)
        options = dict(task._get_exec_options(), **options)
        ignore_result = options.pop("ignore_result", task.ignore_result)
        time_limit = options.pop("time_limit", None)
        soft_time_limit = options.pop("soft_time_limit", None)
        expires = options.pop("expires", None)
        options = self.router.route(options, task.name, args, kwargs, task)
        if expires is not None:
            options["expiration"] = max(0, self.seconds_until(expires))
        root_id = parent_id = None
        if self.parent:
            root_id = self.parent.request.root_id or self.parent.request.id
            parent_id = self.parent.request.id
            if self.inherit_priority:
                options.setdefault("priority", self.parent.request.delivery_info.get("priority"))
        message = self.amqp.create_task_message(
            task_id, task.name, args, kwargs, None, None, None, None, expires, 0, None,
            None, None, self.reply_to, time_limit, soft_time_limit, self.sent_event,
            root_id, parent_id, None, None, ignore_result=ignore_result,
            replaced_task_nesting=0, **options,
        )
        for stamp in options.pop("stamped_headers", None) or ():
            options.pop(stamp, None)
        with self.producer.connection._reraise_as_library_errors():
            self.amqp.send_task_message(self.producer, task.name, message, retry=self.retry,
                                        retry_policy=self.retry_policy, **options)

    def plain(self, task: Task) -> bool:
        known = self._plain.get(task.name)
        if known is None:
            known = self._plain[task.name] = default_apply_async(task)
        return known

    def seconds_until(self, expires: Any) -> float:
        if isinstance(expires, datetime):
            return (maybe_make_aware(expires) - maybe_make_aware(self.app.now())).total_seconds()
        return expires
