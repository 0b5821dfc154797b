"""ReassignAccount, the contacts service's internal rpc (gRPC only, no REST route) that moves an
account's contacts when accounts are merged."""

from __future__ import annotations

import uuid

import grpc
import httpx
import pytest
from crm.contacts.v1 import contacts_service_pb2, contacts_service_pb2_grpc

from services.devstack import DevStack
from tests.integration.accounts_support import account, contact, errors, events
from tests.integration.conftest import mint
from tests.integration.test_contacts_rest import h
from tests.polling import until


def _md(stack: DevStack, tenant: str, perms: list[str]) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {mint(stack, tenant_id=tenant, perms=perms)}"), ("x-tenant-id", tenant))


def test_reassign_moves_only_the_named_accounts_contacts_and_is_idempotent(
        api: httpx.Client, stack: DevStack, tenant: dict[str, str]) -> None:
    t = tenant["x-tenant-id"]
    a, b, target = account(api, tenant, "A"), account(api, tenant, "B"), account(api, tenant, "Target")
    moving = [contact(api, tenant, "A1", accountId=a["id"]), contact(api, tenant, "B1", accountId=b["id"])]
    staying = contact(api, tenant, "Stays", accountId=target["id"])
    stub = contacts_service_pb2_grpc.ContactsServiceStub(grpc.insecure_channel(f"127.0.0.1:{stack.grpc_port}"))
    request = contacts_service_pb2.ReassignAccountRequest(from_account_ids=[a["id"], b["id"]], to_account_id=target["id"])
    md = _md(stack, t, ["contacts:write"])
    assert stub.ReassignAccount(request, metadata=md).reassigned == 2
    assert stub.ReassignAccount(request, metadata=md).reassigned == 0  # nothing left to move
    for c in (*moving, staying):
        assert api.get(f"/v1/contacts/{c['id']}", headers=h(tenant)).json()["data"]["accountId"] == target["id"]
    # An empty target unlinks.
    unlink = contacts_service_pb2.ReassignAccountRequest(from_account_ids=[target["id"]])
    assert stub.ReassignAccount(unlink, metadata=md).reassigned == 3
    assert api.get(f"/v1/contacts/{staying['id']}", headers=h(tenant)).json()["data"]["accountId"] == ""

    def moves() -> list[tuple[str, str]]:
        found = events(stack, t, {"crm.contacts.contact.updated"}, subject="crm.contacts.>")
        return [(e["subject"], e["data"]["changes"]["accountId"]["to"]) for e in found
                if e["type"] == "crm.contacts.contact.updated"]

    # The relay publishes in batches: wait for all five, not the first.
    moved = until(moves, lambda m: len(m) >= 5)
    assert sorted(moved[:2]) == sorted((c["id"], target["id"]) for c in moving) and len(moved) == 5


def test_reassign_is_tenant_bound_checked_and_guarded(api: httpx.Client, stack: DevStack,
                                                      tenant: dict[str, str]) -> None:
    a = account(api, tenant, "A")
    mine = contact(api, tenant, "Mine", accountId=a["id"])
    stub = contacts_service_pb2_grpc.ContactsServiceStub(grpc.insecure_channel(f"127.0.0.1:{stack.grpc_port}"))
    other_tenant = str(uuid.uuid4())
    request = contacts_service_pb2.ReassignAccountRequest(from_account_ids=[a["id"]], to_account_id=str(uuid.uuid4()))
    # Another tenant's caller matches none of this tenant's contacts.
    assert stub.ReassignAccount(request, metadata=_md(stack, other_tenant, ["contacts:write"])).reassigned == 0
    with pytest.raises(grpc.RpcError) as err:
        stub.ReassignAccount(request, metadata=_md(stack, tenant["x-tenant-id"], ["contacts:read"]))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    bad = contacts_service_pb2.ReassignAccountRequest(from_account_ids=["x", a["id"]], to_account_id=a["id"])
    with pytest.raises(grpc.RpcError) as err:
        stub.ReassignAccount(bad, metadata=_md(stack, tenant["x-tenant-id"], ["contacts:write"]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert api.get(f"/v1/contacts/{mine['id']}", headers=h(tenant)).json()["data"]["accountId"] == a["id"]
    # There is no REST route to it.
    r = api.post("/v1/contacts/reassign-account", headers=h(tenant), json={"fromAccountIds": [a["id"]]})
    assert r.status_code == 404 and errors(r)[0][1] in ("NOT_FOUND", "ERROR")
