"""The ScheduledTask admin in a real headless Chromium (Debian's), against a live server.

Needs `chromium` (apt) and the `playwright` Python package; never downloads a browser.
Without them the test is skipped locally and fails under CI=true.
"""

from __future__ import annotations

import os
import shutil
from datetime import timedelta

import pytest
from django.db import connections

from celery_schedule.dispatch import dispatch_due
from celery_schedule.models import ScheduledTask
from tests.e2e.conftest import ARTIFACTS
from tests.proj.tasks import plain_add, punch_out

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("CELERY_SCHEDULE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
LIST = "/admin/celery_schedule/scheduledtask/"


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser test cannot run under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def page(monkeypatch):
    """A Chromium page; Playwright's event loop must not make Django refuse the ORM.

    Under Playwright the test runs in another context, so it gets its own database
    connection; it is closed here, or the test database could not be dropped.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        unavailable(f"playwright is not installed: {exc}")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) and \
            not shutil.which(CHROMIUM):
        unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                     headless=True)
        try:
            yield browser.new_page(viewport={"width": 1500, "height": 720})
        finally:
            browser.close()
            connections.close_all()


def row_of(page, task_id: str):
    return page.locator("#result_list tbody tr", has_text=task_id)


def test_admin_run_now_in_a_real_browser(page, live_server, admin_user, broker):
    soon = punch_out.s(7, reason="end of shift").schedule(timedelta(days=3, minutes=1),
                                                          key="shift:7")
    later = plain_add.s(2, 3).schedule(timedelta(days=30))
    failed = punch_out.s(8).schedule(timedelta(hours=-2))
    ScheduledTask.objects.filter(task_id=failed.id).update(
        state=ScheduledTask.FAILED, pending_key=None, attempts=1,
        last_error="UnknownTask: no task registered as 'tests.proj.tasks.gone'")

    page.goto(f"{live_server.url}/admin/login/?next={LIST}")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")
    page.wait_for_selector("#result_list")

    for result in (soon, later, failed):
        assert row_of(page, result.id).count() == 1
    assert "in 3 days" in row_of(page, soon.id).inner_text()
    assert "shift:7" in row_of(page, soon.id).inner_text()
    assert "UnknownTask" in row_of(page, failed.id).inner_text()

    row_of(page, soon.id).locator("input[name=_selected_action]").check()
    page.select_option("select[name=action]", "run_now")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist")
    assert "1 scheduled task(s) marked due now" in page.inner_text(".messagelist")
    assert "due now" in row_of(page, soon.id).inner_text() or \
        "overdue" in row_of(page, soon.id).inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-run-now.png"), full_page=True)

    result = dispatch_due()
    assert result.dispatched == 1
    assert broker.ids() == [soon.id]

    page.goto(f"{live_server.url}{LIST}")
    page.wait_for_selector("#result_list")
    assert row_of(page, soon.id).count() == 0
    assert row_of(page, later.id).count() == 1
    assert row_of(page, failed.id).count() == 1
    page.screenshot(path=str(ARTIFACTS / "admin.png"), full_page=True)

