"""The producer's business model: a package, which knows its own protobuf form."""

from __future__ import annotations

import uuid

from django.db import models
from google.protobuf.timestamp_pb2 import Timestamp
from packages.v1 import packages_pb2

_STATUS = {
    "created": packages_pb2.PACKAGE_STATUS_CREATED,
    "in_transit": packages_pb2.PACKAGE_STATUS_IN_TRANSIT,
    "delivered": packages_pb2.PACKAGE_STATUS_DELIVERED,
    "returned": packages_pb2.PACKAGE_STATUS_RETURNED,
}


class Package(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    tracking_code = models.CharField(max_length=32, unique=True)
    status = models.CharField(max_length=16, default="created")
    sender_name = models.TextField()
    recipient_name = models.TextField()
    recipient_city = models.TextField()
    weight_grams = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    delivered_at = models.DateTimeField(null=True)

    class Meta:
        app_label = "shipping"
        db_table = "shipping_package"

    def to_proto(self) -> packages_pb2.Package:
        """Event-carried state transfer: the whole package goes into the event."""
        message = packages_pb2.Package(
            id=str(self.id),
            tracking_code=self.tracking_code,
            status=_STATUS[self.status],
            sender=packages_pb2.Address(name=self.sender_name),
            recipient=packages_pb2.Address(name=self.recipient_name, city=self.recipient_city),
            weight_grams=self.weight_grams,
        )
        for field, value in (
            ("created_at", self.created_at),
            ("updated_at", self.updated_at),
            ("delivered_at", self.delivered_at),
        ):
            if value is not None:
                stamp = Timestamp()
                stamp.FromDatetime(value)
                getattr(message, field).CopyFrom(stamp)
        return message
