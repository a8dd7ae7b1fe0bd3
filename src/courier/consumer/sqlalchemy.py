"""The inbox for SQLAlchemy 2 services (see :mod:`courier.consumer.inbox`).

::

    from sqlalchemy.orm import sessionmaker
    from courier.consumer import idempotent
    from courier.consumer.sqlalchemy import SqlAlchemyInbox, inbox_table

    inbox_table(Base.metadata)               # so create_all / Alembic autogenerate see it
    Session = sessionmaker(engine)
    inbox = SqlAlchemyInbox(Session, consumer="service-a")

    class EventsAPI(EventsAPIServicer):
        @idempotent(inbox)
        def EndpointA(self, request, context):
            inbox.session.add(Delivery(package_id=request.package.id))  # the claim's transaction
            return Empty()

For a session you manage yourself, call :func:`claim_event` inside its transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    or_,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from courier.consumer.inbox import INBOX_TABLE, KEY_LENGTH, InboxClaim, claim_key

_current_session: ContextVar[Session | None] = ContextVar("courier_inbox_session", default=None)


def inbox_table(metadata: MetaData | None = None, name: str = INBOX_TABLE) -> Table:
    """The inbox :class:`~sqlalchemy.Table` in ``metadata`` (added unless already there)."""
    metadata = metadata if metadata is not None else MetaData()
    if name in metadata.tables:
        return metadata.tables[name]
    return Table(
        name,
        metadata,
        Column("consumer", String(KEY_LENGTH), primary_key=True),
        Column("event_id", String(KEY_LENGTH), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Index(f"{name}_processed_at", "processed_at"),
    )


def create_inbox_table(bind: Engine | Connection, table: Table | None = None) -> Table:
    """Create the inbox table if it does not exist (idempotent); returns it."""
    table = table if table is not None else inbox_table()
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            _create_table(connection, table)
    else:
        _create_table(bind, table)
    return table


def _create_table(connection: Connection, table: Table) -> None:
    if connection.dialect.name == "postgresql":
        # Two services starting together both see "no table" and both CREATE: one fails on
        # pg_type's unique index. The lock makes the second one see the first one's table.
        connection.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:name))"),
            {"name": f"courier-inbox-create:{table.fullname}"},
        )
    table.create(connection, checkfirst=True)


def claim_event(session: Session, consumer: str, event_id: str, table: Table | None = None) -> bool:
    """Claim ``event_id`` for ``consumer`` in the session's current transaction.

    True: first time, go ahead. False: already processed (or being processed by a concurrent
    transaction that then committed). Postgres and SQLite use ``ON CONFLICT DO NOTHING``, MySQL
    ``INSERT IGNORE``, other databases a savepoint.
    """
    table = table if table is not None else _DEFAULT_TABLE
    values = {"consumer": consumer, "event_id": event_id, "processed_at": datetime.now(UTC)}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement: Any = pg_insert(table).values(values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(table).values(values).on_conflict_do_nothing()
    elif dialect in ("mysql", "mariadb"):
        statement = insert(table).values(values).prefix_with("IGNORE")
    else:
        try:
            with session.begin_nested():
                session.execute(insert(table).values(values))
        except IntegrityError:
            return False
        return True
    result: Any = session.execute(statement)
    return bool(result.rowcount == 1)


class SqlAlchemyInbox:
    """An inbox whose transactions are sessions from ``session_factory`` (a ``sessionmaker``)."""

    def __init__(
        self,
        session_factory: Callable[[], Session],
        consumer: str,
        table: Table | None = None,
    ) -> None:
        if not consumer:
            raise ValueError("the inbox needs the consumer's name")
        self.consumer = consumer
        self.table = table if table is not None else _DEFAULT_TABLE
        self._session_factory = session_factory

    @property
    def session(self) -> Session:
        """The session of the event being handled (inside :meth:`transaction` / ``@idempotent``)."""
        session = _current_session.get()
        if session is None:
            raise RuntimeError("no inbox transaction here: use inside @idempotent or transaction()")
        return session

    @contextmanager
    def transaction(self, event_id: str, handler: str | None = None) -> Iterator[InboxClaim]:
        """A new session and transaction with ``event_id`` claimed (for ``handler``) in it.

        Commits at the end of the block; rolls back on an exception or ``claim.discard()``.
        """
        session = self._session_factory()
        token = _current_session.set(session)
        try:
            key = claim_key(self.consumer, handler)
            claimed = claim_event(session, key, event_id, self.table)
            claim = InboxClaim(key, event_id, duplicate=not claimed)
            yield claim
            if claim.discarded or claim.duplicate:
                session.rollback()
            else:
                session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            _current_session.reset(token)
            session.close()

    def processed(self, event_id: str, handler: str | None = None) -> bool:
        """Whether ``event_id`` is recorded as processed by this consumer's ``handler``."""
        key = claim_key(self.consumer, handler)
        with self._session_factory() as session:
            row = session.execute(
                self.table.select().where(
                    self.table.c.consumer == key, self.table.c.event_id == event_id
                )
            ).first()
            return row is not None

    def purge(self, older_than: timedelta) -> int:
        """Forget events processed more than ``older_than`` ago; returns how many rows went.

        Keep ``older_than`` well beyond the longest a redelivery can take (retry schedule plus
        DLQ replay), or a late redelivery will run the handler again.
        """
        cutoff = datetime.now(UTC) - older_than
        with self._session_factory() as session, session.begin():
            result: Any = session.execute(
                delete(self.table).where(
                    or_(
                        self.table.c.consumer == self.consumer,
                        self.table.c.consumer.startswith(self.consumer + "/", autoescape=True),
                    ),
                    self.table.c.processed_at < cutoff,
                )
            )
            return int(result.rowcount)


_DEFAULT_TABLE = inbox_table()
