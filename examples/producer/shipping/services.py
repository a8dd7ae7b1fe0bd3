"""The producer's use cases, written exactly as the article shows them."""

from __future__ import annotations

from django.db.transaction import atomic
from django.utils import timezone
from packages.v1.events_pb2 import PackageCreated, PackageDelivered

from courier import build_event
from courier.events import EventEnvelope
from examples.producer.shipping.models import Package


@atomic
def create_package(
    tracking_code: str, sender: str, recipient: str, city: str, weight_grams: int
) -> tuple[Package, EventEnvelope]:
    """Save a new package and its PackageCreated event in one transaction."""
    package = Package.objects.create(
        tracking_code=tracking_code,
        sender_name=sender,
        recipient_name=recipient,
        recipient_city=city,
        weight_grams=weight_grams,
    )
    event = build_event(PackageCreated(package=package.to_proto()), key=str(package.id)).save()
    return package, event


@atomic
def deliver_package(package: Package, received_by: str = "") -> EventEnvelope:
    """The article's ``deliver_package``: the status change and the event commit together."""
    package.status = "delivered"
    package.delivered_at = timezone.now()
    package.save()
    event = PackageDelivered(package=package.to_proto(), received_by=received_by)
    return build_event(event, key=str(package.id)).save()
