"""`python -m celery_schedule demo`: a self-contained Django + Celery run with no server.

SQLite and kombu's filesystem transport live in a temporary folder; a real
Celery worker process consumes what the dispatcher loop publishes. This package
is also the demo's Django app (label ``demo``); importing it configures nothing.
"""
