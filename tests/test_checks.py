"""Django system checks: no Celery app, serializer not json, nothing that dispatches."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from celery import Celery, _state
from celery.schedules import crontab
from django.core.checks import run_checks
from django.test import override_settings

from celery_schedule.checks import TAG, find_app, is_fallback
from tests.e2e.conftest import ROOT

ENQUEUE = "celery_schedule.enqueue_due_tasks"


def ids() -> list[str]:
    return [message.id for message in run_checks(tags=[TAG])]


@pytest.fixture
def make_current():
    """Make a real, configured Celery app the current one for the test, then restore."""
    before = _state._tls.current_app

    def make(**config) -> Celery:
        app = Celery("other", set_as_current=False)
        app.config_from_object(config)
        app.set_current()
        return app

    yield make
    _state._set_current_app(before)


def test_test_project_passes():
    assert ids() == []


def test_project_app_is_found():
    app = find_app()
    assert app is not None and app is _state.get_current_app()
    assert not is_fallback(app)


@override_settings(CELERY_SCHEDULE_DISPATCHER=None)
def test_beat_schedule_entry_is_enough():
    assert ENQUEUE in [entry["task"] for entry in find_app().conf.beat_schedule.values()]
    assert ids() == []


@override_settings(CELERY_SCHEDULE_DISPATCHER=None)
def test_nothing_dispatches_warns(make_current):
    make_current(beat_schedule={"cleanup": {"task": "proj.cleanup", "schedule": 60.0}})
    messages = run_checks(tags=[TAG])
    assert [m.id for m in messages] == ["celery_schedule.W002"]
    assert ENQUEUE in messages[0].msg and "CELERY_SCHEDULE_DISPATCHER" in messages[0].msg


@override_settings(CELERY_SCHEDULE_DISPATCHER=None)
def test_no_beat_schedule_at_all_warns(make_current):
    make_current()
    assert ids() == ["celery_schedule.W002"]


@override_settings(CELERY_SCHEDULE_DISPATCHER=None)
def test_beat_entry_under_any_name_and_schedule_counts(make_current):
    make_current(beat_schedule={
        "cleanup": {"task": "proj.cleanup", "schedule": 60.0},
        "dispatch": {"task": ENQUEUE, "schedule": crontab(minute="*")},
    })
    assert ids() == []


@pytest.mark.parametrize("dispatcher", ["cron", "loop", "beat"])
def test_dispatcher_setting_says_it_runs_elsewhere(make_current, dispatcher):
    make_current()
    with override_settings(CELERY_SCHEDULE_DISPATCHER=dispatcher):
        assert ids() == []


@pytest.mark.parametrize("dispatcher", ["celery", "", "Loop", 1])
def test_bad_dispatcher_setting_is_an_error_naming_it(make_current, dispatcher):
    make_current(beat_schedule={"d": {"task": ENQUEUE, "schedule": 5.0}})
    with override_settings(CELERY_SCHEDULE_DISPATCHER=dispatcher):
        messages = run_checks(tags=[TAG])
    assert [m.id for m in messages] == ["celery_schedule.E002"]
    assert repr(dispatcher) in messages[0].msg
    assert messages[0].is_serious()


def test_serializer_not_json_warns(make_current):
    make_current(task_serializer="pickle", accept_content=["pickle", "json"])
    messages = run_checks(tags=[TAG])
    assert [m.id for m in messages] == ["celery_schedule.W001"]
    assert "'pickle'" in messages[0].msg
    assert not messages[0].is_serious()


def test_json_serializer_is_fine(make_current):
    make_current(task_serializer="json")
    assert ids() == []


def test_fallback_app_is_recognised():
    assert is_fallback(Celery("default", fixups=[], set_as_current=False))
    assert not is_fallback(Celery("default", set_as_current=False))
    assert not is_fallback(Celery("proj", fixups=[], set_as_current=False))


SCRIPT = """
import json, django
from django.conf import settings
settings.configure(INSTALLED_APPS=["celery_schedule"], DATABASES={}, USE_TZ=True)
if MAKE_APP:
    from celery import Celery
    app = Celery("proj")
django.setup()
from celery import current_app
from django.core.checks import run_checks
current_app.tasks
print(json.dumps([m.id for m in run_checks(tags=["celery_schedule"])]))
"""


def check_ids_in_fresh_process(make_app: bool) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, "-c", f"MAKE_APP = {make_app}\n{SCRIPT}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_no_celery_app_is_an_error():
    """A project that never creates its Celery app: tasks would go to Celery's fallback app."""
    assert check_ids_in_fresh_process(make_app=False) == ["celery_schedule.E001"]


def test_a_created_app_is_found_and_then_needs_a_dispatcher():
    assert check_ids_in_fresh_process(make_app=True) == ["celery_schedule.W002"]
