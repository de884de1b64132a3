"""`python -m celery_schedule demo` run as a user runs it: a real process, worker and all."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LABELS = ("plain", "dedup", "missing task", "cancelled", "rescheduled")


def start_demo(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.Popen([sys.executable, "-m", "celery_schedule", "demo", *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def folder_of(output: str) -> Path:
    return Path(re.search(r"^celery_schedule demo in (\S+)$", output, re.M).group(1))


def worker_pid(output: str) -> int:
    return int(re.search(r"celery worker, pid (\d+)", output).group(1))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def scheduled_ids(output: str) -> dict[str, str]:
    return {label: re.search(rf"^  {label}\s.*\sid (\S+)$", output, re.M).group(1)
            for label in LABELS}


def summary_row(output: str, label: str) -> str:
    summary = output.split("\nsummary:\n", 1)[1]
    return re.search(rf"^  {label}\s.*$", summary, re.M).group(0)


@pytest.fixture
def kept():
    folders: list[Path] = []
    yield folders
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def test_demo_runs_each_call_as_expected_and_the_state_on_disk_agrees(kept):
    proc = start_demo("--keep")
    output, _ = proc.communicate(timeout=120)
    folder = folder_of(output)
    kept.append(folder)

    assert proc.returncode == 0, output
    assert "every call behaved as expected" in output
    assert "\r" not in output and "\033[" not in output
    assert not alive(worker_pid(output))

    ids = scheduled_ids(output)
    assert len(set(ids.values())) == len(LABELS)
    assert "same id=True, rows=1" in output
    assert "r.cancel() -> True" in output and "r.reschedule(5 s) -> True" in output
    runs = (folder / "runs.log").read_text().split()
    assert sorted(runs) == sorted([ids["plain"], ids["dedup"], ids["rescheduled"]])
    with sqlite3.connect(folder / "demo.sqlite3") as db:
        rows = db.execute("SELECT task_id, task_name, state, attempts, last_error "
                          "FROM celery_schedule_scheduledtask").fetchall()
    assert len(rows) == 1
    task_id, name, state, attempts, error = rows[0]
    assert (task_id, name, state, attempts) == (ids["missing task"], "demo.no_such_task",
                                                 "failed", 1)
    assert "UnknownTask" in error and "demo.no_such_task" in error

    assert "ran 1x -> 'Hello, Ada!'" in summary_row(output, "plain")
    assert "ran 1x -> 'invoice-42.pdf (Decimal 19.90)'" in summary_row(output, "dedup")
    assert "ran 1x -> 'Hello, Cleo!'" in summary_row(output, "rescheduled")
    assert "not run (cancelled" in summary_row(output, "cancelled")
    assert "failed: UnknownTask" in summary_row(output, "missing task")
    for label in LABELS:
        assert summary_row(output, label).endswith("yes")


def test_ctrl_c_stops_the_worker_and_removes_the_folder():
    proc = start_demo()
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("scheduled "):
            break
    output = "".join(lines)
    folder = folder_of(output)
    pid = worker_pid(output)
    assert folder.is_dir() and alive(pid)

    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)

    assert proc.returncode == 130, output + rest
    assert "interrupted" in rest
    assert not folder.exists()
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid)
