"""Django settings for the framework-lab sample app (stacks/CONTRACT.md).

Secrets arrive as files mounted by compose, never in the image or the environment:
the SECRET_KEY at /run/secrets/django_secret_key, the database password at $DB_PASSWORD_FILE.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def read_secret(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ImproperlyConfigured(f"cannot read secret file {path}: {exc.strerror}") from None


SECRET_KEY = read_secret(os.environ.get("DJANGO_SECRET_KEY_FILE", "/run/secrets/django_secret_key"))
DEBUG = False
ALLOWED_HOSTS = ["*"]  # nginx is the only thing in front of the app

INSTALLED_APPS = ["bench"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "labsite.urls"
WSGI_APPLICATION = "labsite.wsgi.application"
# The URL prefix (/django): nginx passes the full path on. WSGI servers also say it as SCRIPT_NAME (the
# same value); ASGI servers leave root_path empty (uvicorn's --root-path is for a proxy that strips the
# prefix: it would prepend it once more), so Django takes it from here, strips it from the path and
# reverse() and {% url %} put it back.
FORCE_SCRIPT_NAME = os.environ.get("LAB_PREFIX") or None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": []},
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["DB_NAME"],
        "USER": os.environ["DB_USER"],
        "PASSWORD": read_secret(os.environ["DB_PASSWORD_FILE"]),
        "HOST": os.environ["DB_HOST"],
        "PORT": os.environ["DB_PORT"],
        "CONN_MAX_AGE": None,  # persistent: one connection per worker thread, kept open
        "CONN_HEALTH_CHECKS": True,  # re-check a reused connection at the start of a request
    },
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# With DEBUG off Django sends errors to nobody; write them to stderr (`lab logs django`).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django": {"handlers": ["console"], "level": "ERROR"}},
}
