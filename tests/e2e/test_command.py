"""manage.py enqueue_due_tasks as a real process: exit codes, summary line, signals."""

import signal
import subprocess
import sys

import pytest

from celery_schedule.models import ScheduledTask
from tests.e2e.conftest import ROOT, child_env
from tests.proj.tasks import punch_out


def run_command(*args, **env):
    return subprocess.run([sys.executable, "-m", "django", "enqueue_due_tasks", *args],
                          cwd=ROOT, env=child_env(**env), capture_output=True, text=True,
                          timeout=120)


@pytest.mark.e2e
def test_one_shot_dispatches_and_exits_0(transactional_db, broker):
    ids = sorted(punch_out.s(i).schedule(-1).id for i in range(3))
    proc = run_command("--batch-size", "2")
    assert proc.returncode == 0, proc.stderr
    assert "dispatched=3 failed=0 expired=0" in proc.stdout
    assert sorted(broker.ids()) == ids


@pytest.mark.e2e
def test_one_shot_respects_limit(transactional_db, broker):
    for i in range(5):
        punch_out.s(i).schedule(-1)
    proc = run_command("--limit", "2", "-v", "0")
    assert proc.returncode == 0 and proc.stdout == ""
    assert len(broker.ids()) == 2 and ScheduledTask.objects.count() == 3


@pytest.mark.e2e
def test_one_shot_exits_1_when_the_broker_is_unreachable(transactional_db):
    r = punch_out.s(1).schedule(-1)
    proc = run_command(CELERY_SCHEDULE_TEST_BROKER="redis://127.0.0.1:1/0")
    assert proc.returncode == 1
    assert "broker_error" in proc.stdout
    row = ScheduledTask.objects.get()
    assert (row.task_id, row.state, row.attempts) == (r.id, "pending", 0)


@pytest.mark.e2e
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_loop_exits_cleanly_on_signals(start_loop, sig):
    loop = start_loop("--interval", "30")
    loop.kill(sig)
    assert loop.popen.returncode == 0
    assert "dispatcher loop stopped" in loop.log()
