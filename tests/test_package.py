"""Packaging: lazy public API, migrations in the wheel, no unexpected runtime dependencies."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_import_imports_no_models_and_needs_no_django_settings():
    proc = run_python(
        "import sys, celery_schedule\n"
        "assert 'celery_schedule.models' not in sys.modules\n"
        "assert 'django.db.models' not in sys.modules\n"
        "from celery_schedule import Scheduled\n"
        "from celery import Celery\n"
        "app = Celery('x', task_cls='celery_schedule:Scheduled')\n"
        "assert 'celery_schedule.models' not in sys.modules, 'task base imported models'\n"
        "print('ok', sorted(celery_schedule.__all__))\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout


def test_unknown_public_name_is_an_attribute_error():
    import celery_schedule

    with pytest.raises(AttributeError, match="nope"):
        celery_schedule.nope  # noqa: B018


def test_wheel_ships_the_migrations_and_declares_only_runtime_deps(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("celery_schedule-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata = zf.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "celery_schedule/migrations/0001_initial.py" in names
    assert "celery_schedule/management/commands/enqueue_due_tasks.py" in names
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines()
                if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert sorted(r.split(">")[0].split("=")[0].strip().lower() for r in requires) == [
        "celery", "django", "python-dateutil"]
