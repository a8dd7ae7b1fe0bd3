"""Run the inbox redelivery scenario with the Django inbox; prints the observations as JSON.

Usage: python django_inbox_main.py DATABASE_URL SCHEMA

A process of its own because Django's settings are configured once per process. The schema
(created by the caller) isolates the tables, ``django_migrations`` included.
"""

from __future__ import annotations

import json
import sys
from urllib.parse import urlsplit

import django
from django.conf import settings
from django.core.management import call_command
from django.db import connection, connections
from inbox_scenario import run_scenario  # the script's directory is on sys.path


def main(database_url: str, schema: str) -> None:
    url = urlsplit(database_url)
    settings.configure(
        INSTALLED_APPS=["courier.consumer.django"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": url.path.lstrip("/"),
                "USER": url.username or "",
                "PASSWORD": url.password or "",
                "HOST": url.hostname or "",
                "PORT": str(url.port or ""),
                "OPTIONS": {"options": f"-c search_path={schema}"},
            }
        },
        USE_TZ=True,
    )
    django.setup()
    call_command("migrate", "courier_consumer", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE deliveries (event_id text NOT NULL, handler text NOT NULL)")

    from courier.consumer.django.inbox import DjangoInbox

    inbox = DjangoInbox(consumer="service-a")

    def record(event_id: str, handler: str) -> None:
        with connection.cursor() as cursor:  # this thread's connection, inside the atomic()
            cursor.execute(
                "INSERT INTO deliveries (event_id, handler) VALUES (%s, %s)", [event_id, handler]
            )

    def stored(event_id: str) -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM deliveries WHERE event_id = %s", [event_id])
            return int(cursor.fetchone()[0])

    seen = run_scenario(inbox, record, stored)
    seen["processed"] = inbox.processed("e1", "EndpointA")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'courier_inbox'::regclass "
            "AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)"
        )
        seen["primary_key"] = [row[0] for row in cursor.fetchall()]
    connections.close_all()
    print(json.dumps(seen))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
