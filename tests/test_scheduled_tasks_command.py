"""manage.py scheduled_tasks: stats, --json, list/cancel/retry rows, the --check health check."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from celery_schedule.models import ScheduledTask
from celery_schedule.when import now_utc
from tests.e2e.conftest import ROOT, child_env

PUNCH = "tests.proj.tasks.punch_out"
ADD = "tests.proj.tasks.plain_add"


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("scheduled_tasks", *args, stdout=out)
    return out.getvalue()


def exit_code(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("scheduled_tasks", *args, stdout=out)
    except SystemExit as exc:
        return exc.code, out.getvalue()
    return 0, out.getvalue()


def add_row(task_name, seconds_from_now, *args, key=None, failed=False):
    row = ScheduledTask.objects.schedule(task_name, now_utc() + timedelta(seconds=seconds_from_now),
                                         *args)
    update = {}
    if key is not None:
        update.update(key=key, pending_key=None if failed else key)
    if failed:
        update.update(state=ScheduledTask.FAILED, attempts=3, last_error="UnknownTask: gone\nmore")
    if update:
        ScheduledTask.objects.filter(pk=row.pk).update(**update)
    row.refresh_from_db()
    return row


@pytest.fixture
def rows(db):
    return {
        "late": add_row(PUNCH, -120, 1),
        "soon": add_row(PUNCH, 3600, 2, key="shift:2"),
        "add": add_row(ADD, -1, 1, 2),
        "failed": add_row(ADD, -600, 5, 6, failed=True),
        "failed_keyed": add_row(PUNCH, -600, 7, key="shift:7", failed=True),
    }


def ids(output: str) -> set[str]:
    return {line.split()[0] for line in output.splitlines() if "  " in line}


def test_stats_text(rows):
    out = run()
    assert "pending 3  due now 2  failed 2" in out
    assert "oldest due row waiting 12" in out
    assert PUNCH in out and ADD in out


def test_stats_json(rows):
    data = json.loads(run("--json"))
    assert (data["pending"], data["due"], data["failed"]) == (3, 2, 2)
    assert 120 <= data["lag"] < 720
    assert data["next_due_at"] == rows["soon"].due_at.isoformat()
    assert data["tasks"][PUNCH]["pending"] == 2
    assert data["tasks"][ADD]["failed"] == 1


def test_list_filters(rows):
    assert ids(run("--list")) == {row.task_id for row in rows.values()}
    assert ids(run("--list", "--task", ADD)) == {rows["add"].task_id, rows["failed"].task_id}
    assert ids(run("--key", "shift:2")) == {rows["soon"].task_id}
    assert ids(run("--state", "due")) == {rows["late"].task_id, rows["add"].task_id}
    assert ids(run("--state", "pending", "--task", PUNCH)) == {rows["late"].task_id,
                                                               rows["soon"].task_id}
    assert ids(run("--state", "failed")) == {rows["failed"].task_id, rows["failed_keyed"].task_id}
    assert ids(run(rows["add"].task_id, rows["soon"].task_id)) == {rows["add"].task_id,
                                                                   rows["soon"].task_id}
    out = run("--state", "failed", "--task", ADD)
    assert "attempts=3" in out and "error=UnknownTask: gone" in out and "more" not in out


def test_list_says_when_the_limit_cut_it(rows):
    out = run("--list", "--limit", "2")
    assert len(ids(out)) == 2
    assert out.splitlines()[-1] == "2 row(s) of 5 (--limit 2)"
    assert run("--list", "--limit", "5").splitlines()[-1] == "5 row(s) of 5 (--limit 5)"
    assert run("--list", "--limit", "6").splitlines()[-1] == "5 row(s)"


def test_list_json_and_limit(rows):
    data = json.loads(run("--list", "--json", "--limit", "2"))
    assert [row["task_id"] for row in data] == [rows["failed"].task_id,
                                                rows["failed_keyed"].task_id]
    assert data[0]["due_at"] == rows["failed"].due_at.isoformat()
    assert data[1]["key"] == "shift:7"


def test_cancel_by_id_task_and_key(rows):
    assert "cancelled 1 row(s)" in run("--cancel", rows["late"].task_id)
    assert not ScheduledTask.objects.filter(task_id=rows["late"].task_id).exists()
    assert json.loads(run("--cancel", "--task", ADD, "--json")) == {"cancelled": 2}
    assert "cancelled 1 row(s)" in run("--cancel", "--key", "shift:2")
    assert list(ScheduledTask.objects.values_list("task_id", flat=True)) == [
        rows["failed_keyed"].task_id
    ]


def test_cancel_needs_a_selection(rows):
    with pytest.raises(CommandError, match="which rows"):
        run("--cancel")
    assert ScheduledTask.objects.count() == 5


def test_retry_makes_failed_rows_due_now(rows):
    before = now_utc()
    assert "retried 2 row(s)" in run("--retry", "--state", "failed")
    for name in ("failed", "failed_keyed"):
        row = ScheduledTask.objects.get(task_id=rows[name].task_id)
        assert row.state == ScheduledTask.PENDING
        assert row.attempts == 3
        assert row.due_at >= before
    assert ScheduledTask.objects.get(task_id=rows["failed_keyed"].task_id).pending_key == "shift:7"
    assert ScheduledTask.objects.due().count() == 4


def test_retry_leaves_pending_rows_alone(rows):
    assert "retried 0 row(s)" in run("--retry", rows["soon"].task_id)
    assert ScheduledTask.objects.get(task_id=rows["soon"].task_id).due_at == rows["soon"].due_at


def test_retry_keeps_a_row_failed_when_its_key_is_pending_again(rows):
    newer = add_row(PUNCH, 60, 7, key="shift:7")
    data = json.loads(run("--retry", "--key", "shift:7", "--json"))
    assert data == {"retried": 0, "key_clashes": [rows["failed_keyed"].task_id]}
    assert ScheduledTask.objects.get(task_id=rows["failed_keyed"].task_id).state == "failed"
    assert ScheduledTask.objects.get(pending_key="shift:7").task_id == newer.task_id


def test_check_ok_and_failing(rows):
    code, out = exit_code("--check", "--max-lag", "3600")
    assert code == 0 and out.startswith("OK 2 due")
    code, out = exit_code("--check", "--max-lag", "60")
    assert code == 1
    assert out.startswith("FAIL 2 due row(s), oldest waiting 12")


def test_check_max_failed(rows):
    code, out = exit_code("--check", "--max-lag", "3600", "--max-failed", "1")
    assert code == 1 and "2 failed row(s) > 1" in out
    assert exit_code("--check", "--max-lag", "3600", "--max-failed", "2")[0] == 0


def test_check_json(rows):
    code, out = exit_code("--check", "--max-lag", "10", "--json")
    data = json.loads(out)
    assert code == 1 and data["status"] == "FAIL" and data["due"] == 2
    assert len(data["problems"]) == 1


def test_check_empty_table_is_ok(db):
    assert exit_code("--check", "--max-lag", "0") == (0, "OK 0 due, lag 0.0s <= 0s, 0 failed\n")


def test_check_ignores_rows_not_yet_due_and_failed_rows(db):
    add_row(PUNCH, 30, 1)
    add_row(PUNCH, -3600, 2, failed=True)
    assert exit_code("--check", "--max-lag", "5")[0] == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--check"], "--check needs --max-lag"),
        (["--check", "--max-lag", "-1"], "got -1.0"),
        (["--check", "--max-lag", "nan"], "got nan"),
        (["--check", "--max-lag", "5", "--max-failed", "-2"], "got -2"),
        (["--max-lag", "5"], "go with --check"),
        (["--list", "--limit", "0"], "got 0"),
    ],
)
def test_bad_flags_are_refused(db, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_bad_state_is_refused(db):
    with pytest.raises(CommandError, match="invalid choice: 'done'"):
        run("--state", "done")


def test_check_exit_code_of_a_real_process(transactional_db):
    """What Kubernetes or cron sees: the exit status of `manage.py scheduled_tasks --check`."""
    add_row(PUNCH, -300, 1)
    argv = [sys.executable, "-m", "django", "scheduled_tasks", "--check"]
    failing = subprocess.run(argv + ["--max-lag", "60"], cwd=ROOT, env=child_env(),
                             capture_output=True, text=True, timeout=120)
    assert failing.returncode == 1, failing.stderr
    assert failing.stdout.startswith("FAIL 1 due row(s), oldest waiting 30")
    passing = subprocess.run(argv + ["--max-lag", "3600"], cwd=ROOT, env=child_env(),
                             capture_output=True, text=True, timeout=120)
    assert passing.returncode == 0, passing.stderr
    assert passing.stdout.startswith("OK 1 due")


def test_check_exits_2_when_the_database_cannot_be_queried():
    env = child_env(CELERY_SCHEDULE_TEST_DB="postgres", CELERY_SCHEDULE_TEST_PREFIX="opsnodb")
    done = subprocess.run([sys.executable, "-m", "django", "scheduled_tasks", "--check",
                           "--max-lag", "60"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stdout.startswith("FAIL database error:")
    assert "test_opsnodb_celery_schedule" in done.stdout
