"""gRPC adapter of the accounts service: decode, call the domain, encode."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import grpc
from crm.accounts.v1 import account_pb2 as apb
from crm.accounts.v1 import accounts_service_pb2 as pb
from crm.accounts.v1 import accounts_service_pb2_grpc as pb_grpc
from google.protobuf import empty_pb2, json_format
from sqlalchemy.engine import RowMapping

from services.accounts.domain import LIST_SPEC, AccountsDomain, Hierarchy, merge_progress
from services.accounts.peers import GrpcPeers
from services.accounts.rules import WRITABLE_FIELDS
from services.kernel import jobs, listing
from services.kernel.db import Row

Ctx = grpc.aio.ServicerContext[Any, Any]
_LIST_SKIP = {"page", "limit", "sort", "search", "pageToken"}
_SNAKE = {"parentId": "parent_id", "ownerId": "owner_id", "employeeCount": "employee_count",
          "annualRevenue": "annual_revenue", "customFields": "custom_fields"}


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def to_proto(row: Mapping[Any, Any] | Row) -> apb.Account:
    revenue = row["annual_revenue"]
    account = apb.Account(
        id=str(row["id"]), name=row["name"], domain=row["domain"], industry=row["industry"],
        parent_id=_s(row["parent_id"]), territory=_s(row["territory"]), owner_id=_s(row["owner_id"]),
        website=row["website"], phone=row["phone"], description=row["description"],
        employee_count=row["employee_count"], annual_revenue="" if revenue is None else f"{revenue:.2f}",
        currency=row["currency"], tags=list(row["tags"]), address=apb.Address(**(row["address"] or {})),
        created_by=_s(row["created_by"]),
    )
    account.custom_fields.update(row["custom_fields"] or {})
    account.created_at.FromDatetime(row["created_at"])
    account.updated_at.FromDatetime(row["updated_at"])
    return account


def from_proto(account: apb.Account) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(account, name) for name in WRITABLE_FIELDS
                              if name not in ("tags", "address", "custom_fields")}
    values["tags"] = list(account.tags)
    values["address"] = json_format.MessageToDict(account.address, preserving_proto_field_name=True)
    values["custom_fields"] = json_format.MessageToDict(account.custom_fields)
    return values


def territory_to_proto(row: Mapping[Any, Any]) -> apb.Territory:
    out = apb.Territory(key=row["key"], name=row["name"], description=row["description"],
                        account_count=int(row["account_count"]))
    out.created_at.FromDatetime(row["created_at"])
    out.updated_at.FromDatetime(row["updated_at"])
    return out


def hierarchy_to_proto(h: Hierarchy) -> apb.AccountHierarchy:
    nodes: dict[Any, apb.AccountNode] = {}
    root = apb.AccountNode()
    # Breadth first, children by name: every parent is built before its children.
    for row in h.rows:
        parent = nodes.get(row["parent_id"]) if row["id"] != h.root_id else None
        if parent is None and row["id"] != h.root_id:
            continue  # under a node cut off by the size limit
        node = root if parent is None else parent.children.add()
        node.account.CopyFrom(to_proto(row))
        node.depth = row["depth"]
        nodes[row["id"]] = node
    depth = max((n.depth for n in nodes.values()), default=0) + 1
    return apb.AccountHierarchy(account_id=str(h.account_id), root_id=str(h.root_id), root=root,
                                node_count=len(nodes), depth=depth, truncated=h.truncated)


def territory_answer(row: Mapping[Any, Any], found: Mapping[Any, Any] | None) -> apb.AccountTerritory:
    return apb.AccountTerritory(account_id=str(row["id"]), territory=_s(row["territory"]),
                                details=territory_to_proto(found) if found else None)


def merge_to_proto(job: RowMapping, record: Mapping[Any, Any]) -> apb.MergeJob:
    base = jobs.to_proto(job)
    out = apb.MergeJob(
        job_id=base.job_id, status=base.status, progress=merge_progress(job, record), counts=base.counts,
        errors=base.errors, failure_reason=base.failure_reason, target_id=str(record["target_id"]),
        source_ids=[str(s) for s in record["source_ids"]],
        steps=[apb.MergeStep(name=s["name"], status=s["status"], moved=s["moved"], note=s["note"])
               for s in record["steps"]],
    )
    for name in ("created_at", "updated_at", "finished_at"):
        if base.HasField(name):
            getattr(out, name).CopyFrom(getattr(base, name))
    return out


def _page(rows: Sequence[Any]) -> list[apb.Account]:
    return [to_proto(listing.mapping(r)) for r in rows]


class AccountsServicer(pb_grpc.AccountsServiceServicer):
    def __init__(self, domain: AccountsDomain, peers: GrpcPeers) -> None:
        self.domain = domain
        self.peers = peers

    async def CreateAccount(self, request: pb.CreateAccountRequest, context: Ctx) -> apb.Account:
        return to_proto(await self.domain.create(from_proto(request.account)))

    async def GetAccount(self, request: pb.GetAccountRequest, context: Ctx) -> apb.Account:
        return to_proto(await self.domain.get(request.id))

    async def UpdateAccount(self, request: pb.UpdateAccountRequest, context: Ctx) -> apb.Account:
        mask = None
        if request.HasField("update_mask") and request.update_mask.paths:
            mask = {_SNAKE.get(p, p) for p in request.update_mask.paths}
        return to_proto(await self.domain.update(request.id, from_proto(request.account), mask))

    async def DeleteAccount(self, request: pb.DeleteAccountRequest, context: Ctx) -> empty_pb2.Empty:
        await self.domain.delete(request.id)
        return empty_pb2.Empty()

    async def ListAccounts(self, request: pb.ListAccountsRequest, context: Ctx) -> pb.ListAccountsResponse:
        p = listing.params(page=request.page, limit=request.limit, sort=request.sort, search=request.search,
                           page_token=request.page_token)
        p.conditions = listing.conditions_from_request(request, LIST_SPEC, _LIST_SKIP)
        page = await self.domain.list_accounts(p)
        return pb.ListAccountsResponse(accounts=_page(page.rows), pagination=page.info())

    async def GetAccountHierarchy(self, request: pb.GetAccountHierarchyRequest, context: Ctx) -> apb.AccountHierarchy:
        return hierarchy_to_proto(await self.domain.hierarchy(request.id))

    async def AddChildAccount(self, request: pb.AddChildAccountRequest, context: Ctx) -> apb.Account:
        values = from_proto(request.account) if request.HasField("account") else None
        return to_proto(await self.domain.add_child(request.id, request.child_id, values))

    async def ListChildAccounts(self, request: pb.ListChildAccountsRequest, context: Ctx) -> pb.ListAccountsResponse:
        p = listing.params(page=request.page, limit=request.limit, sort=request.sort or "name")
        page = await self.domain.children(request.id, p)
        return pb.ListAccountsResponse(accounts=_page(page.rows), pagination=page.info())

    async def GetParentAccount(self, request: pb.GetParentAccountRequest, context: Ctx) -> apb.AccountParent:
        row, parent = await self.domain.parent(request.id)
        return apb.AccountParent(account_id=str(row["id"]), parent_id=_s(row["parent_id"]),
                                 parent=to_proto(parent) if parent else None)

    async def SetParentAccount(self, request: pb.SetParentAccountRequest, context: Ctx) -> apb.Account:
        return to_proto(await self.domain.set_parent(request.id, request.parent_id))

    async def ListAccountContacts(self, request: pb.ListAccountContactsRequest, context: Ctx) -> pb.ListAccountContactsResponse:
        listing.params(page=request.page, limit=request.limit)  # 400 here, with this rpc's field names
        account = await self.domain.get(request.id)
        answer = await self.peers.list_for_account("contacts", "ListContacts", str(account["id"]), page=request.page,
                                                   limit=request.limit, sort=request.sort)
        return pb.ListAccountContactsResponse(contacts=answer.contacts, pagination=answer.pagination)

    async def ListAccountDeals(self, request: pb.ListAccountDealsRequest, context: Ctx) -> pb.ListAccountDealsResponse:
        listing.params(page=request.page, limit=request.limit)
        account = await self.domain.get(request.id)
        answer = await self.peers.list_for_account("deals", "ListDeals", str(account["id"]), page=request.page,
                                                   limit=request.limit)
        return pb.ListAccountDealsResponse(deals=answer.deals, pagination=answer.pagination)

    async def MergeAccounts(self, request: pb.MergeAccountsRequest, context: Ctx) -> apb.MergeJob:
        return merge_to_proto(*await self.domain.merge(request.target_id, list(request.source_ids)))

    async def GetMergeJob(self, request: pb.GetMergeJobRequest, context: Ctx) -> apb.MergeJob:
        return merge_to_proto(*await self.domain.get_merge(request.job_id))

    async def GetAccountTerritory(self, request: pb.GetAccountTerritoryRequest, context: Ctx) -> apb.AccountTerritory:
        return territory_answer(*await self.domain.territory(request.id))

    async def SetAccountTerritory(self, request: pb.SetAccountTerritoryRequest, context: Ctx) -> apb.AccountTerritory:
        return territory_answer(*await self.domain.set_territory(request.id, request.territory))

    async def ListTerritories(self, request: pb.ListTerritoriesRequest, context: Ctx) -> pb.ListTerritoriesResponse:
        p = listing.params(page=request.page, limit=request.limit, sort=request.sort, search=request.search)
        page = await self.domain.list_territories(p)
        return pb.ListTerritoriesResponse(territories=[territory_to_proto(r._mapping) for r in page.rows],
                                          pagination=page.info())

    async def CreateTerritory(self, request: pb.CreateTerritoryRequest, context: Ctx) -> apb.Territory:
        return territory_to_proto(await self.domain.create_territory(_territory_values(request.territory)))

    async def GetTerritory(self, request: pb.GetTerritoryRequest, context: Ctx) -> apb.Territory:
        return territory_to_proto(await self.domain.get_territory(request.key))

    async def UpdateTerritory(self, request: pb.UpdateTerritoryRequest, context: Ctx) -> apb.Territory:
        return territory_to_proto(await self.domain.update_territory(request.key, _territory_values(request.territory)))

    async def DeleteTerritory(self, request: pb.DeleteTerritoryRequest, context: Ctx) -> empty_pb2.Empty:
        await self.domain.delete_territory(request.key)
        return empty_pb2.Empty()


def _territory_values(territory: apb.Territory) -> dict[str, Any]:
    return {"key": territory.key, "name": territory.name, "description": territory.description}


__all__ = ["AccountsServicer"]
