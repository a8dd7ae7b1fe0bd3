"""Ask a running gRPC server, through server reflection, which methods it serves and their types.

::

    methods = describe_server("127.0.0.1:50051", timeout=5)
    methods["packages.v1.EventsAPI"]["PackageDelivered"].input_type
    # -> "packages.v1.PackageDelivered"

Servers built with :func:`courier.consumer.serve` have reflection on; so do most gRPC servers
in other languages when their teams turn it on (``grpc.reflection.v1alpha``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import grpc
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

_GRPC_OWN_SERVICES = ("grpc.",)


class ReflectionError(Exception):
    """The server cannot be described: unreachable, no reflection, or a broken answer."""


@dataclass(frozen=True)
class RemoteMethod:
    """One method as the server describes it; types are full names without a leading dot."""

    service: str
    name: str
    input_type: str
    output_type: str
    client_streaming: bool = False
    server_streaming: bool = False

    @property
    def path(self) -> str:
        """``/package.Service/Method``."""
        return f"/{self.service}/{self.name}"


ServerMethods = dict[str, dict[str, RemoteMethod]]  # service -> method name -> method


def describe_server(
    target: str,
    *,
    timeout: float = 5.0,
    credentials: grpc.ChannelCredentials | None = None,
    server_name: str | None = None,
) -> ServerMethods:
    """Every application service of the server at ``target`` with its methods.

    gRPC's own services (health, reflection) are left out. Raises :class:`ReflectionError`
    with a one-line reason; never waits longer than about ``timeout`` per request.
    """
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    if credentials is None:
        channel = grpc.insecure_channel(target, options=options)
    else:
        channel = grpc.secure_channel(target, credentials, options=options)
    with channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise ReflectionError(f"cannot reach {target} within {timeout:g}s") from None
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        listed = _ask(
            stub, reflection_pb2.ServerReflectionRequest(list_services=""), target, timeout
        )
        names = [s.name for s in listed.list_services_response.service]
        services = [n for n in names if not n.startswith(_GRPC_OWN_SERVICES)]
        described: ServerMethods = {}
        for service in services:
            answer = _ask(
                stub,
                reflection_pb2.ServerReflectionRequest(file_containing_symbol=service),
                target,
                timeout,
            )
            files = answer.file_descriptor_response.file_descriptor_proto
            described[service] = _service_methods(service, files, target)
        return described


def _ask(
    stub: reflection_pb2_grpc.ServerReflectionStub,
    request: reflection_pb2.ServerReflectionRequest,
    target: str,
    timeout: float,
) -> reflection_pb2.ServerReflectionResponse:
    try:
        responses = list(stub.ServerReflectionInfo(iter([request]), timeout=timeout))
    except grpc.RpcError as exc:
        code = exc.code()
        if code is grpc.StatusCode.UNIMPLEMENTED:
            raise ReflectionError(f"server reflection is not enabled on {target}") from None
        if code is grpc.StatusCode.DEADLINE_EXCEEDED:
            raise ReflectionError(
                f"reflection on {target} did not answer within {timeout:g}s"
            ) from None
        raise ReflectionError(
            f"reflection on {target} failed: {code.name} {exc.details()}"
        ) from None
    if not responses:
        raise ReflectionError(f"reflection on {target} answered nothing")
    response = responses[0]
    if response.HasField("error_response"):
        error = response.error_response
        raise ReflectionError(
            f"reflection on {target}: error {error.error_code}: {error.error_message}"
        )
    return response


def _service_methods(
    service: str, serialized_files: Iterable[bytes], target: str
) -> dict[str, RemoteMethod]:
    for data in serialized_files:
        proto = descriptor_pb2.FileDescriptorProto.FromString(data)
        for candidate in proto.service:
            full_name = f"{proto.package}.{candidate.name}" if proto.package else candidate.name
            if full_name != service:
                continue
            return {
                method.name: RemoteMethod(
                    service=service,
                    name=method.name,
                    input_type=method.input_type.lstrip("."),
                    output_type=method.output_type.lstrip("."),
                    client_streaming=method.client_streaming,
                    server_streaming=method.server_streaming,
                )
                for method in candidate.method
            }
    raise ReflectionError(f"reflection on {target} has no descriptor for service {service}")
