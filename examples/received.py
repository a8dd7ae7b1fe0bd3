"""What an example consumer writes for each event it handles: one row per (event, method).

Both example services keep it in their own table, in the same transaction as the inbox
claim, so the demo can reconcile exactly what each consumer method received.
"""

from __future__ import annotations

import os

from sqlalchemy import Column, DateTime, MetaData, String, Table, create_engine, func
from sqlalchemy.engine import Engine


def received_table(name: str, metadata: MetaData) -> Table:
    return Table(
        name,
        metadata,
        Column("event_id", String(64), primary_key=True),
        Column("method", String(255), primary_key=True),
        Column("event_type", String(255), nullable=False),
        Column("package_id", String(64), nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def engine_from_env() -> Engine:
    url = os.environ.get("COURIER_DATABASE_URL", "postgresql://postgres@127.0.0.1:15432/courier")
    return create_engine(
        url.replace("postgresql://", "postgresql+psycopg2://", 1), pool_size=16, max_overflow=8
    )
