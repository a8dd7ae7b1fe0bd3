"""courier contract check: real consumer servers (reflection on) against a broker YAML.

Servers run in this process on loopback ports; the command runs as users run it.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from types import ModuleType

import grpc
import pytest
from grpc_tools import protoc
from packages.v1 import events_api_pb2_grpc

from courier.consumer import ConsumerServer, build_server

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "proto"

RENAMED_PROTO = """
syntax = "proto3";
package contractcheck.v1;
import "google/protobuf/empty.proto";
import "packages/v1/events.proto";
// service-a after its team renamed EndpointA, without telling the broker config.
service ServiceAEventsAPI {
  rpc EndpointAlpha(packages.v1.PackageDelivered) returns (google.protobuf.Empty);
  rpc EndpointB(packages.v1.PackageDelivered) returns (google.protobuf.Empty);
}
"""


@pytest.fixture(scope="session")
def renamed_api(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """Generated code for a service-a whose EndpointA was renamed (built with grpc_tools)."""
    root = tmp_path_factory.mktemp("renamed")
    source = root / "proto" / "contractcheck" / "v1" / "renamed_api.proto"
    source.parent.mkdir(parents=True)
    source.write_text(RENAMED_PROTO)
    out = root / "gen"
    out.mkdir()
    well_known = Path(protoc.__file__).parent / "_proto"
    status = protoc.main([
        "protoc", f"-I{root / 'proto'}", f"-I{PROTO}", f"-I{well_known}",
        f"--python_out={out}", f"--grpc_python_out={out}", "contractcheck/v1/renamed_api.proto",
    ])  # fmt: skip
    assert status == 0
    sys.path.insert(0, str(out))
    return importlib.import_module("contractcheck.v1.renamed_api_pb2_grpc")


@pytest.fixture()
def servers(renamed_api: ModuleType) -> Iterator[dict[str, ConsumerServer]]:
    """service-a as configured, service-a renamed, service-b: plain generated servicers."""
    running = {
        "service-a": build_server(events_api_pb2_grpc.ServiceAEventsAPIServicer()),
        "renamed": build_server(renamed_api.ServiceAEventsAPIServicer()),
        "service-b": build_server(events_api_pb2_grpc.ServiceBEventsAPIServicer()),
    }
    for server in running.values():
        server.start()
    yield running
    for server in running.values():
        server.stop(grace=None)


def _consumer(name: str, port: int, topic: str, methods: list[str], service: str = "") -> str:
    service_line = f'    grpc-service: "{service}"\n' if service else ""
    listed = "".join(f'          - "{m}"\n' for m in methods)
    return (
        f"  {name}:\n"
        f'    grpc-server-hostname: "127.0.0.1"\n'
        f'    grpc-server-port: "{port}"\n'
        f"{service_line}"
        f"    max-retry-attempts: 3\n"
        f"    batch-size: 10\n"
        f'    retry-topic: "{name}_retry"\n'
        f'    dlq-topic: "{name}_dlq"\n'
        f"    distribution:\n"
        f'      - topic: "{topic}"\n'
        f"        services:\n"
        f"{listed}"
    )


def _check(
    tmp_path: Path, *consumers: str, extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "broker.yaml"
    config.write_text("consumers:\n" + "".join(consumers))
    return subprocess.run(
        [sys.executable, "-m", "courier", "contract", "check", "--config", str(config),
         "--proto-dir", str(PROTO), "--timeout", "2", *extra],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip


def test_the_articles_two_consumers_match(
    tmp_path: Path, servers: dict[str, ConsumerServer]
) -> None:
    result = _check(
        tmp_path,
        _consumer("service-a", servers["service-a"].port, "packages.delivered",
                  ["EndpointA", "EndpointB"], service="packages.v1.ServiceAEventsAPI"),
        # A bare method without grpc-service is found through reflection.
        _consumer("service-b", servers["service-b"].port, "packages.created", ["EndpointC"]),
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (0, ""), result.stderr
    assert "2 consumer(s), 3 method(s) match their topics" in result.stderr


def test_a_renamed_method_is_one_line(tmp_path: Path, servers: dict[str, ConsumerServer]) -> None:
    port = servers["renamed"].port
    result = _check(
        tmp_path,
        _consumer("service-a", port, "packages.delivered", ["EndpointA", "EndpointB"],
                  service="contractcheck.v1.ServiceAEventsAPI"),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        f"service-a: method contractcheck.v1.ServiceAEventsAPI/EndpointA not found on 127.0.0.1:"
        f"{port} (methods of contractcheck.v1.ServiceAEventsAPI: EndpointAlpha, EndpointB)"
    ]


def test_a_wrong_request_type_is_one_line(
    tmp_path: Path, servers: dict[str, ConsumerServer]
) -> None:
    # EndpointC takes PackageCreated; the config feeds it the packages.delivered topic.
    result = _check(
        tmp_path,
        _consumer("service-a", servers["service-a"].port, "packages.delivered",
                  ["EndpointA", "EndpointB"], service="packages.v1.ServiceAEventsAPI"),
        _consumer("service-b", servers["service-b"].port, "packages.delivered",
                  ["packages.v1.ServiceBEventsAPI/EndpointC"]),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        "service-b: packages.v1.ServiceBEventsAPI/EndpointC takes packages.v1.PackageCreated "
        "but topic packages.delivered carries packages.v1.PackageDelivered"
    ]


def test_unknown_service_lists_what_the_server_has(
    tmp_path: Path, servers: dict[str, ConsumerServer]
) -> None:
    port = servers["service-b"].port
    result = _check(
        tmp_path, _consumer("service-b", port, "packages.created", ["events.v1.API/EndpointC"])
    )
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"service-b: method events.v1.API/EndpointC not found on 127.0.0.1:{port} "
        "(services: packages.v1.ServiceBEventsAPI)"
    ]


@pytest.mark.timeout(30)
def test_an_unreachable_consumer_is_a_problem_not_a_hang(tmp_path: Path) -> None:
    with build_server(events_api_pb2_grpc.ServiceBEventsAPIServicer()) as gone:
        port = gone.port  # free again once stopped
    result = _check(tmp_path, _consumer("service-b", port, "packages.created", ["EndpointC"]))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [f"service-b: cannot reach 127.0.0.1:{port} within 2s"]


def test_a_server_without_reflection(tmp_path: Path) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    events_api_pb2_grpc.add_ServiceBEventsAPIServicer_to_server(
        events_api_pb2_grpc.ServiceBEventsAPIServicer(), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        result = _check(tmp_path, _consumer("service-b", port, "packages.created", ["EndpointC"]))
    finally:
        server.stop(None)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"service-b: server reflection is not enabled on 127.0.0.1:{port}"
    ]


def test_a_topic_no_message_declares_is_a_warning(
    tmp_path: Path, servers: dict[str, ConsumerServer]
) -> None:
    consumer = _consumer("service-b", servers["service-b"].port, "legacy.topic", ["EndpointC"])
    relaxed = _check(tmp_path, consumer)
    assert (relaxed.returncode, relaxed.stdout) == (0, "")
    assert "warning: service-b: topic legacy.topic: no message in the protos declares" in (
        relaxed.stderr
    )
    strict = _check(tmp_path, consumer, extra=("--strict",))
    assert strict.returncode == 1
    assert len(strict.stdout.splitlines()) == 1


def test_bad_config_exits_2(tmp_path: Path) -> None:
    result = _check(tmp_path, "  service-a:\n    grpc-server-port: abc\n")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "broker.yaml:" in result.stderr and "Traceback" not in result.stderr


def test_protos_that_do_not_compile_exit_2(tmp_path: Path) -> None:
    broken = tmp_path / "proto"
    broken.mkdir()
    (broken / "bad.proto").write_text('syntax = "proto3";\nmessage {\n')
    config = tmp_path / "broker.yaml"
    config.write_text("consumers:\n" + _consumer("service-b", 1, "packages.created", ["EndpointC"]))
    result = subprocess.run(
        [sys.executable, "-m", "courier", "contract", "check", "--config", str(config),
         "--proto-dir", str(broken)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: cannot compile {broken}: bad.proto:2:9: Expected message name."
    ]


def test_yaml_shape(tmp_path: Path) -> None:
    # The helper writes the article's format: keep it honest with the broker's own loader.
    from courier.broker.config import load_config

    path = tmp_path / "b.yaml"
    path.write_text("consumers:\n" + _consumer("service-a", 5, "t", ["A", "B"], service="x.v1.S"))
    consumer = load_config(path).consumers["service-a"]
    assert [m.path for m in consumer.methods_for("t")] == ["/x.v1.S/A", "/x.v1.S/B"]
