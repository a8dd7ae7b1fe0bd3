"""The public surface of courier.consumer is pinned, and stays framework-free."""

from __future__ import annotations

import subprocess
import sys

import courier.consumer


def test_public_names() -> None:
    assert sorted(courier.consumer.__all__) == [
        "ConsumerError",
        "ConsumerServer",
        "EventMetadata",
        "Inbox",
        "InboxClaim",
        "MissingEventMetadata",
        "RejectEvent",
        "RetryLater",
        "TlsConfig",
        "build_server",
        "event_metadata",
        "idempotent",
        "inbox_ddl",
        "map_errors",
        "serve",
        "status_for_exception",
    ]
    for name in courier.consumer.__all__:
        assert getattr(courier.consumer, name) is not None


def test_importing_the_kit_pulls_neither_django_nor_sqlalchemy() -> None:
    code = (
        "import sys, courier.consumer; print(sorted({'django', 'sqlalchemy'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
