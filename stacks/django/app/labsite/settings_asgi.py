"""The settings under ASGI (labsite/asgi.py): the WSGI ones, but the database connections are pooled.

Django's docs: "When using ASGI, persistent connections should be disabled. Instead, use your database
backend's built-in connection pooling", which for PostgreSQL is psycopg's pool (psycopg[pool]), one per
worker process, opened on first use. Each request takes a connection from it and gives it back, checked
(CONN_HEALTH_CHECKS) before it is handed out; `timeout` bounds the wait for one, so /health answers 503
within 2 s while the database is down.
"""

from .settings import *  # noqa: F403 (Django's way to derive settings)
from .settings import DATABASES

ASGI_APPLICATION = "labsite.asgi.application"

DATABASES["default"] |= {
    "CONN_MAX_AGE": 0,  # the pool keeps the connections; Django refuses pooling with persistent ones
    "OPTIONS": {"pool": {"min_size": 1, "max_size": 4, "timeout": 2}},
}
