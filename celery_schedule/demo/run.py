"""Run the demo: set up, start worker and dispatcher, show progress, summarize, clean up."""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TextIO

from . import worker
from .scenario import (
    CANCELLED,
    DUE,
    FAILED,
    RAN,
    SENT,
    WAITING,
    Item,
    read_runs,
    refresh,
    schedule_all,
)

LOOP_INTERVAL = 0.5
POLL = 0.1
GRACE = 20.0


class Output:
    """Event lines, plus a redrawn progress line when writing to a terminal.

    A closed stream (`| head`, a closed terminal) stops the output, never the cleanup.
    """

    def __init__(self, stream: TextIO, tty: bool) -> None:
        self.stream: TextIO | None = stream
        self.tty = tty
        self.bar = ""

    def write(self, text: str) -> None:
        if self.stream is None:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self.stream = None

    def line(self, text: str = "") -> None:
        clear = "\r\033[K" if self.tty and self.bar else ""
        self.write(clear + text + "\n" + (self.bar if clear else ""))

    def progress(self, text: str) -> None:
        if self.tty:
            self.bar = text
            self.write("\r\033[K" + text)

    def end_progress(self) -> None:
        if self.tty and self.bar:
            self.write("\r\033[K")
            self.bar = ""


def offset(when: datetime | None, start: datetime) -> str:
    return "" if when is None else f"+{(when - start).total_seconds():.1f}s"


def describe(item: Item) -> str:
    if item.status == RAN:
        return f"ran {item.runs}x -> {item.result}" if item.result else f"ran {item.runs}x"
    if item.status == FAILED:
        return f"failed: {item.error}"
    if item.status == SENT:
        return "sent to the broker"
    if item.status == CANCELLED:
        return "not run (cancelled before it was due)"
    return item.status


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def progress_bar(items: list[Item], counts: dict[str, int], start: datetime,
                 now: datetime) -> str:
    done = sum(i.settled for i in items)
    width = 20
    filled = width * done // len(items)
    waiting = [i.due_at for i in items if i.status == WAITING]
    due = sum(i.status == DUE for i in items)
    if due:
        nxt = f"{due} due now"
    elif waiting:
        nxt = f"next due in {max(0.0, (min(waiting) - now).total_seconds()):.1f}s"
    else:
        nxt = "nothing waiting"
    return (f"[{'#' * filled}{'.' * (width - filled)}] {done}/{len(items)} settled | {nxt} | "
            f"dispatched {counts['dispatched']}, failed {counts['failed']} | "
            f"{(now - start).total_seconds():.1f}s")


def summary(out: Output, items: list[Item], start: datetime) -> None:
    header = ("item", "call", "due", "expected", "outcome", "ok")
    rows = [(i.label, i.call, offset(i.due_at, start), i.expect, shorten(describe(i), 72),
             "yes" if i.ok else "NO") for i in items]
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [str(v).ljust(w) for v, w in zip(row, widths, strict=False)]
        out.line("  " + "  ".join([*cells, row[-1]]))


def dispatcher(app, counts: dict[str, int]) -> tuple[threading.Thread, threading.Event]:
    """The `enqueue_due_tasks --loop` logic in a thread of this process."""
    from django.db import connections

    from celery_schedule.loop import run_loop

    stop = threading.Event()

    def on_run(result) -> None:
        counts["runs"] += 1
        counts["dispatched"] += result.dispatched
        counts["failed"] += result.failed

    def target() -> None:
        try:
            run_loop(stop, app=app, interval=LOOP_INTERVAL, on_run=on_run)
        finally:
            connections.close_all()

    thread = threading.Thread(target=target, name="demo-dispatcher", daemon=True)
    thread.start()
    return thread, stop


def scenario(out: Output, folder: Path) -> int:
    """Everything between setup and cleanup; returns the exit code."""
    from django.core.management import call_command

    from celery_schedule.when import now_utc

    from .project import configure, runs_file

    out.line(f"celery_schedule demo in {folder}")
    app = configure(folder)
    call_command("migrate", verbosity=0, interactive=False)
    out.line(f"  database    SQLite {folder / 'demo.sqlite3'} (migrated)")
    out.line(f"  broker      kombu filesystem transport in {folder / 'broker'}")
    out.line(f"  results     Celery file:// result backend in {folder / 'results'}")
    began = time.monotonic()
    proc, log = worker.start(folder)
    try:
        worker.wait_ready(proc, log)
        out.line(f"  worker      celery worker, pid {proc.pid}, ready after "
                 f"{time.monotonic() - began:.1f}s (log: worker.log)")
        counts = {"runs": 0, "dispatched": 0, "failed": 0}
        thread, stop = dispatcher(app, counts)
        out.line(f"  dispatcher  enqueue_due_tasks loop in a thread (at most {LOOP_INTERVAL}s "
                 "between runs)")
        try:
            return watch(out, app, runs_file(), counts, now_utc)
        finally:
            stop.set()
            thread.join(timeout=10)
    except KeyboardInterrupt:
        out.end_progress()
        out.line("interrupted")
        raise
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        out.line("stopping the worker (warm shutdown) and the dispatcher...")
        stopped = time.monotonic()
        worker.stop(proc)
        out.line(f"  worker stopped after {time.monotonic() - stopped:.1f}s")


def watch(out: Output, app, runs_path: Path, counts: dict[str, int], clock) -> int:
    start = clock()
    items = schedule_all(start)
    out.line("")
    out.line(f"scheduled {len(items)} calls at {start:%H:%M:%S} UTC (t=0):")
    for item in items:
        out.line(f"  {item.label:<13} {item.call:<44} due {offset(item.due_at, start):>6}  "
                 f"id {item.task_id}")
        out.line(f"  {'':<13} {item.note}")
    out.line("")
    last_due = max(i.due_at for i in items).timestamp()
    deadline = last_due + GRACE
    while True:
        now = clock()
        for item in refresh(items, read_runs(runs_path), now, app):
            if item.status not in (WAITING, DUE):
                out.line(f"  {offset(now, start):>6}  {item.label:<13} {item.call}: "
                         f"{describe(item)}")
        out.progress(progress_bar(items, counts, start, now))
        settled = all(i.settled for i in items) and now.timestamp() > last_due + LOOP_INTERVAL
        if settled or now.timestamp() > deadline:
            break
        time.sleep(POLL)
    out.end_progress()
    out.line("")
    out.line("summary:")
    summary(out, items, start)
    ok = all(i.ok for i in items)
    out.line("")
    out.line(f"dispatcher: {counts['runs']} runs, {counts['dispatched']} dispatched, "
             f"{counts['failed']} failed")
    out.line("every call behaved as expected" if ok else "SOME CALLS DID NOT BEHAVE AS EXPECTED")
    return 0 if ok else 1


def main(keep: bool = False, stream: TextIO | None = None) -> int:
    """Run the demo; returns the exit code (0: everything behaved as expected, 130: Ctrl-C)."""
    stream = stream or sys.stdout
    out = Output(stream, stream.isatty())
    folder = Path(tempfile.mkdtemp(prefix="celery_schedule_demo-"))

    def terminate(signum, frame):
        raise KeyboardInterrupt

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, terminate)
    try:
        return scenario(out, folder)
    except KeyboardInterrupt:
        return 130
    except RuntimeError as exc:
        out.line(f"demo failed: {exc}")
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
        out.line(f"kept {folder}" if keep else f"removed {folder}")
