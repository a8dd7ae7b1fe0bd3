"""Django: ``build_event(...).save()`` inside ``@atomic`` on the dev stack's Postgres, with the
relay shipping to Kafka. A rolled-back block leaves no business row, no outbox row and no
record; a committed one gives exactly one record with every contract-2 header right.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from io import StringIO
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry.sdk.trace import TracerProvider
from packages.v1.events_pb2 import PackageDelivered
from packages.v1.packages_pb2 import Package

from courier import build_event
from courier.events import format_time
from courier.outbox.builder import OutboxTransactionError
from courier.relay.testing import RelayThread, read_topic

pytestmark = pytest.mark.integration


@dataclass
class DjangoWorld:
    parcel: Any  # the business model class
    outbox_table: str
    relay: RelayThread


class Boom(Exception):
    pass


def _configure(database_url: str, outbox_table: str) -> None:
    from django.conf import settings

    if settings.configured:
        pytest.skip("Django was configured by another test module in this process")
    url = urlsplit(database_url)
    settings.configure(
        INSTALLED_APPS=["courier.outbox.django"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": url.path.lstrip("/"),
                "USER": unquote(url.username or "postgres"),
                "PASSWORD": unquote(url.password or ""),
                "HOST": url.hostname,
                "PORT": str(url.port or 5432),
            }
        },
        USE_TZ=True,
        TIME_ZONE="UTC",
        COURIER_OUTBOX_TABLE=outbox_table,
        COURIER_SERVICE_NAME="parcel-service",
    )
    import django

    django.setup()


@pytest.fixture(scope="module")
def world(database_url: str, bootstrap_servers: str) -> Iterator[DjangoWorld]:
    suffix = secrets.token_hex(3)
    _configure(database_url, f"dj_outbox_{suffix}")
    from django.db import connection, models

    from courier.outbox.django.models import OutboxEvent

    class Parcel(models.Model):  # type: ignore[misc]
        status = models.TextField()

        class Meta:
            app_label = "courier_tests"
            db_table = f"dj_parcel_{suffix}"

    table = OutboxEvent._meta.db_table
    with connection.schema_editor() as editor:
        editor.create_model(OutboxEvent)
        editor.create_model(Parcel)
    relay = RelayThread(database_url, bootstrap_servers, table=table, slot=f"dj_{suffix}")
    relay.start()
    try:
        yield DjangoWorld(parcel=Parcel, outbox_table=table, relay=relay)
    finally:
        relay.stop()
        with connection.schema_editor() as editor:
            editor.delete_model(Parcel)
            editor.delete_model(OutboxEvent)
        connection.close()


def test_the_migration_matches_the_model_and_the_contract_types(world: DjangoWorld) -> None:
    from django.core.management import call_command

    call_command("makemigrations", "courier_outbox", "--check", "--dry-run", verbosity=0)
    out = StringIO()
    call_command("sqlmigrate", "courier_outbox", "0001", stdout=out)
    call_command("sqlmigrate", "courier_outbox", "0002", stdout=out)
    sql = out.getvalue()
    for column_type in (
        '"id" uuid',
        '"payload" bytea',
        '"headers" jsonb',
        '"created_at" timestamp with time zone',
        '"key" text NULL',
        "\"specversion\" text DEFAULT '1.0' NOT NULL",
    ):
        assert column_type in sql


def test_atomic_rollback_then_commit(
    world: DjangoWorld, bootstrap_servers: str, unique: Any
) -> None:
    from django.db import connection, transaction

    topic = unique("dj.parcels")
    parcel_model = world.parcel

    @transaction.atomic
    def deliver(fail: bool) -> Any:
        parcel = parcel_model.objects.create(status="delivered")
        envelope = build_event(
            PackageDelivered(package=Package(id=str(parcel.pk))), topic=topic
        ).save()
        if fail:
            raise Boom()
        return envelope

    with pytest.raises(Boom):
        deliver(fail=True)
    assert parcel_model.objects.count() == 0
    with connection.cursor() as cur:
        cur.execute(f'SELECT count(*) FROM "{world.outbox_table}" WHERE topic = %s', [topic])
        assert cur.fetchone()[0] == 0

    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("deliver") as span:
        envelope = deliver(fail=False)
    assert parcel_model.objects.count() == 1

    # The committed event is later in the WAL than the rolled-back one would have been:
    # once it arrived, anything from the rolled-back block would have arrived too.
    records = read_topic(bootstrap_servers, topic, count=1, timeout=30, settle=1.0)
    assert len(records) == 1
    record = records[0]
    assert record.value == envelope.payload
    assert envelope.key is not None  # from (courier.v1.key_field) = "package.id"
    assert record.key == envelope.key.encode()
    context = span.get_span_context()
    assert dict(record.headers) == {
        "ce_specversion": b"1.0",
        "ce_id": envelope.id.encode(),
        "ce_source": b"parcel-service",
        "ce_type": b"packages.v1.PackageDelivered",
        "ce_time": format_time(envelope.time).encode(),
        "content-type": b"application/protobuf",
        "traceparent": (
            f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
        ).encode(),
    }
    assert [name for name, _ in record.headers][:6] == [
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "content-type",
    ]


def test_save_outside_atomic_is_refused(world: DjangoWorld, unique: Any) -> None:
    from django.db import connection

    with pytest.raises(OutboxTransactionError, match=r"transaction\.atomic"):
        build_event(Timestamp()).save()
    with connection.cursor() as cur:
        cur.execute(f'SELECT count(*) FROM "{world.outbox_table}"')
        before = cur.fetchone()[0]
    build_event(Timestamp(), topic=unique("dj.lone")).save(allow_outside_transaction=True)
    with connection.cursor() as cur:
        cur.execute(f'SELECT count(*) FROM "{world.outbox_table}"')
        assert cur.fetchone()[0] == before + 1
