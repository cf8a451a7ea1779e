"""Settings: the database comes from DATABASE_URL (parsed with urllib, no extra dependency)."""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, unquote, urlsplit


def database_from_url(url: str) -> dict[str, object]:
    """DATABASES["default"] for a postgresql:// URL."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "HOST": query.pop("host", parts.hostname or ""),
        "PORT": str(parts.port or ""),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "OPTIONS": query,
    }


SECRET_KEY = "readyctl-test-fixture-not-a-secret"
DEBUG = False
ALLOWED_HOSTS: list[str] = []
INSTALLED_APPS = ["notes"]
DATABASES = {"default": database_from_url(os.environ["DATABASE_URL"])}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
