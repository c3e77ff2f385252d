"""ASGI entry point: uvicorn, gunicorn's uvicorn workers and Granian's ASGI interface serve
labsite.asgi:application. The views are the same; Django runs them (all sync) in a thread."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labsite.settings_asgi")

application = get_asgi_application()
