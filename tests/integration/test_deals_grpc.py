"""The deals service's internal rpcs (no REST route): ReassignAccount for accounts merges and
MoveStageDeals for stage deletion, called over gRPC like the other services call them."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import httpx
import pytest
from crm.contacts.v1 import contact_pb2, contacts_service_pb2, contacts_service_pb2_grpc
from crm.deals.v1 import deals_service_pb2, deals_service_pb2_grpc
from google.rpc import error_details_pb2, status_pb2

from services.devstack import DevStack
from services.kernel.host import Host, load_modules
from services.kernel.settings import Settings
from tests.integration.conftest import account, mint
from tests.integration.sales import h, make_deal, make_pipeline, stage_ids

STAGES = [("New", 10, "open"), ("Offer", 60, "open"), ("Won", 100, "won")]


def _md(t: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return (("authorization", t["authorization"]), ("x-tenant-id", t["x-tenant-id"]))


def _reason(err: grpc.aio.AioRpcError) -> str:
    trailers: Any = err.trailing_metadata() or ()
    raw = dict(trailers)["grpc-status-details-bin"]
    for detail in status_pb2.Status.FromString(raw).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return ""


def _fields(err: grpc.RpcError) -> list[str]:
    trailers: Any = err.trailing_metadata() or ()
    raw = dict(trailers)["grpc-status-details-bin"]
    out = []
    for detail in status_pb2.Status.FromString(raw).details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out += [v.field for v in bad.field_violations]
    return out


@pytest.fixture()
def stub(stack: DevStack) -> deals_service_pb2_grpc.DealsServiceStub:
    return deals_service_pb2_grpc.DealsServiceStub(grpc.insecure_channel(f"127.0.0.1:{stack.grpc_port}"))


def test_reassign_account_moves_deals_of_merged_accounts(api: httpx.Client, tenant: dict[str, str],
                                                         stub: deals_service_pb2_grpc.DealsServiceStub) -> None:
    a1, a2, keep, other = (account(api, tenant, n) for n in ("a1", "a2", "keep", "other"))
    moved = [make_deal(api, tenant, "one", accountId=a1)["id"], make_deal(api, tenant, "two", accountId=a2)["id"]]
    untouched = make_deal(api, tenant, "three", accountId=other)["id"]
    answer = stub.ReassignAccount(deals_service_pb2.ReassignAccountRequest(from_account_ids=[a1, a2], to_account_id=keep),
                                  metadata=_md(tenant))
    assert answer.reassigned == 2
    for deal_id in moved:
        assert api.get(f"/v1/deals/{deal_id}", headers=h(tenant)).json()["data"]["accountId"] == keep
    assert api.get(f"/v1/deals/{untouched}", headers=h(tenant)).json()["data"]["accountId"] == other
    with pytest.raises(grpc.RpcError) as err:
        stub.ReassignAccount(deals_service_pb2.ReassignAccountRequest(from_account_ids=[keep], to_account_id=keep),
                             metadata=_md(tenant))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and _fields(err.value) == ["toAccountId"]


def test_move_stage_deals_stays_inside_the_pipeline(api: httpx.Client, tenant: dict[str, str],
                                                   stub: deals_service_pb2_grpc.DealsServiceStub) -> None:
    pipeline = make_pipeline(api, tenant, "Internal", STAGES)
    ids = stage_ids(pipeline)
    deals = [make_deal(api, tenant, f"d{i}", pipelineId=pipeline["id"])["id"] for i in range(2)]
    foreign = stage_ids(make_pipeline(api, tenant, "Foreign", STAGES))["Offer"]
    with pytest.raises(grpc.RpcError) as err:
        stub.MoveStageDeals(deals_service_pb2.MoveStageDealsRequest(from_stage_id=ids["New"], to_stage_id=foreign),
                            metadata=_md(tenant))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and _fields(err.value) == ["toStageId"]
    answer = stub.MoveStageDeals(deals_service_pb2.MoveStageDealsRequest(from_stage_id=ids["New"], to_stage_id=ids["Won"]),
                                 metadata=_md(tenant))
    assert answer.moved == 2
    for deal_id in deals:
        deal = api.get(f"/v1/deals/{deal_id}", headers=h(tenant)).json()["data"]
        assert (deal["stageId"], deal["status"]) == (ids["Won"], "won")
    empty = stub.MoveStageDeals(deals_service_pb2.MoveStageDealsRequest(from_stage_id=ids["Offer"], to_stage_id=ids["New"]),
                                metadata=_md(tenant))
    assert empty.moved == 0


async def test_contact_deals_without_a_deals_service_say_so(stack: DevStack) -> None:
    """Contacts hosted alone (no deals address configured): the sub-list is 503 SERVICE_NOT_DEPLOYED."""
    settings = Settings.from_env(stack.service_env(CRM_GRPC_LISTEN="127.0.0.1:0", CRM_SERVICES="contacts"))
    host = Host(settings, load_modules(("contacts",)))
    await host.start()
    try:
        tenant = str(uuid.uuid4())
        md = (("authorization", f"Bearer {mint(stack, tenant_id=tenant, perms=['contacts:*', 'deals:read'])}"),
              ("x-tenant-id", tenant))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
            contacts = contacts_service_pb2_grpc.ContactsServiceStub(channel)
            made = await contacts.CreateContact(contacts_service_pb2.CreateContactRequest(
                contact=contact_pb2.Contact(first_name="Alone")), metadata=md)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await contacts.ListContactDeals(contacts_service_pb2.ListContactDealsRequest(id=made.id), metadata=md)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE and _reason(err.value) == "SERVICE_NOT_DEPLOYED"
    finally:
        await host.stop(grace=1.0)
