"""The pytest plugin, installed from this checkout like a user installs it, in users' projects.

The package is built with pip into a temporary directory; small user projects then
run pytest in a subprocess with only that copy importable, so the plugin is found
through the `pytest11` entry point of pyproject.toml, not through this repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A directory where the package is installed (with its entry points) by pip."""
    base = tmp_path_factory.mktemp("install")
    src = base / "src"
    shutil.copytree(ROOT / "celery_schedule", src / "celery_schedule",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "setup.cfg", "README.md"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, src / name)
    target = base / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--target", str(target), str(src)],
        check=True, capture_output=True, text=True,
    )
    return target


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def run_pytest(project: Path, site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "CELERY_", "PYTEST_"))}
    env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=project, env=env, capture_output=True, text=True, timeout=300,
    )


USER_PROJECT = {
    "pytest.ini": """
        [pytest]
        DJANGO_SETTINGS_MODULE = userproj.settings
        pythonpath = .
    """,
    "userproj/__init__.py": """
        from .celery import app as celery_app
    """,
    "userproj/celery.py": """
        import os
        from celery import Celery

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "userproj.settings")
        app = Celery("userproj")
        app.config_from_object("django.conf:settings", namespace="CELERY")
        app.autodiscover_tasks()
    """,
    "userproj/settings.py": """
        SECRET_KEY = "x"
        USE_TZ = True
        INSTALLED_APPS = ["django.contrib.contenttypes", "celery_schedule", "shop"]
        DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}
        CELERY_BROKER_URL = "memory://"
        DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
    """,
    "shop/__init__.py": "",
    "shop/tasks.py": """
        from celery import shared_task
        from celery_schedule import Scheduled

        SENT = []

        @shared_task(base=Scheduled, bind=True)
        def remind(self, order_id, text=""):
            SENT.append((self.request.id, order_id, text))
            return order_id
    """,
    "shop/orders.py": """
        from datetime import timedelta
        from .tasks import remind

        def place_order(order_id):
            return remind.s(order_id, text="come back").schedule(timedelta(days=30))
    """,
    "tests/test_orders.py": """
        from datetime import datetime, timedelta, timezone

        import celery_schedule
        from shop.orders import place_order
        from shop.tasks import SENT, remind

        def test_plugin_comes_from_the_entry_point(request):
            plugin = request.config.pluginmanager.get_plugin("celery_schedule")
            assert plugin.__name__ == "celery_schedule.pytest_plugin"
            assert "/site/celery_schedule/" in celery_schedule.__file__

        def test_reminder_after_thirty_days(scheduled_tasks, time_machine):
            time_machine.move_to(datetime(2030, 1, 1, tzinfo=timezone.utc), tick=False)
            result = place_order(42)
            [call] = scheduled_tasks.scheduled(remind)
            assert (call.args, call.kwargs) == ([42], {"text": "come back"})
            assert call.due_at == datetime(2030, 1, 31, tzinfo=timezone.utc)
            assert len(scheduled_tasks.advance(timedelta(days=29), clock=time_machine)) == 0
            assert SENT == []
            run = scheduled_tasks.advance(timedelta(days=1), clock=time_machine)
            assert run.ids == [result.id]
            assert run[0].successful() and run[0].result == 42
            assert SENT == [(result.id, 42, "come back")]
            assert scheduled_tasks.scheduled() == []
    """,
}


def test_fixture_from_the_entry_point_in_a_django_project(site, tmp_path):
    project = write(tmp_path, USER_PROJECT)
    proc = run_pytest(project, site)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout


def test_plugin_loads_without_django_and_imports_nothing(site, tmp_path):
    project = write(tmp_path, {
        "test_plain.py": """
            import sys

            def test_plain(request):
                assert request.config.pluginmanager.get_plugin("celery_schedule") is not None
                loaded = [m for m in sys.modules if m.startswith(("celery_schedule.", "django"))]
                assert loaded == ["celery_schedule.pytest_plugin"]
        """,
    })
    proc = run_pytest(project, site, "-p", "no:django")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


def test_plugin_is_harmless_with_pytest_django_and_no_settings(site, tmp_path):
    project = write(tmp_path, {
        "test_plain.py": """
            import sys

            def test_plain():
                assert "celery_schedule.testing" not in sys.modules
                assert "celery_schedule.models" not in sys.modules
        """,
    })
    proc = run_pytest(project, site)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
