"""Every rpc of every hosted service refuses a caller whose role lacks the rpc's permission.

The sweep reads the permissions from the contracts, so a service added later is covered
without touching this file. The interceptor decides before the handler runs, so an empty
request is enough to reach the check.
"""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from crm.common.v1 import annotations_pb2
from google.protobuf import descriptor_pb2, message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message import Message

from services.devstack import ROOT, DevStack
from services.kernel.context import RequestContext
from tests.integration.conftest import mint


def _rpcs() -> list[tuple[str, str, type[Message], bool, bool]]:
    """(path, permission, request class, client streaming, server streaming) of every guarded rpc."""
    fds = descriptor_pb2.FileDescriptorSet.FromString((ROOT / "gen" / "descriptor.binpb").read_bytes())
    pool = DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    found: list[tuple[str, str, type[Message], bool, bool]] = []
    for f in fds.file:
        if not f.package.startswith("crm."):
            continue
        for service in f.service:
            for method in service.method:
                policy = method.options.Extensions[annotations_pb2.policy]
                if policy.public or not policy.permission:
                    continue
                request = message_factory.GetMessageClass(pool.FindMessageTypeByName(method.input_type.lstrip(".")))
                found.append((f"/{f.package}.{service.name}/{method.name}", policy.permission, request,
                              method.client_streaming, method.server_streaming))
    return found


RPCS = _rpcs()


def test_the_sweep_sees_the_contacts_and_accounts_services() -> None:
    assert len([r for r in RPCS if r[0].startswith("/crm.contacts.v1.")]) == 20
    assert len([r for r in RPCS if r[0].startswith("/crm.accounts.v1.")]) == 21


def test_the_sweep_sees_the_pipelines_and_deals_services() -> None:
    assert len([r for r in RPCS if r[0].startswith("/crm.pipelines.v1.")]) == 14
    assert len([r for r in RPCS if r[0].startswith("/crm.deals.v1.")]) == 18  # 16 REST + 2 internal


@pytest.mark.parametrize(("path", "permission", "request_cls", "cs", "ss"), RPCS, ids=[r[0] for r in RPCS])
async def test_rpc_refuses_a_role_without_its_permission(stack: DevStack, path: str, permission: str,
                                                         request_cls: type, cs: bool, ss: bool) -> None:
    tenant = str(uuid.uuid4())
    # Everything but the permission this rpc needs (and no wildcard that would imply it).
    resource = permission.split(":", 1)[0]
    others = sorted({p for _, p, *_ in RPCS if p.split(":", 1)[0] != resource})
    assert not RequestContext(tenant_id=tenant, user_id="u", permissions=frozenset(others)).can(permission)
    denied = await _call(stack, path, request_cls, cs, ss, mint(stack, tenant_id=tenant, perms=others), tenant)
    assert denied == grpc.StatusCode.PERMISSION_DENIED, path
    # Control: the same token shape with the permission gets past the check.
    allowed = await _call(stack, path, request_cls, cs, ss, mint(stack, tenant_id=tenant, perms=[permission]), tenant)
    assert allowed not in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED), path


async def _call(stack: DevStack, path: str, request_cls: type, cs: bool, ss: bool, token: str,
                tenant: str) -> grpc.StatusCode:
    md = (("authorization", f"Bearer {token}"), ("x-tenant-id", tenant))
    kwargs: dict[str, Any] = {"request_serializer": lambda m: m.SerializeToString(),
                              "response_deserializer": lambda b: b}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.grpc_port}") as channel:
        try:
            call: Any
            if cs:
                call = channel.stream_stream(path, **kwargs) if ss else channel.stream_unary(path, **kwargs)
                result: Any = call(iter([request_cls()]), metadata=md)
            else:
                call = channel.unary_stream(path, **kwargs) if ss else channel.unary_unary(path, **kwargs)
                result = call(request_cls(), metadata=md)
            if ss:
                async for _ in result:
                    pass
            else:
                await result
        except grpc.aio.AioRpcError as err:
            return err.code()
    return grpc.StatusCode.OK
