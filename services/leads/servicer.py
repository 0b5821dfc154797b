"""gRPC adapter of the leads service: decode, call the domain, encode."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import grpc
from crm.common.v1 import common_pb2
from crm.leads.v1 import lead_pb2 as lpb
from crm.leads.v1 import leads_service_pb2 as pb
from crm.leads.v1 import leads_service_pb2_grpc as pb_grpc
from google.protobuf import empty_pb2, json_format
from sqlalchemy.engine import RowMapping

from services.kernel import listing
from services.kernel.errors import DomainError, FieldViolation, InvalidArgument, validation
from services.leads import capture
from services.leads.conversion import Conversions, Options, Outcome
from services.leads.domain import LIST_SPEC, LeadsDomain
from services.leads.forms import Forms
from services.leads.routing import Routing
from services.leads.rules import WRITABLE

Ctx = grpc.aio.ServicerContext[Any, Any]
_LIST_SKIP = {"page", "limit", "sort", "search", "pageToken", "minScore", "maxScore", "createdAfter", "createdBefore",
              "unassigned"}
_SNAKE = {"firstName": "first_name", "lastName": "last_name", "ownerId": "owner_id", "customFields": "custom_fields"}


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def lead_to_proto(row: RowMapping) -> lpb.Lead:
    lead = lpb.Lead(
        id=str(row["id"]), first_name=row["first_name"], last_name=row["last_name"], email=row["email"],
        phone=row["phone"], company=row["company"], title=row["title"], website=row["website"], source=row["source"],
        status=row["status"], score=row["score"], owner_id=_s(row["owner_id"]), territory=row["territory"],
        country=row["country"], description=row["description"], tags=list(row["tags"]),
        status_reason=row["status_reason"], converted_contact_id=_s(row["converted_contact_id"]),
        converted_account_id=_s(row["converted_account_id"]), converted_deal_id=_s(row["converted_deal_id"]),
        conversion_id=_s(row["conversion_id"]), created_by=_s(row["created_by"]),
    )
    lead.custom_fields.update(row["custom_fields"] or {})
    lead.capture.update(row["capture"] or {})
    for name, item in (row["enrichment"] or {}).items():
        value = lead.enrichment[name]
        value.value, value.source = str(item.get("value", "")), str(item.get("source", ""))
        value.inferred, value.applied = bool(item.get("inferred", True)), bool(item.get("applied", False))
        if item.get("inferredAt"):
            value.inferred_at.FromJsonString(str(item["inferredAt"]))
    for name in ("qualified_at", "converted_at", "created_at", "updated_at"):
        if row[name] is not None:
            getattr(lead, name).FromDatetime(row[name])
    return lead


def lead_from_proto(lead: lpb.Lead) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(lead, name) for name in WRITABLE if name not in ("tags", "custom_fields")}
    values["tags"] = list(lead.tags)
    values["custom_fields"] = json_format.MessageToDict(lead.custom_fields)
    return values


def form_to_proto(row: RowMapping) -> lpb.LeadForm:
    form = lpb.LeadForm(id=str(row["id"]), name=row["name"], key=row["key"], source=row["source"],
                        owner_id=_s(row["owner_id"]), honeypot_field=row["honeypot_field"],
                        rate_limit_per_minute=row["rate_limit_per_minute"], active=row["active"],
                        submission_count=row["submission_count"])
    form.created_at.FromDatetime(row["created_at"])
    form.updated_at.FromDatetime(row["updated_at"])
    return form


def form_values(form: lpb.LeadForm) -> dict[str, Any]:
    values: dict[str, Any] = {"name": form.name, "source": form.source, "owner_id": form.owner_id,
                              "honeypot_field": form.honeypot_field, "rate_limit_per_minute": form.rate_limit_per_minute}
    if form.HasField("active"):
        values["active"] = form.active
    return values


def rule_to_proto(row: RowMapping) -> lpb.AssignmentRule:
    rule = lpb.AssignmentRule(id=str(row["id"]), name=row["name"], priority=row["priority"], active=row["active"],
                              sources=list(row["sources"]), territories=list(row["territories"]),
                              countries=list(row["countries"]), team_id=_s(row["team_id"]),
                              user_ids=[str(u) for u in row["user_ids"]], max_open_leads=row["max_open_leads"])
    rule.created_at.FromDatetime(row["created_at"])
    rule.updated_at.FromDatetime(row["updated_at"])
    return rule


def rule_values(rule: lpb.AssignmentRule) -> dict[str, Any]:
    values: dict[str, Any] = {"name": rule.name, "priority": rule.priority, "sources": list(rule.sources),
                              "territories": list(rule.territories), "countries": list(rule.countries),
                              "team_id": rule.team_id, "user_ids": list(rule.user_ids), "max_open_leads": rule.max_open_leads}
    if rule.HasField("active"):
        values["active"] = rule.active
    return values


def _errors(violations: Iterable[FieldViolation]) -> list[common_pb2.ErrorDetail]:
    return [common_pb2.ErrorDetail(code=v.code, message=v.message, field=v.field) for v in violations]


def _domain_errors(err: DomainError, path: str) -> list[common_pb2.ErrorDetail]:
    if err.violations:
        return _errors(err.violations)
    return [common_pb2.ErrorDetail(code=err.reason, message=err.message, field=path)]


def outcome_to_proto(o: Outcome) -> pb.ConvertLeadResponse:
    return pb.ConvertLeadResponse(contact_id=o.contact_id, account_id=o.account_id, deal_id=o.deal_id,
                                  account_created=o.account_created, conversion_id=o.conversion_id, lead=lead_to_proto(o.lead))


def _day(raw: str, name: str) -> dt.date | None:
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw[:10])
    except ValueError:
        raise validation([FieldViolation(name, "must be a date (YYYY-MM-DD)")]) from None


class LeadsServicer(pb_grpc.LeadsServiceServicer):
    def __init__(self, domain: LeadsDomain, conversions: Conversions, forms: Forms, routing: Routing) -> None:
        self.domain, self.conversions, self.forms, self.routing = domain, conversions, forms, routing

    async def CreateLead(self, request: pb.CreateLeadRequest, context: Ctx) -> lpb.Lead:
        values = lead_from_proto(request.lead)
        if not request.lead.owner_id:
            values.pop("owner_id")  # the caller owns it
        return lead_to_proto(await self.domain.create(values))

    async def GetLead(self, request: pb.GetLeadRequest, context: Ctx) -> lpb.Lead:
        return lead_to_proto(await self.domain.get(request.id))

    async def UpdateLead(self, request: pb.UpdateLeadRequest, context: Ctx) -> lpb.Lead:
        mask = None
        if request.HasField("update_mask") and request.update_mask.paths:
            mask = {_SNAKE.get(p, p) for p in request.update_mask.paths}
        return lead_to_proto(await self.domain.update(request.id, lead_from_proto(request.lead), mask))

    async def DeleteLead(self, request: pb.DeleteLeadRequest, context: Ctx) -> empty_pb2.Empty:
        await self.domain.delete(request.id)
        return empty_pb2.Empty()

    async def ListLeads(self, request: pb.ListLeadsRequest, context: Ctx) -> pb.ListLeadsResponse:
        p = listing.params(page=request.page, limit=request.limit, sort=request.sort, search=request.search,
                           page_token=request.page_token)
        p.conditions = listing.conditions_from_request(request, LIST_SPEC, _LIST_SKIP)
        if request.HasField("min_score"):
            p.conditions.append(listing.Condition("score", "gte", request.min_score, "minScore"))
        if request.HasField("max_score"):
            p.conditions.append(listing.Condition("score", "lte", request.max_score, "maxScore"))
        if request.HasField("min_score") and request.HasField("max_score") and request.min_score > request.max_score:
            raise InvalidArgument("empty score range", violations=[FieldViolation("minScore", "must not exceed maxScore", "OUT_OF_RANGE")])
        for name, op, ts in (("createdAfter", "gte", request.created_after), ("createdBefore", "lt", request.created_before)):
            if request.HasField("created_after" if name == "createdAfter" else "created_before"):
                p.conditions.append(listing.Condition("createdAt", op, ts.ToJsonString(), name))
        page = await self.domain.list(p, request.unassigned if request.HasField("unassigned") else None)
        return pb.ListLeadsResponse(leads=[lead_to_proto(r._mapping) for r in page.rows], pagination=page.info())

    async def QualifyLead(self, request: pb.QualifyLeadRequest, context: Ctx) -> lpb.Lead:
        return lead_to_proto(await self.domain.qualify(request.id, request.status, request.reason))

    async def ConvertLead(self, request: pb.ConvertLeadRequest, context: Ctx) -> pb.ConvertLeadResponse:
        options = Options(create_deal=request.create_deal, pipeline_id=request.pipeline_id, stage_id=request.stage_id,
                          deal_name=request.deal_name, account_id=request.account_id, amount=request.amount,
                          currency=request.currency)
        return outcome_to_proto(await self.conversions.convert(request.id, options))

    async def ScoreLead(self, request: pb.ScoreLeadRequest, context: Ctx) -> lpb.Lead:
        return lead_to_proto(await self.domain.score(request.id, request.score, request.reason))

    async def ListScoringHistory(self, request: pb.ListScoringHistoryRequest, context: Ctx) -> pb.ListScoringHistoryResponse:
        page = await self.domain.scoring_history(request.id, listing.params(page=request.page, limit=request.limit))
        history = []
        for r in page.rows:
            m = r._mapping
            entry = lpb.ScoreChange(id=str(m["id"]), lead_id=str(m["lead_id"]), previous_score=m["previous_score"],
                                    score=m["score"], reason=m["reason"], source=m["source"], changed_by=_s(m["changed_by"]))
            entry.changed_at.FromDatetime(m["changed_at"])
            history.append(entry)
        return pb.ListScoringHistoryResponse(history=history, pagination=page.info())

    async def BulkQualifyLeads(self, request: pb.BulkQualifyLeadsRequest, context: Ctx) -> pb.BulkLeadsResponse:
        results = await self.domain.bulk_qualify(list(request.ids), request.status, request.reason)
        out = [pb.BulkLeadResult(index=r.index, success=r.success, id=r.id, lead=lead_to_proto(r.row) if r.row else None,
                                 errors=_errors(r.errors)) for r in results]
        ok = sum(r.success for r in results)
        return pb.BulkLeadsResponse(results=out, succeeded=ok, failed=len(results) - ok)

    async def BulkConvertLeads(self, request: pb.BulkConvertLeadsRequest, context: Ctx) -> pb.BulkConvertLeadsResponse:
        options = Options(create_deal=request.create_deal, pipeline_id=request.pipeline_id, stage_id=request.stage_id,
                          account_id=request.account_id, currency=request.currency)
        results = await self.conversions.bulk_convert(list(request.ids), options)
        out = [pb.BulkConvertResult(index=i, success=o is not None, id=raw,
                                    conversion=outcome_to_proto(o) if o is not None else None,
                                    errors=_domain_errors(e, f"ids[{i}]") if e is not None else [])
               for i, raw, o, e in results]
        ok = sum(o is not None for _, _, o, _ in results)
        return pb.BulkConvertLeadsResponse(results=out, succeeded=ok, failed=len(results) - ok)

    async def CaptureWebForm(self, request: pb.CaptureWebFormRequest, context: Ctx) -> pb.CaptureWebFormResponse:
        fields = json_format.MessageToDict(request.fields)
        receipt = await self.forms.submit(request.form_key, fields, request.page_url)
        return pb.CaptureWebFormResponse(accepted=True, receipt_id=receipt)

    async def CaptureEmail(self, request: pb.CaptureEmailRequest, context: Ctx) -> lpb.Lead:
        try:
            captured = capture.from_email(request.message.data)
        except capture.CaptureError as exc:
            raise InvalidArgument(exc.message, violations=[FieldViolation(exc.field, exc.message, exc.code)]) from None
        source = request.source.strip().lower() or "email"
        return lead_to_proto(await self.domain.capture(captured, source=source, strict=False))

    async def CaptureSocial(self, request: pb.CaptureSocialRequest, context: Ctx) -> lpb.Lead:
        profile = json_format.MessageToDict(request.profile, preserving_proto_field_name=True)
        try:
            captured = capture.from_social(request.network, profile)
        except capture.CaptureError as exc:
            raise validation([FieldViolation(exc.field, exc.message, exc.code)]) from None
        return lead_to_proto(await self.domain.capture(captured, source=f"social:{captured.capture['network']}", strict=False))

    async def EnrichLeads(self, request: pb.EnrichLeadsRequest, context: Ctx) -> pb.EnrichLeadsResponse:
        results = await self.domain.enrich(list(request.ids))
        out = [pb.EnrichResult(index=r.index, success=r.success, id=r.id, inferred_fields=r.extra,
                               lead=lead_to_proto(r.row) if r.row else None, errors=_errors(r.errors)) for r in results]
        ok = sum(r.success for r in results)
        return pb.EnrichLeadsResponse(results=out, succeeded=ok, failed=len(results) - ok)

    async def AssignLeads(self, request: pb.AssignLeadsRequest, context: Ctx) -> pb.AssignLeadsResponse:
        outcomes = await self.routing.assign(list(request.ids), dry_run=request.dry_run, reassign=request.reassign)
        out = [pb.AssignResult(index=o.index, success=bool(o.owner_id), id=o.id, owner_id=o.owner_id, rule_id=o.rule_id,
                               errors=_errors(o.errors)) for o in outcomes]
        assigned = sum(bool(o.owner_id) for o in outcomes)
        return pb.AssignLeadsResponse(results=out, assigned=assigned, unassigned=len(outcomes) - assigned,
                                      dry_run=request.dry_run)

    async def GetLeadSources(self, request: pb.GetLeadSourcesRequest, context: Ctx) -> pb.LeadSources:
        end = _day(request.to, "to") or dt.datetime.now(dt.UTC).date()
        # `from` is a Python keyword, hence getattr.
        start = _day(getattr(request, "from"), "from") or end - dt.timedelta(days=29)
        if start > end:
            raise validation([FieldViolation("from", "must not be after `to`", "OUT_OF_RANGE")])
        if (end - start).days > 3660:
            raise validation([FieldViolation("from", "the period can be at most 10 years", "OUT_OF_RANGE")])
        rows = await self.domain.sources(start, end)
        stats = []
        total = pb.SourceStats(source="")
        for row in rows:
            s = pb.SourceStats(source=row["source"] or "", leads=row["leads"], qualified=row["qualified"],
                               converted=row["converted"],
                               conversion_rate=round(row["converted"] / row["leads"], 4) if row["leads"] else 0.0,
                               average_score=round(float(row["average_score"]), 2))
            if row["source"] is None:
                total = s
            else:
                stats.append(s)
        answer = pb.LeadSources(sources=stats, total=total)
        setattr(answer, "from", start.isoformat())
        answer.to = end.isoformat()
        return answer

    async def CreateLeadForm(self, request: pb.CreateLeadFormRequest, context: Ctx) -> lpb.LeadForm:
        return form_to_proto(await self.forms.create(form_values(request.form)))

    async def ListLeadForms(self, request: pb.ListLeadFormsRequest, context: Ctx) -> pb.ListLeadFormsResponse:
        page = await self.forms.list(listing.params(page=request.page, limit=request.limit))
        return pb.ListLeadFormsResponse(forms=[form_to_proto(r._mapping) for r in page.rows], pagination=page.info())

    async def GetLeadForm(self, request: pb.GetLeadFormRequest, context: Ctx) -> lpb.LeadForm:
        return form_to_proto(await self.forms.get(request.id))

    async def UpdateLeadForm(self, request: pb.UpdateLeadFormRequest, context: Ctx) -> lpb.LeadForm:
        return form_to_proto(await self.forms.update(request.id, form_values(request.form)))

    async def DeleteLeadForm(self, request: pb.DeleteLeadFormRequest, context: Ctx) -> empty_pb2.Empty:
        await self.forms.delete(request.id)
        return empty_pb2.Empty()

    async def RotateLeadFormKey(self, request: pb.RotateLeadFormKeyRequest, context: Ctx) -> lpb.LeadForm:
        return form_to_proto(await self.forms.rotate(request.id))

    async def CreateAssignmentRule(self, request: pb.CreateAssignmentRuleRequest, context: Ctx) -> lpb.AssignmentRule:
        return rule_to_proto(await self.routing.create_rule(rule_values(request.rule)))

    async def ListAssignmentRules(self, request: pb.ListAssignmentRulesRequest, context: Ctx) -> pb.ListAssignmentRulesResponse:
        page = await self.routing.list_rules(listing.params(page=request.page, limit=request.limit))
        return pb.ListAssignmentRulesResponse(rules=[rule_to_proto(r._mapping) for r in page.rows], pagination=page.info())

    async def GetAssignmentRule(self, request: pb.GetAssignmentRuleRequest, context: Ctx) -> lpb.AssignmentRule:
        return rule_to_proto(await self.routing.get_rule(request.id))

    async def UpdateAssignmentRule(self, request: pb.UpdateAssignmentRuleRequest, context: Ctx) -> lpb.AssignmentRule:
        return rule_to_proto(await self.routing.update_rule(request.id, rule_values(request.rule)))

    async def DeleteAssignmentRule(self, request: pb.DeleteAssignmentRuleRequest, context: Ctx) -> empty_pb2.Empty:
        await self.routing.delete_rule(request.id)
        return empty_pb2.Empty()

