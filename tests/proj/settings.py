"""Django settings of the test project; the database is chosen by CELERY_SCHEDULE_TEST_DB."""

import os
import tempfile

DB = os.environ.get("CELERY_SCHEDULE_TEST_DB", "sqlite")
# Separates concurrent test runs on one machine (test database names, queue names).
PREFIX = os.environ.get("CELERY_SCHEDULE_TEST_PREFIX", "cs")
SECRET_KEY = "tests-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.proj.urls"
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "celery_schedule",
    "tests.proj",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

_sqlite_file = os.path.join(tempfile.gettempdir(), f"{PREFIX}_celery_schedule_test.sqlite3")
DATABASES = {
    "sqlite": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _sqlite_file,
        "TEST": {"NAME": _sqlite_file},
        "OPTIONS": {"timeout": 20},
    },
    "postgres": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "test",
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": 5432,
        "TEST": {"NAME": f"test_{PREFIX}_celery_schedule"},
    },
    "mariadb": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": "test",
        "USER": "root",
        "HOST": "127.0.0.1",
        "PORT": 3306,
        "OPTIONS": {"charset": "utf8mb4"},
        "TEST": {
            "NAME": f"test_{PREFIX}_celery_schedule",
            "CHARSET": "utf8mb4",
        },
    },
}
_other_file = os.path.join(tempfile.gettempdir(), f"{PREFIX}_celery_schedule_other.sqlite3")
DATABASES = {
    "default": DATABASES[DB],
    # A second database for `using=` and router tests.
    "other": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _other_file,
        "TEST": {"NAME": _other_file},
    },
}
if os.environ.get("CELERY_SCHEDULE_IN_TEST_DB"):
    # A worker or dispatcher process started by a test uses the test database.
    DATABASES["default"]["NAME"] = DATABASES["default"]["TEST"]["NAME"]
if DB == "mariadb":
    import pymysql

    pymysql.install_as_MySQLdb()

CELERY_BROKER_URL = os.environ.get("CELERY_SCHEDULE_TEST_BROKER", "redis://127.0.0.1:6379/15")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_SCHEDULE_TEST_BACKEND", "redis://127.0.0.1:6379/14")
CELERY_TASK_DEFAULT_QUEUE = f"{PREFIX}-test"
CELERY_TIMEZONE = "Europe/Berlin"
CELERY_SCHEDULE_DISPATCHER = "loop"
# Drop-in mode for processes started by e2e tests (unset: off).
CELERY_SCHEDULE_ETA_THRESHOLD = os.environ.get("CELERY_SCHEDULE_TEST_ETA_THRESHOLD") or None
CELERY_BEAT_SCHEDULE = {
    "enqueue-due-tasks": {
        "task": "celery_schedule.enqueue_due_tasks",
        "schedule": float(os.environ.get("CELERY_SCHEDULE_TEST_BEAT_INTERVAL", "1.0")),
    },
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"celery_schedule": {"handlers": ["console"], "level": "INFO"}},
}
STATIC_URL = "/static/"
