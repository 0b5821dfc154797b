"""Method policies read once from the contracts (`crm.common.v1.policy` on each rpc)."""

from __future__ import annotations

from crm.common.v1 import annotations_pb2
from google.protobuf.descriptor import ServiceDescriptor

# Infrastructure rpcs any caller may use (load balancers and tools call them without tokens).
OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/",
                 "/grpc.reflection.v1.ServerReflection/")

AUTHENTICATED = annotations_pb2.MethodPolicy()
OPEN = annotations_pb2.MethodPolicy(public=True)


def policies(services: list[ServiceDescriptor]) -> dict[str, annotations_pb2.MethodPolicy]:
    """`/<package>.<Service>/<Method>` -> its policy (authenticated, no permission, when unset)."""
    found: dict[str, annotations_pb2.MethodPolicy] = {}
    for service in services:
        for method in service.methods:
            options = method.GetOptions()
            policy = options.Extensions[annotations_pb2.policy]
            found[f"/{service.full_name}/{method.name}"] = policy
    return found


def lookup(table: dict[str, annotations_pb2.MethodPolicy], method: str) -> annotations_pb2.MethodPolicy:
    if method in table:
        return table[method]
    if method.startswith(OPEN_SERVICES):
        return OPEN
    return AUTHENTICATED
