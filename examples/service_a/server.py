"""service-a: EndpointA and EndpointB, idempotent, writing what it receives.

    python -m examples.service_a.server --port 50061 [--metrics-port 9461]

A plain generated servicer, as in the article; Courier's kit adds the event metadata,
the inbox (a redelivered event does not run the handler twice) and the server.
"""

from __future__ import annotations

import argparse

from google.protobuf.empty_pb2 import Empty
from packages.v1 import events_api_pb2_grpc
from packages.v1.events_pb2 import PackageDelivered
from sqlalchemy import MetaData
from sqlalchemy.orm import sessionmaker

from courier.consumer.metadata import event_metadata
from courier.consumer.server import serve
from courier.consumer.sqlalchemy import SqlAlchemyInbox, create_inbox_table
from examples.received import engine_from_env, received_table

CONSUMER = "service-a"


class ServiceAEventsAPI(events_api_pb2_grpc.ServiceAEventsAPIServicer):
    def __init__(self, inbox_a: SqlAlchemyInbox, inbox_b: SqlAlchemyInbox, table: object) -> None:
        self.inbox_a, self.inbox_b, self.table = inbox_a, inbox_b, table

    def EndpointA(self, request: PackageDelivered, context: object) -> Empty:
        return self._record(self.inbox_a, "EndpointA", request, context)

    def EndpointB(self, request: PackageDelivered, context: object) -> Empty:
        return self._record(self.inbox_b, "EndpointB", request, context)

    def _record(
        self, inbox: SqlAlchemyInbox, method: str, request: PackageDelivered, context: object
    ) -> Empty:
        meta = event_metadata(context)
        with inbox.transaction(meta.id) as claim:
            if not claim.duplicate:
                inbox.session.execute(
                    self.table.insert().values(  # type: ignore[attr-defined]
                        event_id=meta.id,
                        method=method,
                        event_type=meta.type,
                        package_id=request.package.id,
                    )
                )
        return Empty()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=50061)
    parser.add_argument("--metrics-port", type=int, default=None)
    parser.add_argument("--table", default="service_a_received")
    args = parser.parse_args(argv)

    engine = engine_from_env()
    metadata = MetaData()
    table = received_table(args.table, metadata)
    metadata.create_all(engine)
    create_inbox_table(engine)
    sessions = sessionmaker(engine)
    # One inbox per method: each method is its own delivery and may be retried alone.
    servicer = ServiceAEventsAPI(
        SqlAlchemyInbox(sessions, f"{CONSUMER}/EndpointA"),
        SqlAlchemyInbox(sessions, f"{CONSUMER}/EndpointB"),
        table,
    )
    serve(servicer, port=args.port, metrics_port=args.metrics_port)


if __name__ == "__main__":
    main()
