"""gRPC adapter of the deals service: decode, call the domain, encode."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import grpc
from crm.common.v1 import common_pb2
from crm.deals.v1 import deal_pb2 as dpb
from crm.deals.v1 import deals_service_pb2 as pb
from crm.deals.v1 import deals_service_pb2_grpc as pb_grpc
from google.protobuf import empty_pb2, json_format

from services.deals import rules
from services.deals.analytics import Analytics
from services.deals.domain import LIST_SPEC, BulkResult, DealsDomain
from services.kernel import listing
from services.kernel.errors import FieldViolation, InvalidArgument

Ctx = grpc.aio.ServicerContext[Any, Any]
_LIST_SKIP = {"page", "limit", "sort", "search", "pageToken", "expectedCloseFrom", "expectedCloseTo", "amountMin", "amountMax"}
# Range parameters: (request field, its API name, the list field it bounds, operator).
_RANGES = (("expected_close_from", "expectedCloseFrom", "expectedCloseDate", "gte"),
           ("expected_close_to", "expectedCloseTo", "expectedCloseDate", "lte"),
           ("amount_min", "amountMin", "amount", "gte"), ("amount_max", "amountMax", "amount", "lte"))


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def to_proto(row: Mapping[Any, Any]) -> dpb.Deal:
    deal = dpb.Deal(
        id=str(row["id"]), name=row["name"], amount=rules.money(row["amount"]), currency=row["currency"],
        pipeline_id=str(row["pipeline_id"]), stage_id=str(row["stage_id"]), account_id=_s(row["account_id"]),
        contact_id=_s(row["contact_id"]),
        expected_close_date=row["expected_close_date"].isoformat() if row["expected_close_date"] else "",
        status=row["status"], owner_id=str(row["owner_id"]), forecast_category=row["forecast_category"],
        lost_reason=row["lost_reason"], description=row["description"], created_by=_s(row["created_by"]),
    )
    deal.custom_fields.update(row["custom_fields"] or {})
    deal.created_at.FromDatetime(row["created_at"])
    deal.updated_at.FromDatetime(row["updated_at"])
    deal.stage_entered_at.FromDatetime(row["stage_entered_at"])
    if row["closed_at"] is not None:
        deal.closed_at.FromDatetime(row["closed_at"])
    return deal


def from_proto(deal: dpb.Deal) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(deal, name) for name in rules.WRITABLE if name != "custom_fields"}
    values["custom_fields"] = json_format.MessageToDict(deal.custom_fields)
    values["status"] = deal.status
    return values


def history_to_proto(row: Mapping[Any, Any]) -> dpb.DealStageChange:
    entry = dpb.DealStageChange(
        id=str(row["id"]), deal_id=str(row["deal_id"]), pipeline_id=str(row["pipeline_id"]),
        from_pipeline_id=_s(row["from_pipeline_id"]), from_stage_id=_s(row["from_stage_id"]),
        from_stage_name=row["from_stage_name"], to_stage_id=str(row["to_stage_id"]), to_stage_name=row["to_stage_name"],
        from_status=row["from_status"], to_status=row["to_status"], changed_by=_s(row["changed_by"]),
        time_in_stage_seconds=min(int(row["time_in_stage_seconds"]), 2**31 - 1),
    )
    entry.changed_at.FromDatetime(row["changed_at"])
    return entry


def _errors(violations: list[FieldViolation]) -> list[common_pb2.ErrorDetail]:
    return [common_pb2.ErrorDetail(code=v.code, message=v.message, field=v.field) for v in violations]


def _bulk(r: BulkResult) -> pb.BulkDealResult:
    return pb.BulkDealResult(index=r.index, success=r.success, id=r.id, deal=to_proto(r.row) if r.row else None,
                             errors=_errors(r.errors))


def _amounts(currency: str, a: rules.Amounts) -> pb.ForecastAmounts:
    return pb.ForecastAmounts(currency=currency, **a.shown())


class DealsServicer(pb_grpc.DealsServiceServicer):
    def __init__(self, domain: DealsDomain, analytics: Analytics) -> None:
        self.domain = domain
        self.analytics = analytics

    async def CreateDeal(self, request: pb.CreateDealRequest, context: Ctx) -> dpb.Deal:
        return to_proto(await self.domain.create(from_proto(request.deal)))

    async def GetDeal(self, request: pb.GetDealRequest, context: Ctx) -> dpb.Deal:
        return to_proto(await self.domain.get(request.id))

    async def UpdateDeal(self, request: pb.UpdateDealRequest, context: Ctx) -> dpb.Deal:
        mask = None
        if request.HasField("update_mask") and request.update_mask.paths:
            mask = {rules.snake(p) for p in request.update_mask.paths}
        row = await self.domain.update(request.id, from_proto(request.deal), mask, validate_only=request.validate_only)
        return to_proto(row)

    async def DeleteDeal(self, request: pb.DeleteDealRequest, context: Ctx) -> empty_pb2.Empty:
        await self.domain.delete(request.id)
        return empty_pb2.Empty()

    async def ListDeals(self, request: pb.ListDealsRequest, context: Ctx) -> pb.ListDealsResponse:
        p = listing.params(page=request.page, limit=request.limit, sort=request.sort, search=request.search,
                           page_token=request.page_token)
        if request.status and request.status not in rules.STATUSES:
            raise InvalidArgument("bad status", violations=[FieldViolation("status", "must be open, won or lost")])
        p.conditions = listing.conditions_from_request(request, LIST_SPEC, _LIST_SKIP)
        for attr, name, target, op in _RANGES:
            value = getattr(request, attr)
            if value:
                p.conditions.append(listing.Condition(target, op, value, name))
        page = await self.domain.list(p)
        return pb.ListDealsResponse(deals=[to_proto(r._mapping) for r in page.rows], pagination=page.info())

    async def MoveDealStage(self, request: pb.MoveDealStageRequest, context: Ctx) -> dpb.Deal:
        return to_proto(await self.domain.move_stage(request.id, request.stage_id, request.lost_reason))

    async def ListDealHistory(self, request: pb.ListDealHistoryRequest, context: Ctx) -> pb.ListDealHistoryResponse:
        page = await self.domain.history(request.id, listing.params(page=request.page, limit=request.limit))
        return pb.ListDealHistoryResponse(history=[history_to_proto(r._mapping) for r in page.rows], pagination=page.info())

    async def CloneDeal(self, request: pb.CloneDealRequest, context: Ctx) -> dpb.Deal:
        return to_proto(await self.domain.clone(request.id, request.name, request.stage_id, request.owner_id))

    async def GetForecast(self, request: pb.GetForecastRequest, context: Ctx) -> pb.Forecast:
        result = await self.analytics.forecast(getattr(request, "from"), request.to, request.period, request.pipeline_id,
                                               request.owner_id, request.currency)
        out = pb.Forecast(period=result.unit, to=result.last.isoformat(),
                          periods=[pb.ForecastPeriod(period=p.key, start=p.start.isoformat(), end=p.end.isoformat(),
                                                     amounts=[_amounts(c, a) for c, a in sorted(by.items())])
                                   for p, by in result.periods],
                          totals=[_amounts(c, a) for c, a in result.totals.items()])
        setattr(out, "from", result.first.isoformat())
        return out

    async def GetPipelineBoard(self, request: pb.GetPipelineBoardRequest, context: Ctx) -> pb.PipelineBoard:
        pipeline, columns = await self.domain.board(request.pipeline_id, request.limit_per_stage, request.owner_id)
        limit = request.limit_per_stage or 20
        return pb.PipelineBoard(pipeline_id=pipeline.id, name=pipeline.name, limit_per_stage=limit, stages=[
            pb.BoardColumn(stage_id=c.stage.id, name=c.stage.name, position=c.stage.position, kind=c.stage.kind,
                           probability=c.stage.probability, deal_count=c.count, has_more=c.count > len(c.rows),
                           totals=[pb.MoneyTotal(currency=t["currency"], amount=rules.money(Decimal(t["amount"])),
                                                 count=t["count"]) for t in c.totals],
                           deals=[to_proto(r) for r in c.rows])
            for c in columns])

    async def BulkUpdateDeals(self, request: pb.BulkUpdateDealsRequest, context: Ctx) -> pb.BulkUpdateDealsResponse:
        results = await self.domain.bulk_update(list(request.ids), json_format.MessageToDict(request.changes))
        ok = sum(r.success for r in results)
        return pb.BulkUpdateDealsResponse(results=[_bulk(r) for r in results], succeeded=ok, failed=len(results) - ok)

    async def GetConversionAnalytics(self, request: pb.GetConversionAnalyticsRequest, context: Ctx) -> pb.ConversionAnalytics:
        found = await self.analytics.conversion(request.pipeline_id, getattr(request, "from"), request.to, request.owner_id)
        return json_format.ParseDict(found, pb.ConversionAnalytics())

    async def GetVelocityAnalytics(self, request: pb.GetVelocityAnalyticsRequest, context: Ctx) -> pb.VelocityAnalytics:
        found = await self.analytics.velocity(request.pipeline_id, getattr(request, "from"), request.to, request.owner_id)
        return json_format.ParseDict(found, pb.VelocityAnalytics())

    async def GetWinLossAnalytics(self, request: pb.GetWinLossAnalyticsRequest, context: Ctx) -> pb.WinLossAnalytics:
        found = await self.analytics.win_loss(getattr(request, "from"), request.to, request.pipeline_id, request.owner_id)
        return json_format.ParseDict(found, pb.WinLossAnalytics())

    async def GetForecastAnalytics(self, request: pb.GetForecastAnalyticsRequest, context: Ctx) -> pb.ForecastAnalytics:
        unit, first, last, periods = await self.analytics.forecast_accuracy(
            getattr(request, "from"), request.to, request.period, request.pipeline_id, request.owner_id)
        out = pb.ForecastAnalytics(period=unit, to=last.isoformat())
        setattr(out, "from", first.isoformat())
        for acc in periods:
            period = out.periods.add(period=acc.period.key, start=acc.period.start.isoformat(), end=acc.period.end.isoformat(),
                                     snapshot_date=acc.snapshot.isoformat() if acc.snapshot else "", snapshot_late=acc.late)
            for row in acc.rows:
                amounts = period.amounts.add(currency=row.currency, actual_won=rules.money(row.actual))
                if row.forecast_weighted is not None:
                    amounts.forecast_weighted = rules.money(row.forecast_weighted)
                    amounts.forecast_commit = rules.money(row.forecast_commit or Decimal(0))
                    amounts.forecast_best_case = rules.money(row.forecast_best_case or Decimal(0))
                    amounts.variance = rules.money(row.actual - row.forecast_weighted)
                    accuracy = rules.accuracy_percent(row.forecast_weighted, row.actual)
                    if accuracy is not None:
                        amounts.accuracy_percent = accuracy
        return out

    async def GetPerformanceAnalytics(self, request: pb.GetPerformanceAnalyticsRequest,
                                      context: Ctx) -> pb.PerformanceAnalytics:
        found = await self.analytics.performance(getattr(request, "from"), request.to, request.pipeline_id)
        return json_format.ParseDict(found, pb.PerformanceAnalytics())

    async def MoveStageDeals(self, request: pb.MoveStageDealsRequest, context: Ctx) -> pb.MoveStageDealsResponse:
        return pb.MoveStageDealsResponse(moved=await self.domain.move_stage_deals(request.from_stage_id, request.to_stage_id))

    async def ReassignAccount(self, request: pb.ReassignAccountRequest, context: Ctx) -> pb.ReassignAccountResponse:
        moved = await self.domain.reassign_account(list(request.from_account_ids), request.to_account_id)
        return pb.ReassignAccountResponse(reassigned=moved)

