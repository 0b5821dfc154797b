"""Method policies read once from the contracts (`crm.common.v1.policy` on each rpc)."""

from __future__ import annotations

from crm.common.v1 import annotations_pb2
from google.api import annotations_pb2 as google_annotations
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message

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


def contract_services() -> list[ServiceDescriptor]:
    """Every service of every `crm.*` contract in the generated code, hosted here or not."""
    import importlib
    from pathlib import Path

    import crm  # a namespace package (no __init__.py): walk its folders, not pkgutil

    found: list[ServiceDescriptor] = []
    for root in crm.__path__:
        for path in sorted(Path(root).rglob("*_pb2.py")):
            name = ".".join(("crm", *path.relative_to(root).with_suffix("").parts))
            module = importlib.import_module(name)
            found.extend(module.DESCRIPTOR.services_by_name.values())
    return sorted(found, key=lambda s: s.full_name)


def permission_catalogue() -> dict[str, list[str]]:
    """Each permission some rpc policy names -> the rpcs (`pkg.Service/Method`) that require it."""
    catalogue: dict[str, list[str]] = {}
    for method, policy in policies(contract_services()).items():
        if policy.permission:
            catalogue.setdefault(policy.permission, []).append(method.lstrip("/"))
    return {name: sorted(rpcs) for name, rpcs in sorted(catalogue.items())}


def versioned_records(services: list[ServiceDescriptor]) -> frozenset[str]:
    """Full names of the records that carry an entity tag: those a `conditional` rpc changes."""
    found: set[str] = set()
    for service in services:
        for method in service.methods:
            if method.GetOptions().Extensions[annotations_pb2.policy].conditional:
                found.add(method.output_type.full_name)
    found.discard("google.protobuf.Empty")  # a conditional delete answers nothing
    return frozenset(found)


def post_responses(services: list[ServiceDescriptor]) -> dict[str, type[Message]]:
    """`/<package>.<Service>/<Method>` -> its answer's class, for the rpcs bound to HTTP POST
    (those `Idempotency-Key` applies to)."""
    found: dict[str, type[Message]] = {}
    for service in services:
        for method in service.methods:
            rule = method.GetOptions().Extensions[google_annotations.http]
            if rule.WhichOneof("pattern") == "post" and not method.server_streaming:
                found[f"/{service.full_name}/{method.name}"] = message_factory.GetMessageClass(method.output_type)
    return found
