"""The consumer server: health, reflection, metrics, TLS, and a graceful stop on SIGTERM."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.empty_pb2 import Empty
from grpc_health.v1 import health_pb2, health_pb2_grpc
from packages.v1 import events_api_pb2_grpc, events_pb2

from courier.consumer import TlsConfig, build_server, event_metadata
from courier.consumer.testing import DeliveryResult, deliver
from courier.contract.reflection import describe_server

SERVICE = "packages.v1.ServiceAEventsAPI"

SYNC_CONSUMER = """
import time
from google.protobuf.empty_pb2 import Empty
from packages.v1 import events_api_pb2_grpc
from courier.consumer import serve

class ServiceA(events_api_pb2_grpc.ServiceAEventsAPIServicer):
    def EndpointA(self, request, context):
        time.sleep(float(request.received_by or 0))
        return Empty()

serve(ServiceA(), port=0, metrics_port=0, grace=5.0)
"""

ASYNC_CONSUMER = """
import asyncio
from google.protobuf.empty_pb2 import Empty
from packages.v1 import events_api_pb2_grpc
from courier.consumer import aio

class ServiceA(events_api_pb2_grpc.ServiceAEventsAPIServicer):
    async def EndpointA(self, request, context):
        await asyncio.sleep(float(request.received_by or 0))
        return Empty()

asyncio.run(aio.serve(ServiceA(), port=0, metrics_port=0, grace=5.0))
"""


def _http(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _slow(seconds: float) -> events_pb2.PackageDelivered:
    return events_pb2.PackageDelivered(received_by=str(seconds))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("script", [SYNC_CONSUMER, ASYNC_CONSUMER], ids=["sync", "asyncio"])
def test_serve_until_sigterm(tmp_path: Path, script: str) -> None:
    path = tmp_path / "consumer.py"
    path.write_text(textwrap.dedent(script))
    process = subprocess.Popen(
        [sys.executable, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        started = json.loads(process.stdout.readline())  # not a terminal: JSON lines
        address, metrics = started["address"], f"http://127.0.0.1:{started['metrics_port']}"
        assert started["services"] == [SERVICE]

        with grpc.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for service in ("", SERVICE):
                answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                assert answer.status == health_pb2.HealthCheckResponse.SERVING

        method = describe_server(address)[SERVICE]["EndpointA"]
        assert method.input_type == "packages.v1.PackageDelivered"

        assert deliver(address, f"{SERVICE}/EndpointA", _slow(0)).ok
        status, text = _http(f"{metrics}/metrics")
        assert status == 200
        handled = f'method="/{SERVICE}/EndpointA",outcome="ok"'
        assert f"courier_consumer_handled_total{{{handled}}} 1.0" in text
        assert _http(f"{metrics}/healthz")[0] == 200

        in_flight: list[DeliveryResult] = []
        call = threading.Thread(
            target=lambda: in_flight.append(deliver(address, f"{SERVICE}/EndpointA", _slow(1.5)))
        )
        call.start()
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        assert _eventually(lambda: _http(f"{metrics}/healthz")[0] == 503)
        call.join(timeout=10)
        assert [r.code for r in in_flight] == [grpc.StatusCode.OK]  # finished within the grace
        assert process.wait(timeout=10) == 0
        lines = [json.loads(line) for line in process.stdout.read().splitlines()]
        assert lines[-1]["message"] == "consumer stopped"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _eventually(condition: Any, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return True
        except OSError:  # the endpoint may be gone already
            return False
        time.sleep(0.05)
    return False


class ServiceA(events_api_pb2_grpc.ServiceAEventsAPIServicer):
    def EndpointA(self, request: events_pb2.PackageDelivered, context: Any) -> Empty:
        event_metadata(context)
        return Empty()


def test_stop_reports_not_serving() -> None:
    server = build_server(ServiceA()).start()
    check = health_pb2.HealthCheckRequest(service=SERVICE)
    assert server.health.Check(check, None).status == health_pb2.HealthCheckResponse.SERVING
    server.stop(grace=0.5)
    assert not server.serving
    assert server.health.Check(check, None).status == health_pb2.HealthCheckResponse.NOT_SERVING


def test_port_taken_is_a_clear_error() -> None:
    with build_server(ServiceA()) as first, pytest.raises(OSError, match="cannot listen on"):
        build_server(ServiceA(), port=first.port)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    with build_server(ServiceA(), tls=TlsConfig(cert_file=cert, key_file=key)) as server:
        credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        metadata = (
            ("ce-id", "e-1"), ("ce-type", "packages.v1.PackageDelivered"), ("ce-source", "t"),
            ("ce-time", "2026-01-01T00:00:00Z"), ("courier-attempt", "1"),
        )  # fmt: skip
        with grpc.secure_channel(server.address, credentials) as channel:
            stub = events_api_pb2_grpc.ServiceAEventsAPIStub(channel)
            assert stub.EndpointA(events_pb2.PackageDelivered(), metadata=metadata, timeout=5)
        with grpc.insecure_channel(server.address) as plain:
            with pytest.raises(grpc.RpcError) as refused:
                events_api_pb2_grpc.ServiceAEventsAPIStub(plain).EndpointA(
                    events_pb2.PackageDelivered(), metadata=metadata, timeout=2
                )
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
