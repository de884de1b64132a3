"""pytest plugin of celery_schedule: the opt-in `scheduled_tasks` fixture.

Loaded in every pytest run once the package is installed, so it imports nothing
from Django or celery_schedule until a test asks for the fixture.
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def scheduled_tasks(db: Any) -> Any:
    """celery_schedule.testing helpers bound to the test database (needs pytest-django)."""
    from celery_schedule.testing import ScheduledTasks

    return ScheduledTasks()
