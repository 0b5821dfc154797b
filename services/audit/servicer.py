"""gRPC adapter of the audit service: decode, call the domain, encode."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
from crm.audit.v1 import audit_service_pb2 as pb
from crm.audit.v1 import audit_service_pb2_grpc as pb_grpc
from crm.common.v1 import common_pb2
from google.api import httpbody_pb2
from google.protobuf import json_format, struct_pb2, timestamp_pb2

from services.audit.domain import EXPORT_KIND, LIST_SPEC, PURGE_KIND, AuditDomain, period
from services.kernel import jobs, listing

Ctx = grpc.aio.ServicerContext[Any, Any]
_LIST_SKIP = {"page", "limit", "sort", "search", "pageToken"}


def _ts(value: dt.datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value)
    return out


def _value(value: Any) -> struct_pb2.Value:
    out = struct_pb2.Value()
    json_format.ParseDict(value, out)
    return out


def to_proto(row: Mapping[Any, Any]) -> pb.AuditLog:
    log = pb.AuditLog(
        id=str(row["id"]), sequence=row["seq"], occurred_at=_ts(row["occurred_at"]), actor_id=row["actor_id"],
        actor_type=row["actor_type"], action=row["action"], entity_type=row["entity_type"],
        entity_id=row["entity_id"], category=row["category"], event_type=row["event_type"],
        related=[pb.RelatedEntity(entity_type=r.get("entity_type", ""), entity_id=r.get("entity_id", ""),
                                  relation=r.get("relation", "")) for r in row["related"]],
        request_id=row["request_id"], client_ip=row["client_ip"], user_agent=row["user_agent"],
        previous_hash=row["prev_hash"], hash=row["hash"], source=row["source"],
    )
    for change in row["changes"]:
        item = log.changes.add(field=str(change.get("field", "")))
        if "before" in change:
            item.before.CopyFrom(_value(change["before"]))
        if "after" in change:
            item.after.CopyFrom(_value(change["after"]))
    log.metadata.update(row["metadata"])
    return log


def _counts(rows: Sequence[Mapping[str, Any]]) -> list[pb.CountItem]:
    return [pb.CountItem(key=str(r["key"]), count=int(r["count"])) for r in rows]


def _changes_in(changes: Sequence[pb.FieldChange]) -> list[dict[str, Any]]:
    out = []
    for c in changes:
        item: dict[str, Any] = {"field": c.field}
        if c.HasField("before"):
            item["before"] = json_format.MessageToDict(c.before)
        if c.HasField("after"):
            item["after"] = json_format.MessageToDict(c.after)
        out.append(item)
    return out


class AuditServicer(pb_grpc.AuditServiceServicer):
    def __init__(self, domain: AuditDomain) -> None:
        self.domain = domain

    async def CreateAuditLog(self, request: pb.CreateAuditLogRequest, context: Ctx) -> pb.AuditLog:
        row = await self.domain.create(action=request.action, entity_type=request.entity_type,
                                       entity_id=request.entity_id, changes=_changes_in(request.changes),
                                       metadata=json_format.MessageToDict(request.metadata))
        return to_proto(row)

    async def ListAuditLogs(self, request: pb.ListAuditLogsRequest, context: Ctx) -> pb.ListAuditLogsResponse:
        p = listing.params(page=request.page, limit=request.limit, sort=request.sort, search=request.search,
                           page_token=request.page_token)
        p.conditions = listing.conditions_from_request(request, LIST_SPEC, _LIST_SKIP)
        page = await self.domain.list_logs(p)
        return pb.ListAuditLogsResponse(logs=[to_proto(r._mapping) for r in page.rows], pagination=page.info())

    async def GetAuditLog(self, request: pb.GetAuditLogRequest, context: Ctx) -> pb.AuditLog:
        return to_proto(await self.domain.get(request.id))

    async def SearchAuditLogs(self, request: pb.SearchAuditLogsRequest, context: Ctx) -> pb.ListAuditLogsResponse:
        p = listing.params(page=request.page, limit=request.limit, sort=request.sort, search=request.query)
        p.conditions = listing.conditions_from_filters(request.filters)
        page = await self.domain.list_logs(p)
        return pb.ListAuditLogsResponse(logs=[to_proto(r._mapping) for r in page.rows], pagination=page.info())

    async def GetComplianceReport(self, request: pb.GetComplianceReportRequest, context: Ctx) -> pb.ComplianceReport:
        when = period(request.__getattribute__("from"), request.to)
        report = await self.domain.compliance(when)
        out = pb.ComplianceReport(
            sign_ins=report["sign_ins"], failed_sign_ins=report["failed"],
            failed_sign_ins_by_user=_counts(report["failed_by_user"]),
            permission_changes=[to_proto(r) for r in report["permission_changes"]],
            exports=[to_proto(r) for r in report["exports"]], deletions=_counts(report["deletions"]),
            security_events=_counts(report["security"]), to=_ts(when.end),
        )
        getattr(out, "from").CopyFrom(_ts(when.start))
        return out

    async def GetDataAccessReport(self, request: pb.GetDataAccessReportRequest, context: Ctx) -> pb.DataAccessReport:
        when = period(request.__getattribute__("from"), request.to)
        rows = await self.domain.data_access(when, request.entity_type, request.entity_id, request.actor_id)
        out = pb.DataAccessReport(to=_ts(when.end), accesses=[
            pb.DataAccess(actor_id=r["actor_id"], entity_type=r["entity_type"], entity_id=r["entity_id"],
                          access=r["access"], count=int(r["count"]), last_at=_ts(r["last_at"])) for r in rows])
        getattr(out, "from").CopyFrom(_ts(when.start))
        return out

    async def GetChangeReport(self, request: pb.GetChangeReportRequest, context: Ctx) -> pb.ChangeReport:
        when = period(request.__getattribute__("from"), request.to)
        rows = await self.domain.changes(when, request.entity_type, request.entity_id, request.actor_id)
        out = pb.ChangeReport(to=_ts(when.end), changes=[to_proto(r) for r in rows])
        getattr(out, "from").CopyFrom(_ts(when.start))
        return out

    async def ExportAuditLogs(self, request: pb.ExportAuditLogsRequest, context: Ctx) -> common_pb2.Job:
        when = period(request.__getattribute__("from"), request.to)
        job = await self.domain.start_export(request.format, when, listing.conditions_from_filters(request.filters))
        return jobs.to_proto(job)

    async def GetExportJob(self, request: pb.GetExportJobRequest, context: Ctx) -> common_pb2.Job:
        return jobs.to_proto(await self.domain.get_job(request.job_id, EXPORT_KIND))

    async def DownloadExport(self, request: pb.DownloadExportRequest, context: Ctx) -> httpbody_pb2.HttpBody:
        ctype, data = await self.domain.download(request.job_id)
        ext = "csv" if ctype.startswith("text/csv") else "jsonl"
        await context.send_initial_metadata((("content-disposition", f'attachment; filename="audit.{ext}"'),))
        return httpbody_pb2.HttpBody(content_type=ctype, data=data)

    async def GetDataLineage(self, request: pb.GetDataLineageRequest, context: Ctx) -> pb.DataLineage:
        found = await self.domain.lineage(request.entity_type, request.entity_id)

        def links(items: list[dict[str, Any]]) -> list[pb.LineageLink]:
            return [pb.LineageLink(entity_type=i["entity_type"], entity_id=i["entity_id"], relation=i["relation"],
                                   at=_ts(i["at"]), audit_log_id=i["audit_log_id"]) for i in items]

        out = pb.DataLineage(entity_type=request.entity_type, entity_id=request.entity_id, origin=found["origin"],
                             upstream=links(found["upstream"]), downstream=links(found["downstream"]),
                             history=[to_proto(r) for r in found["history"]])
        if found["created"] is not None:
            out.created_at.CopyFrom(_ts(found["created"]["occurred_at"]))
            out.created_by = found["created"]["actor_id"]
        return out

    async def GetRetentionPolicies(self, request: pb.GetRetentionPoliciesRequest, context: Ctx) -> pb.RetentionPolicies:
        return _policies(await self.domain.retention())

    async def UpdateRetentionPolicies(self, request: pb.UpdateRetentionPoliciesRequest,
                                      context: Ctx) -> pb.RetentionPolicies:
        return _policies(await self.domain.set_retention([(p.category, p.retention_days) for p in request.policies]))

    async def PurgeAuditData(self, request: pb.PurgeAuditDataRequest, context: Ctx) -> common_pb2.Job:
        return jobs.to_proto(await self.domain.start_purge(request.dry_run))

    async def VerifyAuditChain(self, request: pb.VerifyAuditChainRequest, context: Ctx) -> pb.VerifyAuditChainResponse:
        valid, checked, bad_id, bad_seq = await self.domain.verify()
        return pb.VerifyAuditChainResponse(valid=valid, checked=checked, first_invalid_id=bad_id,
                                           first_invalid_sequence=bad_seq)


def _policies(policies: dict[str, int]) -> pb.RetentionPolicies:
    return pb.RetentionPolicies(policies=[pb.RetentionPolicy(category=c, retention_days=d) for c, d in policies.items()])


__all__ = ["PURGE_KIND", "AuditServicer"]
