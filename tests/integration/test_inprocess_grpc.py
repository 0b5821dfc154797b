"""The contacts service hosted in this test process on an ephemeral port, reached by a gRPC client.

It shares the stack's PostgreSQL and NATS, so what it sees is what the deployed service sees;
hosting it here makes the kernel's own behaviour (token checks, revocations followed from NATS,
rich errors) observable without the edge in between.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import nats
import pytest
from crm.contacts.v1 import contact_pb2, contacts_service_pb2, contacts_service_pb2_grpc
from google.rpc import error_details_pb2, status_pb2

from services.devstack import DevStack
from services.kernel.host import Host, load_modules
from services.kernel.settings import Settings
from tests.integration.conftest import mint

WRITER = ["contacts:*"]


@pytest.fixture()
async def host(stack: DevStack) -> AsyncIterator[Host]:
    settings = Settings.from_env(stack.service_env(CRM_GRPC_LISTEN="127.0.0.1:0", CRM_SERVICES="contacts"))
    h = Host(settings, load_modules(("contacts",)))
    await h.start()
    yield h
    await h.stop(grace=1.0)


def _md(token: str, tenant: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"), ("x-tenant-id", tenant))


def _reason(err: grpc.aio.AioRpcError) -> str:
    trailers: Any = err.trailing_metadata() or ()  # grpc.aio gives (key, value) pairs
    raw = dict(trailers)["grpc-status-details-bin"]
    for detail in status_pb2.Status.FromString(raw).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return ""


async def test_crud_and_paging_on_an_ephemeral_port(stack: DevStack, host: Host) -> None:
    assert host.port not in (0, stack.grpc_port)
    tenant = str(uuid.uuid4())
    md = _md(mint(stack, tenant_id=tenant, perms=WRITER), tenant)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
        stub = contacts_service_pb2_grpc.ContactsServiceStub(channel)
        for i in range(3):
            await stub.CreateContact(contacts_service_pb2.CreateContactRequest(
                contact=contact_pb2.Contact(first_name=f"N{i}", email=f"n{i}@ex.com")), metadata=md)
        page = await stub.ListContacts(contacts_service_pb2.ListContactsRequest(limit=2, sort="firstName"), metadata=md)
        assert [c.first_name for c in page.contacts] == ["N0", "N1"]
        assert page.pagination.total == 3 and page.pagination.has_next
        got = await stub.GetContact(contacts_service_pb2.GetContactRequest(id=page.contacts[0].id), metadata=md)
        assert got.email == "n0@ex.com"


async def test_expired_and_foreign_tenant_tokens_are_refused_by_the_service(stack: DevStack, host: Host) -> None:
    tenant = str(uuid.uuid4())
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
        stub = contacts_service_pb2_grpc.ContactsServiceStub(channel)
        expired = mint(stack, tenant_id=tenant, perms=WRITER, lifetime=-60)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ListContacts(contacts_service_pb2.ListContactsRequest(), metadata=_md(expired, tenant))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED and _reason(err.value) == "TOKEN_EXPIRED"
        valid = mint(stack, tenant_id=tenant, perms=WRITER)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ListContacts(contacts_service_pb2.ListContactsRequest(), metadata=_md(valid, str(uuid.uuid4())))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and _reason(err.value) == "TENANT_MISMATCH"


async def test_a_users_tokens_stop_when_the_revocation_event_arrives(stack: DevStack, host: Host) -> None:
    tenant, user = str(uuid.uuid4()), str(uuid.uuid4())
    token = mint(stack, tenant_id=tenant, user_id=user, perms=WRITER, iat=int(time.time()) - 5)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
        stub = contacts_service_pb2_grpc.ContactsServiceStub(channel)
        await stub.ListContacts(contacts_service_pb2.ListContactsRequest(), metadata=_md(token, tenant))
        nc = await nats.connect(stack.nats_url)
        event = {"specversion": "1.0", "id": str(uuid.uuid4()), "type": "crm.auth.user.revoked",
                 "data": {"userId": user, "before": time.time(), "until": time.time() + 600}}
        await nc.jetstream().publish("crm.auth.user.revoked", json.dumps(event).encode())
        await nc.close()
        code = grpc.StatusCode.OK
        for _ in range(100):
            try:
                await stub.ListContacts(contacts_service_pb2.ListContactsRequest(), metadata=_md(token, tenant))
            except grpc.aio.AioRpcError as err:
                code = err.code()
                break
            await asyncio.sleep(0.05)
        assert code == grpc.StatusCode.UNAUTHENTICATED
        # A token issued after the revocation (the user's next refresh) works.
        fresh = mint(stack, tenant_id=tenant, user_id=user, perms=WRITER, iat=int(time.time()) + 1,
                     nbf=int(time.time()))
        await stub.ListContacts(contacts_service_pb2.ListContactsRequest(), metadata=_md(fresh, tenant))


async def test_service_clients_forward_the_caller_or_act_as_a_limited_service(stack: DevStack) -> None:
    from services.auth.keys import SigningKey
    from services.kernel import context
    from services.kernel.clients import ServiceClients

    name = "crm.contacts.v1.ContactsService"
    settings = Settings.from_env(stack.service_env(CRM_SERVICE_ADDRESSES=f"{name}=127.0.0.1:{stack.grpc_port}"))
    clients = ServiceClients(settings, "127.0.0.1:1", set(), SigningKey.load(stack.key_file))
    stub = clients.stub(name, contacts_service_pb2_grpc.ContactsServiceStub)
    tenant = str(uuid.uuid4())
    user_token = mint(stack, tenant_id=tenant, perms=WRITER)
    bound = context.bind(context.RequestContext(tenant_id=tenant, user_id=str(uuid.uuid4()), token=user_token))
    try:
        made = await stub.CreateContact(contacts_service_pb2.CreateContactRequest(
            contact=contact_pb2.Contact(first_name="Fwd")), metadata=clients.as_caller())
    finally:
        context.reset(bound)
    reader = clients.as_service("crm.tests.v1.Probe", tenant, ["contacts:read"])
    got = await stub.GetContact(contacts_service_pb2.GetContactRequest(id=made.id), metadata=reader)
    assert got.first_name == "Fwd"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.DeleteContact(contacts_service_pb2.DeleteContactRequest(id=made.id), metadata=reader)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    from services.kernel.errors import Unavailable

    with pytest.raises(Unavailable):
        clients.stub("crm.deals.v1.DealsService", contacts_service_pb2_grpc.ContactsServiceStub)
    await clients.close()
