"""Tasks that are not autodiscovered: found only by importing their dotted name."""

from tests.proj.celery import app
from tests.proj.tasks import record


@app.task(bind=True, name="tests.proj.lazy_tasks.lazy")
def lazy(self, x):
    record(self, x)
    return x
