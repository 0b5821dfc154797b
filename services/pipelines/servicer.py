"""gRPC adapter of the pipelines service: decode, call the domain, encode."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import grpc
from crm.pipelines.v1 import pipeline_pb2 as ppb
from crm.pipelines.v1 import pipelines_service_pb2 as pb
from crm.pipelines.v1 import pipelines_service_pb2_grpc as pb_grpc
from google.protobuf import empty_pb2, json_format

from services.kernel import listing
from services.pipelines.automation import Automation, outcome_struct
from services.pipelines.domain import PipelinesDomain, PipelineView

Ctx = grpc.aio.ServicerContext[Any, Any]


def stage_to_proto(row: Mapping[Any, Any], position: int) -> ppb.Stage:
    stage = ppb.Stage(id=str(row["id"]), name=row["name"], probability=row["probability"], position=position, kind=row["kind"])
    stage.created_at.FromDatetime(row["created_at"])
    stage.updated_at.FromDatetime(row["updated_at"])
    return stage


def pipeline_to_proto(row: Mapping[Any, Any], stage_rows: Sequence[Mapping[Any, Any]]) -> ppb.Pipeline:
    out = ppb.Pipeline(id=str(row["id"]), name=row["name"], description=row["description"], is_default=row["is_default"],
                       stages=[stage_to_proto(s, i) for i, s in enumerate(stage_rows)],
                       created_by=str(row["created_by"] or ""))
    out.created_at.FromDatetime(row["created_at"])
    out.updated_at.FromDatetime(row["updated_at"])
    return out


def view_to_proto(view: PipelineView) -> ppb.Pipeline:
    return pipeline_to_proto(view.row, view.stages)


def stage_values(stage: ppb.Stage) -> dict[str, Any]:
    return {"id": stage.id, "name": stage.name, "kind": stage.kind,
            "probability": stage.probability if stage.HasField("probability") else None,
            "position": stage.position if stage.HasField("position") else None}


def rule_values(rule: ppb.AutomationRule) -> dict[str, Any]:
    actions = []
    for action in rule.actions:
        kind = action.WhichOneof("action") or ""
        fields = json_format.MessageToDict(getattr(action, kind), preserving_proto_field_name=True) if kind else {}
        if kind == "set_field":
            fields["value"] = json_format.MessageToDict(action.set_field.value) if action.set_field.HasField("value") else None
        actions.append({"type": kind, **fields})
    return {"name": rule.name, "enabled": rule.enabled if rule.HasField("enabled") else None,
            "trigger": json_format.MessageToDict(rule.trigger, preserving_proto_field_name=True), "actions": actions}


def outcome_to_proto(outcome: Mapping[str, Any]) -> ppb.ActionOutcome:
    return ppb.ActionOutcome(type=outcome.get("type", ""), status=outcome.get("status", ""), detail=outcome.get("detail", ""),
                             changes=outcome_struct(outcome.get("changes")))


def rule_to_proto(row: Mapping[Any, Any], last_run: Mapping[Any, Any] | None) -> ppb.AutomationRule:
    actions = []
    for stored in row["actions"]:
        params = {k: v for k, v in stored.items() if k != "type"}
        action = ppb.Action()
        getattr(action, stored["type"]).SetInParent()
        if stored["type"] == "set_field":
            action.set_field.field = params.get("field", "")
            json_format.ParseDict(params.get("value"), action.set_field.value)  # type: ignore[arg-type]  # any JSON value
        else:
            json_format.ParseDict(params, getattr(action, stored["type"]), ignore_unknown_fields=True)
        actions.append(action)
    out = ppb.AutomationRule(id=str(row["id"]), pipeline_id=str(row["pipeline_id"]), name=row["name"], enabled=row["enabled"],
                             trigger=json_format.ParseDict(row["trigger"], ppb.Trigger()), actions=actions,
                             created_by=str(row["created_by"] or ""))
    out.created_at.FromDatetime(row["created_at"])
    out.updated_at.FromDatetime(row["updated_at"])
    if last_run is not None:
        out.last_run.CopyFrom(ppb.RuleRun(deal_id=str(last_run["deal_id"]), event_id=last_run["event_id"],
                                          status=last_run["status"],
                                          outcomes=[outcome_to_proto(o) for o in last_run["outcomes"]]))
        out.last_run.started_at.FromDatetime(last_run["started_at"])
    return out


class PipelinesServicer(pb_grpc.PipelinesServiceServicer):
    def __init__(self, domain: PipelinesDomain, automation: Automation) -> None:
        self.domain = domain
        self.automation = automation

    async def CreatePipeline(self, request: pb.CreatePipelineRequest, context: Ctx) -> ppb.Pipeline:
        p = request.pipeline
        view = await self.domain.create({"name": p.name, "description": p.description, "is_default": p.is_default},
                                        [stage_values(s) for s in p.stages])
        return view_to_proto(view)

    async def GetPipeline(self, request: pb.GetPipelineRequest, context: Ctx) -> ppb.Pipeline:
        return view_to_proto(await self.domain.get(request.id))

    async def UpdatePipeline(self, request: pb.UpdatePipelineRequest, context: Ctx) -> ppb.Pipeline:
        p = request.pipeline
        values = {"name": p.name, "description": p.description, "is_default": p.is_default}
        view = await self.domain.update(request.id, values, None, [stage_values(s) for s in p.stages])
        return view_to_proto(view)

    async def DeletePipeline(self, request: pb.DeletePipelineRequest, context: Ctx) -> empty_pb2.Empty:
        await self.domain.delete(request.id)
        return empty_pb2.Empty()

    async def ListPipelines(self, request: pb.ListPipelinesRequest, context: Ctx) -> pb.ListPipelinesResponse:
        p = listing.params(page=request.page, limit=request.limit, sort=request.sort, search=request.search,
                           page_token=request.page_token)
        page, stages = await self.domain.list(p)
        return pb.ListPipelinesResponse(
            pipelines=[pipeline_to_proto(row._mapping, stages[row._mapping["id"]]) for row in page.rows],
            pagination=page.info())

    async def CreateStage(self, request: pb.CreateStageRequest, context: Ctx) -> ppb.Stage:
        row, position = await self.domain.create_stage(request.id, stage_values(request.stage))
        return stage_to_proto(row, position)

    async def UpdateStage(self, request: pb.UpdateStageRequest, context: Ctx) -> ppb.Stage:
        row, position = await self.domain.update_stage(request.id, request.stage_id, stage_values(request.stage))
        return stage_to_proto(row, position)

    async def DeleteStage(self, request: pb.DeleteStageRequest, context: Ctx) -> pb.DeleteStageResponse:
        moved, view = await self.domain.delete_stage(request.id, request.stage_id, request.move_deals_to)
        return pb.DeleteStageResponse(moved_deals=moved, pipeline=view_to_proto(view))

    async def ReorderStages(self, request: pb.ReorderStagesRequest, context: Ctx) -> ppb.Pipeline:
        return view_to_proto(await self.domain.reorder(request.id, list(request.stage_ids)))

    async def CreateAutomationRule(self, request: pb.CreateAutomationRuleRequest, context: Ctx) -> ppb.AutomationRule:
        return rule_to_proto(await self.domain.create_rule(request.id, rule_values(request.rule)), None)

    async def ListAutomationRules(self, request: pb.ListAutomationRulesRequest, context: Ctx) -> pb.ListAutomationRulesResponse:
        page, last = await self.domain.list_rules(request.id, listing.params(page=request.page, limit=request.limit))
        return pb.ListAutomationRulesResponse(
            rules=[rule_to_proto(row._mapping, last.get(row._mapping["id"])) for row in page.rows], pagination=page.info())

    async def UpdateAutomationRule(self, request: pb.UpdateAutomationRuleRequest, context: Ctx) -> ppb.AutomationRule:
        row = await self.domain.update_rule(request.id, request.rule_id, rule_values(request.rule))
        return rule_to_proto(row, await self.domain.last_run(row["id"]))

    async def DeleteAutomationRule(self, request: pb.DeleteAutomationRuleRequest, context: Ctx) -> empty_pb2.Empty:
        await self.domain.delete_rule(request.id, request.rule_id)
        return empty_pb2.Empty()

    async def TestAutomationRule(self, request: pb.TestAutomationRuleRequest, context: Ctx) -> pb.TestAutomationRuleResponse:
        rule = await self.domain.get_rule(request.id, request.rule_id)
        view = await self.domain.get(request.id)
        names = {str(s["id"]): s["name"] for s in view.stages}
        matched, reason, outcomes = await self.automation.test(rule, request.deal_id, names)
        return pb.TestAutomationRuleResponse(matched=matched, reason=reason, dry_run=True,
                                             outcomes=[outcome_to_proto(o) for o in outcomes])
