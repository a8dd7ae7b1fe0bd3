"""The outbox under SQLAlchemy 2: a ``Table`` for your metadata, and ``save(session)``.

::

    from courier import build_event
    from courier.outbox.sqlalchemy import outbox_table

    outbox_table(Base.metadata)          # once, next to your models
    Base.metadata.create_all(engine)     # or: alembic revision --autogenerate

    with Session(engine) as session, session.begin():
        session.add(order)
        build_event(OrderPlaced(...), key=str(order.id)).save(session)

``save(session)`` executes one INSERT on the session's connection, inside its transaction: it
commits or rolls back with everything else in the session. On Postgres the table has exactly
the contract's types; elsewhere SQLAlchemy's generic ``Uuid`` (CHAR(32)), ``JSON`` and
``LargeBinary`` are used, and the polling relay reads those forms.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    LargeBinary,
    MetaData,
    Table,
    Text,
    Uuid,
    insert,
    text,
)
from sqlalchemy.dialects.postgresql import BYTEA, JSONB

from courier.events import EventEnvelope
from courier.outbox import wal
from courier.settings import DEFAULT_OUTBOX_TABLE

_default_metadata = MetaData()


def outbox_table(metadata: MetaData | None = None, name: str = DEFAULT_OUTBOX_TABLE) -> Table:
    """The outbox ``Table`` registered in ``metadata`` (created once, then reused).

    ``name`` may be schema-qualified (``"app.courier_outbox"``).
    """
    metadata = _default_metadata if metadata is None else metadata
    schema, _, table_name = name.rpartition(".")
    key = f"{schema}.{table_name}" if schema else table_name
    if key in metadata.tables:
        return metadata.tables[key]
    return Table(
        table_name,
        metadata,
        Column("id", Uuid(), primary_key=True),
        Column("topic", Text(), nullable=False),
        Column("key", Text(), nullable=True),
        Column("type", Text(), nullable=False),
        Column("source", Text(), nullable=False),
        Column("payload", LargeBinary().with_variant(BYTEA(), "postgresql"), nullable=False),
        Column(
            "headers",
            JSON().with_variant(JSONB(), "postgresql"),
            nullable=False,
            server_default=text("'{}'"),
        ),
        Column("created_at", DateTime(timezone=True), nullable=False),
        # Constant for Debezium's ce_specversion header (see courier.outbox.table).
        Column("specversion", Text(), nullable=False, server_default=text("'1.0'")),
        Index(f"{table_name}_created_at_idx", "created_at"),
        schema=schema or None,
    )


def save_with_sqlalchemy(
    envelope: EventEnvelope,
    session: Any,
    *,
    table: str | None,
    allow: bool,
    table_less: bool = False,
) -> None:
    """Execute the INSERT on a ``Session`` or ``Connection``, inside its transaction."""
    from courier.outbox.builder import OutboxTransactionError

    if not allow and not _in_transaction(session):
        raise OutboxTransactionError(
            "build_event(...).save(session) outside a transaction: the session or connection "
            "is in autocommit mode; use `with session.begin():` or pass "
            "allow_outside_transaction=True"
        )
    if table_less:
        if session.get_bind().dialect.name != "postgresql":
            raise ValueError("table_less=True needs Postgres (pg_logical_emit_message)")
        session.execute(
            text("SELECT pg_logical_emit_message(true, :prefix, :content)"),
            {"prefix": wal.MESSAGE_PREFIX, "content": wal.encode_envelope(envelope)},
        )
        return
    outbox = outbox_table(name=table or DEFAULT_OUTBOX_TABLE)
    statement = insert(outbox).values(
        id=uuid.UUID(envelope.id),
        topic=envelope.topic,
        key=envelope.key,
        type=envelope.type,
        source=envelope.source,
        payload=envelope.payload,
        headers=dict(envelope.headers),
        created_at=envelope.time,
    )
    session.execute(statement)


def _in_transaction(session: Any) -> bool:
    # SQLAlchemy 2 autobegins: the INSERT opens the transaction and nothing is written until
    # the caller commits. Only AUTOCOMMIT connections and autobegin=False sessions are not.
    from sqlalchemy.orm import Session

    if isinstance(session, Session):
        if not session.in_transaction() and not getattr(session, "autobegin", True):
            return False
        connection = session.connection()
    else:
        connection = session
    is_autocommit = getattr(connection, "_is_autocommit_isolation", None)
    return not (callable(is_autocommit) and is_autocommit())
