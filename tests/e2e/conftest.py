"""Real processes for end-to-end and fault tests: a Celery worker (with beat) and the loop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a child process that uses this test run's database and queues."""
    env = dict(os.environ)
    env.update(
        CELERY_SCHEDULE_IN_TEST_DB="1",
        DJANGO_SETTINGS_MODULE="tests.proj.settings",
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Proc:
    """A child process whose output goes to a log file under artifacts/."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]):
        ARTIFACTS.mkdir(exist_ok=True)
        self.name = name
        self.log_path = ARTIFACTS / f"{name}.log"
        self._log = open(self.log_path, "w")
        self.popen = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self._log,
                                      stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.popen.returncode}:\n{self.log()}")
            time.sleep(0.1)
        raise TimeoutError(f"{self.name}: {text!r} not seen in {timeout}s:\n{self.log()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            self.popen.wait(timeout=30)

    def stop(self) -> int:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        return self.popen.returncode


@pytest.fixture
def spawn(request):
    """Start child processes that are stopped at the end of the test."""
    procs: list[Proc] = []

    def start(name: str, argv: list[str], **env: str) -> Proc:
        proc = Proc(f"{request.node.name[:60]}-{name}", argv, child_env(**env))
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()


@pytest.fixture
def start_worker(spawn, transactional_db, celery_app):
    """Start a real `celery worker` (optionally with embedded beat) on this run's queue."""

    def start(*, beat: bool = False, name: str = "worker", queues: str | None = None,
              concurrency: int = 2, **env: str) -> Proc:
        queue = queues or celery_app.conf.task_default_queue
        argv = [sys.executable, "-m", "celery", "-A", "tests.proj", "worker", "-l", "info",
                "-c", str(concurrency), "-Q", queue, "-n", f"{name}-{os.getpid()}@%h",
                "--without-gossip", "--without-mingle", "--without-heartbeat"]
        if beat:
            argv += ["-B", "-s", str(ARTIFACTS / f"beat-{os.getpid()}-{name}")]
        proc = spawn(name, argv, **env)
        proc.wait_for("ready.", timeout=60)
        return proc

    return start


@pytest.fixture
def start_loop(spawn, transactional_db):
    """Start `manage.py enqueue_due_tasks --loop` as a real process."""

    def start(*args: str, name: str = "loop", **env: str) -> Proc:
        argv = [sys.executable, "-m", "django", "enqueue_due_tasks", "--loop", *args]
        proc = spawn(name, argv, **env)
        proc.wait_for("dispatcher loop started", timeout=60)
        return proc

    return start


@pytest.fixture
def db_vendor(transactional_db):
    return connection.vendor
