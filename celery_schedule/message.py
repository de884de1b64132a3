"""What a row stores for its message: args, kwargs and options as Celery's json would send them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from kombu.utils.json import dumps as kombu_dumps
from kombu.utils.json import loads as kombu_loads

from . import when as _when

TIME_OPTIONS = ("eta", "countdown")
# Options that only make sense in the calling process, never stored.
LOCAL_OPTIONS = ("producer", "connection", "publisher", "add_to_parent", "result_cls", "task_type")


def encode(value: Any, what: str) -> Any:
    """`value` as kombu's json encodes it (plain JSON data), or TypeError/ValueError naming it."""
    if type(value) in (list, dict) and not value:
        return type(value)()
    try:
        return json.loads(kombu_dumps(value))
    except (TypeError, ValueError, OverflowError) as exc:
        raise type(exc)(f"{what} {value!r} cannot be sent with Celery's json serializer: {exc}") \
            from None


def decode(value: Any) -> Any:
    """What the task receives for a stored value (datetime, Decimal, UUID... restored)."""
    return kombu_loads(json.dumps(value))


def encode_args(args: Any, kwargs: Any) -> tuple[list, dict]:
    """Validated, json-encoded args and kwargs of a task call."""
    if args is None:
        args = ()
    if kwargs is None:
        kwargs = {}
    if isinstance(args, (str, bytes, Mapping)) or not hasattr(args, "__iter__"):
        raise TypeError(f"args must be a list or tuple, got {args!r}")
    if not isinstance(kwargs, Mapping):
        raise TypeError(f"kwargs must be a dict, got {kwargs!r}")
    for name in kwargs:
        if not isinstance(name, str):
            raise TypeError(f"kwargs keys must be strings, got {name!r}")
    return encode(list(args), "args"), encode(dict(kwargs), "kwargs")


def encode_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options for apply_async at dispatch, json-encoded.

    `expires` given as seconds or timedelta is kept relative (seconds counted from the
    due time, so it moves when the row is rescheduled); a datetime or ISO string is
    stored as an absolute UTC ISO string.
    """
    stored = {k: v for k, v in options.items() if v is not None and k not in LOCAL_OPTIONS}
    for name in TIME_OPTIONS:
        if name in stored:
            raise ValueError(f"{name}={stored[name]!r} belongs in when/eta/countdown, not options")
    if "expires" in stored:
        stored["expires"] = encode_expires(stored["expires"])
    return encode(stored, "options")


def encode_expires(expires: Any) -> float | str:
    if isinstance(expires, datetime):
        return _when.to_utc(expires).isoformat()
    if isinstance(expires, str):
        return _when.parse_iso(expires).isoformat()
    try:
        return _when.seconds(expires)
    except TypeError:
        raise TypeError(
            f"expires must be seconds, a timedelta, a datetime or an ISO string, got {expires!r}"
        ) from None


def expires_at(options: Mapping[str, Any], due_at: datetime) -> datetime | None:
    """The absolute expiry time of a stored row, or None."""
    expires = options.get("expires")
    if expires is None:
        return None
    if isinstance(expires, str):
        return _when.parse_iso(expires)
    return due_at + timedelta(seconds=expires)
