"""Drive the example producer: create packages and deliver them through Django.

    python -m examples.producer.produce --events 2000 --ids-out produced.jsonl

Each package gives two events: PackageCreated, then PackageDelivered. Every event id is
written to ``--ids-out`` as it commits, so the demo can reconcile what the consumers got.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import sys
import time

from courier.events import EventEnvelope


def _line(event: EventEnvelope) -> str:
    return json.dumps({"id": event.id, "type": event.type, "topic": event.topic}) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--ids-out", required=True)
    parser.add_argument("--rate", type=float, default=0.0, help="events/s; 0 = as fast as possible")
    parser.add_argument("--migrate", action="store_true", help="run Django migrations first")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.producer.settings")
    os.environ.setdefault("COURIER_SERVICE_NAME", "package-service")
    import django

    django.setup()
    if args.migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)

    from examples.producer.shipping.services import create_package, deliver_package

    rng = random.Random()
    cities = ["São Paulo", "Rio de Janeiro", "Belo Horizonte", "Curitiba", "Recife"]
    interval = 1.0 / args.rate if args.rate > 0 else 0.0
    produced = 0
    with open(args.ids_out, "a", encoding="utf-8") as out:
        while produced < args.events:
            started = time.monotonic()
            package, created = create_package(
                tracking_code=f"LG{secrets.token_hex(6).upper()}",
                sender="Loja Exemplo",
                recipient=f"Cliente {rng.randint(1, 99999)}",
                city=rng.choice(cities),
                weight_grams=rng.randint(100, 30000),
            )
            out.write(_line(created))
            produced += 1
            if produced < args.events:
                out.write(_line(deliver_package(package, received_by="porteiro")))
                produced += 1
            out.flush()
            if interval:
                time.sleep(max(0.0, 2 * interval - (time.monotonic() - started)))
    print(produced, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
