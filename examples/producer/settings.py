"""Django settings of the example producer service (the article's package service).

The database comes from ``COURIER_DATABASE_URL`` (``courier dev env`` prints it).
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlparse

_url = urlparse(
    os.environ.get("COURIER_DATABASE_URL", "postgresql://postgres@127.0.0.1:15432/courier")
)

SECRET_KEY = "example-producer-not-secret"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["courier.outbox.django", "examples.producer.shipping"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _url.path.lstrip("/"),
        "USER": unquote(_url.username or "postgres"),
        "PASSWORD": unquote(_url.password or ""),
        "HOST": _url.hostname or "127.0.0.1",
        "PORT": str(_url.port or 5432),
    }
}
COURIER_SERVICE_NAME = "package-service"
