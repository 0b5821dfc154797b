"""The services the pipelines service calls: Deals (required for stage deletion and automation)
and Activities (optional: tasks made by automation). gRPC stays here, out of the domain."""

from __future__ import annotations

import datetime as dt
import importlib
from types import ModuleType
from typing import Any

from crm.activities.v1 import activity_pb2
from crm.deals.v1 import deal_pb2, deals_service_pb2, deals_service_pb2_grpc
from google.protobuf import field_mask_pb2

from services.kernel import context
from services.kernel.clients import ServiceClients, upstream

SELF = "crm.pipelines.v1.PipelinesService"
DEALS = "crm.deals.v1.DealsService"
ACTIVITIES = "crm.activities.v1.ActivitiesService"
CALL_TIMEOUT = 10.0


class DealsPeer:
    """Calls to the Deals service; background work acts as this service with named permissions."""

    def __init__(self, clients: ServiceClients) -> None:
        self.clients = clients

    def deployed(self) -> bool:
        return self.clients.deployed(DEALS)

    def _stub(self) -> deals_service_pb2_grpc.DealsServiceAsyncStub:
        return self.clients.stub(DEALS, deals_service_pb2_grpc.DealsServiceStub)

    def _as_service(self, *perms: str) -> tuple[tuple[str, str], ...]:
        return self.clients.as_service(SELF, context.tenant_id(), list(perms))

    async def count(self, *, pipeline_id: str = "", stage_id: str = "") -> int:
        """Deals of the tenant in a pipeline or stage (whatever the caller may see)."""
        with upstream():
            page = await self._stub().ListDeals(
                deals_service_pb2.ListDealsRequest(pipeline_id=pipeline_id, stage_id=stage_id, limit=1),
                metadata=self._as_service("deals:read"), timeout=CALL_TIMEOUT)
        return page.pagination.total

    async def move_stage_deals(self, from_stage_id: str, to_stage_id: str) -> int:
        with upstream():
            answer = await self._stub().MoveStageDeals(
                deals_service_pb2.MoveStageDealsRequest(from_stage_id=from_stage_id, to_stage_id=to_stage_id),
                metadata=self._as_service("deals:read", "deals:write"), timeout=60.0)
        return answer.moved

    async def get(self, deal_id: str, *, for_caller: bool) -> deal_pb2.Deal:
        """A deal as the current caller may see it (`for_caller`), or as this service."""
        md = ServiceClients.as_caller() if for_caller else self._as_service("deals:read")
        with upstream():
            deal: deal_pb2.Deal = await self._stub().GetDeal(deals_service_pb2.GetDealRequest(id=deal_id), metadata=md,
                                                            timeout=CALL_TIMEOUT)
        return deal

    async def update(self, deal_id: str, deal: deal_pb2.Deal, paths: list[str], *, validate_only: bool) -> deal_pb2.Deal:
        """Change `paths` of a deal as this service (or check the change, with `validate_only`)."""
        request = deals_service_pb2.UpdateDealRequest(id=deal_id, deal=deal, update_mask=field_mask_pb2.FieldMask(paths=paths),
                                                      validate_only=validate_only)
        with upstream():
            saved: deal_pb2.Deal = await self._stub().UpdateDeal(request, metadata=self._as_service("deals:read", "deals:write"),
                                                                timeout=CALL_TIMEOUT)
        return saved

    async def idle_in(self, stage_id: str, before: dt.datetime, *, limit: int = 100,
                      after: dt.datetime | None = None) -> list[deal_pb2.Deal]:
        """Deals that entered `stage_id` before `before` (and at or after `after`), oldest entry first."""
        request = deals_service_pb2.ListDealsRequest(stage_id=stage_id, limit=limit, sort="stageEnteredAt")
        request.stage_entered_before.FromDatetime(before)
        if after is not None:
            request.stage_entered_after.FromDatetime(after)
        with upstream():
            page = await self._stub().ListDeals(request, metadata=self._as_service("deals:read"), timeout=CALL_TIMEOUT)
        return list(page.deals)


class ActivitiesPeer:
    """Tasks through crm.activities.v1.ActivitiesService, when it is deployed and its contract is
    part of this build (it is looked up by name, so this service builds without it)."""

    def __init__(self, clients: ServiceClients) -> None:
        self.clients = clients

    @staticmethod
    def _contract() -> tuple[ModuleType, ModuleType] | None:
        try:
            return (importlib.import_module("crm.activities.v1.activities_service_pb2"),
                    importlib.import_module("crm.activities.v1.activities_service_pb2_grpc"))
        except ImportError:
            return None

    def unavailable(self) -> str:
        """Why tasks cannot be created, or "" when they can."""
        if not self.clients.deployed(ACTIVITIES) or self._contract() is None:
            return "the activities service is not deployed"
        return ""

    async def create_task(self, *, subject: str, body: str, due_at: dt.datetime | None, owner_id: str,
                          deal: deal_pb2.Deal) -> str:
        contract = self._contract()
        assert contract is not None
        messages, stubs = contract
        activity = activity_pb2.Activity(type="task", subject=subject, body=body, status="open", deal_id=deal.id,
                                         owner_id=owner_id, contact_id=deal.contact_id, account_id=deal.account_id)
        if due_at is not None:
            activity.due_at.FromDatetime(due_at)
        request: Any = messages.CreateActivityRequest(activity=activity)
        stub = self.clients.stub(ACTIVITIES, stubs.ActivitiesServiceStub)
        with upstream():
            made = await stub.CreateActivity(request, metadata=self.clients.as_service(
                SELF, context.tenant_id(), ["activities:read", "activities:write", "deals:read", "contacts:read",
                                            "accounts:read"]), timeout=CALL_TIMEOUT)
        return str(made.id)
