"""The ScheduledTask admin (admin.py) through Django's test client on the real test database."""

from __future__ import annotations

import html
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from celery_schedule.admin import humanize, relative_due
from celery_schedule.dispatch import dispatch_due
from celery_schedule.models import ScheduledTask
from celery_schedule.when import now_utc
from tests.proj.tasks import echo_types, plain_add, punch_out

UTC = timezone.utc
LIST = "admin:celery_schedule_scheduledtask_changelist"
pytestmark = pytest.mark.django_db

PUNCH = "tests.proj.tasks.punch_out"
ADD = "tests.proj.tasks.plain_add"


def make_failed(result, error="UnknownTask: no task registered as 'x'", attempts=2):
    ScheduledTask.objects.filter(task_id=result.id).update(
        state=ScheduledTask.FAILED, pending_key=None, attempts=attempts, last_error=error)
    return ScheduledTask.objects.get(task_id=result.id)


@pytest.fixture
def rows():
    """One row in each state: waiting (in 3 days), overdue (5 min ago), failed."""
    waiting = punch_out.s(1, reason="later").schedule(timedelta(days=3, minutes=1), key="shift:1")
    overdue = plain_add.s(2, 3).schedule(timedelta(minutes=-5, seconds=-20))
    failed = make_failed(punch_out.s(3).schedule(timedelta(hours=-1)))
    return {"waiting": waiting.id, "overdue": overdue.id, "failed": failed.task_id}


def listing(client, **params) -> str:
    response = client.get(reverse(LIST), params)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def act(client, action, *task_ids):
    pks = ScheduledTask.objects.filter(task_id__in=task_ids).values_list("pk", flat=True)
    response = client.post(reverse(LIST), {"action": action, "_selected_action": list(pks)},
                           follow=True)
    assert response.status_code == 200
    return [str(m) for m in response.context["messages"]]


def test_humanize_picks_the_largest_unit():
    assert humanize(3 * 86400 + 70) == "3 days"
    assert humanize(86400) == "1 day"
    assert humanize(-(5 * 60 + 20)) == "5 min"
    assert humanize(7200) == "2 h"
    assert humanize(42) == "42 s"
    assert humanize(0.3) == "0 s"


def test_relative_due_says_in_overdue_or_was_due():
    now = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
    row = ScheduledTask(due_at=now + timedelta(days=3, minutes=1), state=ScheduledTask.PENDING)
    assert relative_due(row, now) == "in 3 days"
    row.due_at = now - timedelta(minutes=5, seconds=20)
    assert relative_due(row, now) == "overdue 5 min"
    row.due_at = now
    assert relative_due(row, now) == "due now"
    row.state = ScheduledTask.FAILED
    row.due_at = now - timedelta(hours=2)
    assert relative_due(row, now) == "was due 2 h ago"


def test_list_shows_name_relative_due_state_attempts_error_and_key(admin_client, rows):
    page = listing(admin_client)
    for task_id in rows.values():
        assert task_id in page
    assert "in 3 days" in page
    assert "overdue 5 min" in page
    assert "was due 1 h ago" in page
    assert "UnknownTask: no task registered as 'x'" in page
    assert "shift:1" in page
    assert PUNCH in page and ADD in page
    assert page.index(rows["failed"]) < page.index(rows["overdue"]) < page.index(rows["waiting"])


@pytest.mark.parametrize("status, expected", [
    ("waiting", {"waiting"}), ("due", {"overdue"}), ("failed", {"failed"}),
])
def test_status_filter(admin_client, rows, status, expected):
    page = listing(admin_client, status=status)
    assert {name for name, task_id in rows.items() if task_id in page} == expected


def test_task_name_filter(admin_client, rows):
    page = listing(admin_client, task_name=ADD)
    assert {name for name, task_id in rows.items() if task_id in page} == {"overdue"}


@pytest.mark.parametrize("query, expected", [
    ("shift:1", {"waiting"}), ("plain_add", {"overdue"}), ("punch_out", {"waiting", "failed"}),
])
def test_search_by_name_and_key(admin_client, rows, query, expected):
    page = listing(admin_client, q=query)
    assert {name for name, task_id in rows.items() if task_id in page} == expected


def test_search_by_task_id(admin_client, rows):
    page = listing(admin_client, q=rows["failed"])
    assert {name for name, task_id in rows.items() if task_id in page} == {"failed"}


def test_detail_shows_decoded_args_kwargs_options_read_only(admin_client):
    reason = {"by": "admin", "at": datetime(2027, 5, 1, 9, 30, tzinfo=UTC)}
    r = echo_types.s(Decimal("19.90"), date(2027, 5, 1), reason=reason).schedule(
        timedelta(days=2), queue="special", priority=3, expires=600)
    row = ScheduledTask.objects.get(task_id=r.id)
    url = reverse("admin:celery_schedule_scheduledtask_change", args=[row.pk])
    page = html.unescape(admin_client.get(url).content.decode())

    assert "[Decimal('19.90'), datetime.date(2027, 5, 1)]" in page
    assert "'at': datetime.datetime(2027, 5, 1, 9, 30" in page
    assert "'by': 'admin'" in page
    assert "{'expires': 600.0, 'priority': 3, 'queue': 'special'}" in page
    assert f"{echo_types.name}(Decimal('19.90'), datetime.date(2027, 5, 1), reason=" in page
    assert 'name="_save"' not in page and 'name="_continue"' not in page
    assert 'name="task_name"' not in page

    response = admin_client.post(url, {"task_name": "evil.task"})
    row.refresh_from_db()
    assert row.task_name == echo_types.name
    assert response.status_code in (200, 302)


def test_rows_cannot_be_added_through_the_admin(admin_client):
    url = reverse("admin:celery_schedule_scheduledtask_add")
    assert admin_client.get(url).status_code == 403


def test_actions_offered_and_no_plain_delete(admin_client, rows):
    response = admin_client.get(reverse(LIST))
    choices = {value for value, _ in response.context["action_form"].fields["action"].choices}
    assert {"run_now", "retry_failed", "cancel"} <= choices
    assert "delete_selected" not in choices


def test_run_now_makes_rows_due_and_the_next_dispatch_sends_them(admin_client, rows, broker):
    before = now_utc()
    text = act(admin_client, "run_now", rows["waiting"], rows["failed"])
    assert "2 scheduled task(s) marked due now" in text[0]

    waiting = ScheduledTask.objects.get(task_id=rows["waiting"])
    failed = ScheduledTask.objects.get(task_id=rows["failed"])
    for row in (waiting, failed):
        assert row.state == ScheduledTask.PENDING
        assert before <= row.due_at <= now_utc()
    assert failed.attempts == 2
    assert waiting.pending_key == "shift:1"

    result = dispatch_due()
    assert result.dispatched == 3
    assert set(broker.ids()) == set(rows.values())
    assert not ScheduledTask.objects.exists()


def test_retry_failed_only_touches_failed_rows(admin_client, rows):
    waiting_due = ScheduledTask.objects.get(task_id=rows["waiting"]).due_at
    text = act(admin_client, "retry_failed", rows["waiting"], rows["failed"])
    assert "1 scheduled task(s) moved from failed to due now" in text[0]
    failed = ScheduledTask.objects.get(task_id=rows["failed"])
    assert failed.state == ScheduledTask.PENDING and failed.attempts == 2
    assert failed.due_at <= now_utc()
    assert ScheduledTask.objects.get(task_id=rows["waiting"]).due_at == waiting_due


def test_retry_refused_when_a_pending_row_holds_the_key(admin_client):
    old = make_failed(punch_out.s(1).schedule(60, key="report:7"))
    new = punch_out.s(2).schedule(120, key="report:7")
    text = act(admin_client, "retry_failed", old.task_id)
    assert "0 scheduled task(s) moved" in text[0]
    assert "another pending task already holds their key" in text[1] and old.task_id in text[1]
    assert ScheduledTask.objects.get(task_id=old.task_id).state == ScheduledTask.FAILED
    assert ScheduledTask.objects.get(task_id=new.id).state == ScheduledTask.PENDING


def test_cancel_deletes_only_the_selected_rows(admin_client, rows):
    text = act(admin_client, "cancel", rows["waiting"], rows["failed"])
    assert "2 scheduled task(s) cancelled" in text[0]
    assert list(ScheduledTask.objects.values_list("task_id", flat=True)) == [rows["overdue"]]


def test_view_only_staff_sees_rows_but_cannot_act(client, rows):
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_scheduledtask"))
    client.force_login(user)
    page = listing(client)
    assert rows["waiting"] in page
    due_before = ScheduledTask.objects.get(task_id=rows["waiting"]).due_at

    pk = ScheduledTask.objects.get(task_id=rows["waiting"]).pk
    client.post(reverse(LIST), {"action": "run_now", "_selected_action": [pk]})
    client.post(reverse(LIST), {"action": "cancel", "_selected_action": [pk]})

    assert ScheduledTask.objects.get(task_id=rows["waiting"]).due_at == due_before
