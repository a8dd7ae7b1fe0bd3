"""service-b: EndpointC, which fails a configurable share of calls.

    python -m examples.service_b.server --port 50062 --fail-rate 0.2 --reject-rate 0.01

- ``--fail-rate``: share of calls answered UNAVAILABLE (transient: retried in memory,
  then through the retry topic);
- ``--reject-rate``: share of *events* (chosen by event id, so every redelivery agrees)
  answered INVALID_ARGUMENT: dead-lettered at once;
- ``--outage-seconds``: answer UNAVAILABLE to everything for that long after start-up,
  which opens the broker's circuit breaker.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import time

from google.protobuf.empty_pb2 import Empty
from packages.v1 import events_api_pb2_grpc
from packages.v1.events_pb2 import PackageCreated
from sqlalchemy import MetaData
from sqlalchemy.orm import sessionmaker

from courier.consumer.errors import RejectEvent, RetryLater
from courier.consumer.metadata import event_metadata
from courier.consumer.server import serve
from courier.consumer.sqlalchemy import SqlAlchemyInbox, create_inbox_table
from examples.received import engine_from_env, received_table

CONSUMER = "service-b"


def rejected(event_id: str, share: float) -> bool:
    """A stable choice per event id, so a retried or replayed event is rejected again."""
    digest = hashlib.sha256(event_id.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


class ServiceBEventsAPI(events_api_pb2_grpc.ServiceBEventsAPIServicer):
    def __init__(
        self,
        inbox: SqlAlchemyInbox,
        table: object,
        *,
        fail_rate: float,
        reject_rate: float,
        outage_until: float,
    ) -> None:
        self.inbox, self.table = inbox, table
        self.fail_rate, self.reject_rate, self.outage_until = fail_rate, reject_rate, outage_until
        self.rng = random.Random()

    def EndpointC(self, request: PackageCreated, context: object) -> Empty:
        meta = event_metadata(context)
        if time.monotonic() < self.outage_until:
            raise RetryLater("service-b is down for maintenance")
        if rejected(meta.id, self.reject_rate):
            raise RejectEvent(f"package {request.package.id} failed validation")
        if self.rng.random() < self.fail_rate:
            raise RetryLater("transient failure (simulated)")
        with self.inbox.transaction(meta.id) as claim:
            if not claim.duplicate:
                self.inbox.session.execute(
                    self.table.insert().values(  # type: ignore[attr-defined]
                        event_id=meta.id,
                        method="EndpointC",
                        event_type=meta.type,
                        package_id=request.package.id,
                    )
                )
        return Empty()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=50062)
    parser.add_argument("--metrics-port", type=int, default=None)
    parser.add_argument("--table", default="service_b_received")
    parser.add_argument("--fail-rate", type=float, default=0.2)
    parser.add_argument("--reject-rate", type=float, default=0.01)
    parser.add_argument("--outage-seconds", type=float, default=0.0)
    args = parser.parse_args(argv)

    engine = engine_from_env()
    metadata = MetaData()
    table = received_table(args.table, metadata)
    metadata.create_all(engine)
    create_inbox_table(engine)
    servicer = ServiceBEventsAPI(
        SqlAlchemyInbox(sessionmaker(engine), CONSUMER),
        table,
        fail_rate=args.fail_rate,
        reject_rate=args.reject_rate,
        outage_until=time.monotonic() + args.outage_seconds,
    )
    serve(servicer, port=args.port, metrics_port=args.metrics_port)


if __name__ == "__main__":
    main()
