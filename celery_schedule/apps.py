"""Django app config: installs Signature.schedule when the app is ready."""

from django.apps import AppConfig


class CelerySchedule(AppConfig):
    name = "celery_schedule"
    verbose_name = "Scheduled Celery tasks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import canvas, checks  # noqa: F401

        canvas.install()
