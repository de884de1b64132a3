"""The demo's Celery worker: a real `celery worker` process on the demo folder's broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .project import QUEUE, configure

READY = "ready."


def watch_parent(parent_pid: int) -> None:
    """Shut the worker down if the demo process that started it is gone."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="demo-parent-watch", daemon=True).start()


def run(folder: str, parent_pid: int) -> None:
    """Entry point of the child process (`python -m celery_schedule _demo-worker ...`)."""
    app = configure(Path(folder))
    watch_parent(parent_pid)
    app.worker_main(["worker", "-P", "solo", "-l", "info", "-Q", QUEUE, "-n", "demo@%h",
                     "--without-gossip", "--without-mingle", "--without-heartbeat"])


def start(folder: Path) -> tuple[subprocess.Popen, Path]:
    """Start the worker process in its own session; returns it and its log file."""
    import celery_schedule

    log = folder / "worker.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    root = str(Path(celery_schedule.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery_schedule", "_demo-worker", str(folder),
             str(os.getpid())],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )
    return proc, log


def wait_ready(proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    """Block until the worker logs that it is ready; RuntimeError with its log if it is not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if READY in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"the demo worker did not become ready (exit code {proc.poll()}):\n{tail}")


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """Warm shutdown of the worker's process group; killed if it does not end in time."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        pass
