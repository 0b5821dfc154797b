"""gRPC adapter of the contacts service: decode, call the domain, encode."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
from crm.activities.v1 import activities_service_pb2, activities_service_pb2_grpc
from crm.common.v1 import common_pb2
from crm.contacts.v1 import contact_pb2 as cpb
from crm.contacts.v1 import contacts_service_pb2 as pb
from crm.contacts.v1 import contacts_service_pb2_grpc as pb_grpc
from crm.deals.v1 import deals_service_pb2, deals_service_pb2_grpc
from google.api import httpbody_pb2
from google.protobuf import empty_pb2, json_format, timestamp_pb2
from sqlalchemy.engine import RowMapping

from services.contacts import tabular
from services.contacts.domain import LIST_SPEC, ContactsDomain, parse_id
from services.contacts.rules import WRITABLE_FIELDS
from services.kernel import jobs, listing
from services.kernel.clients import ServiceClients, remote_error, upstream
from services.kernel.db import Row
from services.kernel.errors import FieldViolation, InvalidArgument, Unavailable

Ctx = grpc.aio.ServicerContext[Any, Any]
_LIST_SKIP = {"page", "limit", "sort", "search", "pageToken"}
ACTIVITIES = "crm.activities.v1.ActivitiesService"
_SNAKE = {"firstName": "first_name", "lastName": "last_name", "accountId": "account_id", "ownerId": "owner_id",
          "lifecycleStage": "lifecycle_stage", "customFields": "custom_fields"}


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def to_proto(row: Row) -> cpb.Contact:
    contact = cpb.Contact(
        id=str(row["id"]), first_name=row["first_name"], last_name=row["last_name"], email=row["email"],
        phone=row["phone"], title=row["title"], company=row["company"], account_id=_s(row["account_id"]),
        owner_id=_s(row["owner_id"]), lifecycle_stage=row["lifecycle_stage"], source=row["source"],
        tags=list(row["tags"]), address=cpb.Address(**(row["address"] or {})), created_by=_s(row["created_by"]),
    )
    contact.custom_fields.update(row["custom_fields"] or {})
    _stamp(contact.created_at, row["created_at"])
    _stamp(contact.updated_at, row["updated_at"])
    return contact


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICRO = dt.timedelta(microseconds=1)


def _stamp(ts: timestamp_pb2.Timestamp, when: dt.datetime) -> None:
    """`ts.FromDatetime(when)` for an aware datetime, without its time-tuple detour (a get's
    answer has two of them)."""
    seconds, micros = divmod((when - _EPOCH) // _MICRO, 1_000_000)
    ts.seconds, ts.nanos = seconds, micros * 1000


def from_proto(contact: cpb.Contact) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(contact, name) for name in WRITABLE_FIELDS
                              if name not in ("tags", "address", "custom_fields")}
    values["tags"] = list(contact.tags)
    values["address"] = json_format.MessageToDict(contact.address, preserving_proto_field_name=True)
    values["custom_fields"] = json_format.MessageToDict(contact.custom_fields)
    return values


def rel_to_proto(row: RowMapping) -> cpb.Relationship:
    rel = cpb.Relationship(id=str(row["id"]), contact_id=str(row["contact_id"]),
                           related_contact_id=str(row["related_contact_id"]), type=row["type"], notes=row["notes"])
    rel.created_at.FromDatetime(row["created_at"])
    rel.updated_at.FromDatetime(row["updated_at"])
    return rel


def _errors(violations: list[FieldViolation]) -> list[common_pb2.ErrorDetail]:
    return [common_pb2.ErrorDetail(code=v.code, message=v.message, field=v.field) for v in violations]


class ContactsServicer(pb_grpc.ContactsServiceServicer):
    def __init__(self, domain: ContactsDomain, clients: ServiceClients | None = None) -> None:
        self.domain = domain
        self.clients = clients

    async def CreateContact(self, request: pb.CreateContactRequest, context: Ctx) -> cpb.Contact:
        return to_proto(await self.domain.create(from_proto(request.contact)))

    async def GetContact(self, request: pb.GetContactRequest, context: Ctx) -> cpb.Contact:
        return to_proto(await self.domain.get(request.id))

    async def UpdateContact(self, request: pb.UpdateContactRequest, context: Ctx) -> cpb.Contact:
        mask = None
        if request.HasField("update_mask") and request.update_mask.paths:
            mask = {_SNAKE.get(p, p) for p in request.update_mask.paths}
        return to_proto(await self.domain.update(request.id, from_proto(request.contact), mask))

    async def DeleteContact(self, request: pb.DeleteContactRequest, context: Ctx) -> empty_pb2.Empty:
        await self.domain.delete(request.id)
        return empty_pb2.Empty()

    async def ListContacts(self, request: pb.ListContactsRequest, context: Ctx) -> pb.ListContactsResponse:
        p = listing.params(page=request.page, limit=request.limit, sort=request.sort, search=request.search,
                           page_token=request.page_token)
        p.conditions = listing.conditions_from_request(request, LIST_SPEC, _LIST_SKIP)
        page = await self.domain.list(p)
        return pb.ListContactsResponse(contacts=[to_proto(r) for r in page.rows], pagination=page.info())

    async def SearchContacts(self, request: pb.SearchContactsRequest, context: Ctx) -> pb.ListContactsResponse:
        p = listing.params(page=request.page, limit=request.limit, sort=request.sort, search=request.query)
        p.conditions = listing.conditions_from_filters(request.filters)
        page = await self.domain.list(p)
        return pb.ListContactsResponse(contacts=[to_proto(r) for r in page.rows], pagination=page.info())

    async def BulkUpsertContacts(self, request: pb.BulkUpsertContactsRequest, context: Ctx) -> pb.BulkUpsertContactsResponse:
        results = await self.domain.bulk_upsert([(item.id, from_proto(item), None) for item in request.items])
        out = [pb.BulkContactResult(index=r.index, success=r.success, id=r.id, created=r.created,
                                    contact=to_proto(r.row) if r.row else None, errors=_errors(r.errors)) for r in results]
        ok = sum(r.success for r in results)
        return pb.BulkUpsertContactsResponse(results=out, succeeded=ok, failed=len(results) - ok)

    async def BulkDeleteContacts(self, request: pb.BulkDeleteContactsRequest, context: Ctx) -> pb.BulkDeleteContactsResponse:
        results = await self.domain.bulk_delete(list(request.ids))
        out = [pb.BulkContactResult(index=r.index, success=r.success, id=r.id, errors=_errors(r.errors)) for r in results]
        ok = sum(r.success for r in results)
        return pb.BulkDeleteContactsResponse(results=out, succeeded=ok, failed=len(results) - ok)

    async def ListContactActivities(self, request: pb.ListContactActivitiesRequest, context: Ctx) -> pb.ListContactActivitiesResponse:
        await self.domain.exists(request.id)
        if self.clients is None or not self.clients.deployed(ACTIVITIES):
            raise Unavailable("the activities service is not deployed", reason="SERVICE_NOT_DEPLOYED")
        stub = self.clients.stub(ACTIVITIES, activities_service_pb2_grpc.ActivitiesServiceStub)
        try:
            page = await stub.ListActivities(
                activities_service_pb2.ListActivitiesRequest(contact_id=request.id, page=request.page, limit=request.limit),
                metadata=ServiceClients.as_caller(), timeout=10)
        except grpc.aio.AioRpcError as err:
            raise remote_error(err) from None
        return pb.ListContactActivitiesResponse(activities=page.activities, pagination=page.pagination)

    async def ListContactDeals(self, request: pb.ListContactDealsRequest, context: Ctx) -> pb.ListContactDealsResponse:
        """Answered by the Deals service, as the caller (who needs `deals:read` there too)."""
        await self.domain.exists(request.id)
        if self.clients is None:
            raise Unavailable("the deals service is not deployed", reason="SERVICE_NOT_DEPLOYED")
        stub = self.clients.stub("crm.deals.v1.DealsService", deals_service_pb2_grpc.DealsServiceStub)
        with upstream():
            page = await stub.ListDeals(deals_service_pb2.ListDealsRequest(contact_id=request.id, page=request.page,
                                                                           limit=request.limit),
                                        metadata=ServiceClients.as_caller(), timeout=10.0)
        return pb.ListContactDealsResponse(deals=page.deals, pagination=page.pagination)

    async def ListRelationships(self, request: pb.ListRelationshipsRequest, context: Ctx) -> pb.ListRelationshipsResponse:
        p = listing.params(page=request.page, limit=request.limit)
        page = await self.domain.list_relationships(request.id, p, request.type)
        return pb.ListRelationshipsResponse(relationships=[rel_to_proto(r._mapping) for r in page.rows], pagination=page.info())

    async def CreateRelationship(self, request: pb.CreateRelationshipRequest, context: Ctx) -> cpb.Relationship:
        r = request.relationship
        return rel_to_proto(await self.domain.create_relationship(request.id, r.related_contact_id, r.type, r.notes))

    async def UpdateRelationship(self, request: pb.UpdateRelationshipRequest, context: Ctx) -> cpb.Relationship:
        r = request.relationship
        return rel_to_proto(await self.domain.update_relationship(request.id, request.rel_id, r.type, r.notes))

    async def DeleteRelationship(self, request: pb.DeleteRelationshipRequest, context: Ctx) -> empty_pb2.Empty:
        await self.domain.delete_relationship(request.id, request.rel_id)
        return empty_pb2.Empty()

    async def ImportContacts(self, request: pb.ImportContactsRequest, context: Ctx) -> common_pb2.Job:
        job = await self.domain.start_import(request.file.data, request.file.content_type, request.format,
                                             request.skip_duplicates)
        return jobs.to_proto(job)

    async def GetImportJob(self, request: pb.GetImportJobRequest, context: Ctx) -> common_pb2.Job:
        return jobs.to_proto(await self.domain.get_import(request.job_id))

    async def ExportContacts(self, request: pb.ExportContactsRequest, context: Ctx) -> AsyncIterator[httpbody_pb2.HttpBody]:
        fmt = (request.format or "csv").lower()
        if fmt not in ("csv", "xlsx"):
            raise InvalidArgument("format must be csv or xlsx", violations=[FieldViolation("format", "use csv or xlsx")])
        p = listing.params(sort=request.sort, search=request.search)
        p.conditions = listing.conditions_from_request(request, LIST_SPEC, {"format", "sort", "search"})
        # The query runs (and bad filters fail) before the headers go: once they are sent, the
        # edge has answered 200 and an error could only cut the file short.
        rows = self.domain.export_rows(p)
        first = await anext(rows, None)
        await context.send_initial_metadata((("content-disposition", f'attachment; filename="contacts.{fmt}"'),))
        if fmt == "csv":
            ctype = "text/csv; charset=utf-8"
            writer = tabular.CsvExportWriter()
            async for row in _chain(first, rows):
                chunk = writer.write(row)
                if chunk:
                    yield httpbody_pb2.HttpBody(content_type=ctype, data=chunk)
            yield httpbody_pb2.HttpBody(content_type=ctype, data=writer.finish())
        else:
            ctype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            xw = tabular.XlsxExportWriter()
            async for row in _chain(first, rows):
                xw.write(row)
            for chunk in xw.finish():
                yield httpbody_pb2.HttpBody(content_type=ctype, data=chunk)

    async def ValidateContact(self, request: pb.ValidateContactRequest, context: Ctx) -> pb.ValidateContactResponse:
        clean, problems, duplicates = await self.domain.validate(from_proto(request.contact))
        scalars: dict[str, Any] = {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in clean.items()
                                   if k not in ("address", "custom_fields") and v is not None}
        normalized = cpb.Contact(**scalars)
        return pb.ValidateContactResponse(valid=not problems, errors=_errors(problems), normalized=normalized,
                                          possible_duplicate_ids=duplicates)

    async def ReassignAccount(self, request: pb.ReassignAccountRequest, context: Ctx) -> pb.ReassignAccountResponse:
        moved = await self.domain.reassign_account(list(request.from_account_ids), request.to_account_id)
        return pb.ReassignAccountResponse(reassigned=moved)

    async def DeduplicateContacts(self, request: pb.DeduplicateContactsRequest, context: Ctx) -> pb.DeduplicateContactsResponse:
        groups, merged = await self.domain.deduplicate(dry_run=request.dry_run, match_on={m.lower() for m in request.match_on})
        return pb.DeduplicateContactsResponse(
            groups=[pb.DuplicateGroup(primary_id=g.primary_id, contact_ids=list(g.ids), reasons=list(g.reasons)) for g in groups],
            merged=not request.dry_run and merged > 0, merged_count=merged,
        )


async def _chain(first: dict[str, Any] | None, rest: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    if first is None:
        return
    yield first
    async for row in rest:
        yield row


__all__ = ["ContactsServicer", "parse_id"]
