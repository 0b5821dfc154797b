"""gRPC adapter of the activities service: decode, call the domain, encode."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import grpc
from crm.activities.v1 import activities_service_pb2 as pb
from crm.activities.v1 import activities_service_pb2_grpc as pb_grpc
from crm.activities.v1 import activity_pb2 as apb
from crm.common.v1 import common_pb2
from google.protobuf import empty_pb2, timestamp_pb2

from services.activities import ical, rules
from services.activities.domain import LIST_SPEC, ActivitiesDomain
from services.activities.relations import Related
from services.kernel import jobs, listing

Ctx = grpc.aio.ServicerContext[Any, Any]
_LIST_SKIP = {"page", "limit", "sort", "search", "pageToken"}
_SNAKE = {rules.camel(name): name for name in rules.WRITABLE}
DELIVERY = "attached"  # no services/kernel/mailer.py in this deployment: the client sends the .ics


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def _ts(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value)
    return out


def _time(message: Any, name: str) -> dt.datetime | None:
    if not message.HasField(name):
        return None
    value: dt.datetime = getattr(message, name).ToDatetime(tzinfo=dt.UTC)
    return value


def to_proto(row: Mapping[Any, Any]) -> apb.Activity:
    activity = apb.Activity(
        id=str(row["id"]), type=row["type"], subject=row["subject"], body=row["body"],
        duration_seconds=row["duration_seconds"], status=row["status"], contact_id=_s(row["contact_id"]),
        account_id=_s(row["account_id"]), deal_id=_s(row["deal_id"]), lead_id=_s(row["lead_id"]),
        owner_id=_s(row["owner_id"]), priority=row["priority"], location=row["location"], direction=row["direction"],
        outcome=row["outcome"], ical_uid=row["ical_uid"], sequence=row["sequence"],
        unverified_links=list(row["unverified_links"]), created_by=_s(row["created_by"]),
        from_address=row["from_address"], to_addresses=list(row["to_addresses"]),
        attendees=[apb.Attendee(email=x.get("email", ""), name=x.get("name", ""), user_id=x.get("user_id", ""),
                                response_status=x.get("response_status", "")) for x in row["attendees"]],
    )
    for name in ("due_at", "start_at", "end_at", "completed_at", "created_at", "updated_at", "occurred_at"):
        ts = _ts(row[name])
        if ts is not None:
            getattr(activity, name).CopyFrom(ts)
    return activity


def from_proto(activity: apb.Activity) -> dict[str, Any]:
    values: dict[str, Any] = {
        name: getattr(activity, name) for name in rules.WRITABLE
        if name not in ("due_at", "start_at", "end_at", "attendees", "to_addresses")
    }
    for name in ("due_at", "start_at", "end_at"):
        values[name] = _time(activity, name)
    values["attendees"] = [{"email": x.email, "name": x.name, "user_id": x.user_id, "response_status": x.response_status}
                           for x in activity.attendees]
    values["to_addresses"] = list(activity.to_addresses)
    return values


def _range(iv: rules.Interval) -> pb.TimeRange:
    return pb.TimeRange(start=_ts(iv.start), end=_ts(iv.end))


def _invitation(content: str) -> pb.Invitation | None:
    if not content:
        return None
    return pb.Invitation(filename="invite.ics", content_type=ical.CONTENT_TYPE, content=content, method="REQUEST",
                         delivery=DELIVERY)


def _source(rel: Related) -> pb.TimelineSource:
    return pb.TimelineSource(relation=rel.relation, status=rel.status, record_count=len(rel.ids))


def _split(values: Any) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


class ActivitiesServicer(pb_grpc.ActivitiesServiceServicer):
    def __init__(self, domain: ActivitiesDomain) -> None:
        self.domain = domain

    async def CreateActivity(self, request: pb.CreateActivityRequest, context: Ctx) -> apb.Activity:
        return to_proto(await self.domain.create(from_proto(request.activity)))

    async def GetActivity(self, request: pb.GetActivityRequest, context: Ctx) -> apb.Activity:
        return to_proto(await self.domain.get(request.id))

    async def UpdateActivity(self, request: pb.UpdateActivityRequest, context: Ctx) -> apb.Activity:
        mask = None
        if request.HasField("update_mask") and request.update_mask.paths:
            mask = {_SNAKE.get(p, p) for p in request.update_mask.paths}
        return to_proto(await self.domain.update(request.id, from_proto(request.activity), mask))

    async def DeleteActivity(self, request: pb.DeleteActivityRequest, context: Ctx) -> empty_pb2.Empty:
        await self.domain.delete(request.id)
        return empty_pb2.Empty()

    async def ListActivities(self, request: pb.ListActivitiesRequest, context: Ctx) -> pb.ListActivitiesResponse:
        p = listing.params(page=request.page, limit=request.limit, sort=request.sort, search=request.search,
                           page_token=request.page_token)
        p.conditions = listing.conditions_from_request(request, LIST_SPEC, _LIST_SKIP)
        page = await self.domain.list(p)
        return pb.ListActivitiesResponse(activities=[to_proto(r._mapping) for r in page.rows], pagination=page.info())

    async def CreateTask(self, request: pb.CreateTaskRequest, context: Ctx) -> apb.Activity:
        return to_proto(await self.domain.create(from_proto(request.activity), "task"))

    async def CreateEvent(self, request: pb.CreateEventRequest, context: Ctx) -> apb.Activity:
        return to_proto(await self.domain.create(from_proto(request.activity), "event"))

    async def LogCall(self, request: pb.LogCallRequest, context: Ctx) -> apb.Activity:
        return to_proto(await self.domain.create(from_proto(request.activity), "call"))

    async def LogEmail(self, request: pb.LogEmailRequest, context: Ctx) -> apb.Activity:
        return to_proto(await self.domain.create(from_proto(request.activity), "email"))

    async def CreateNote(self, request: pb.CreateNoteRequest, context: Ctx) -> apb.Activity:
        return to_proto(await self.domain.create(from_proto(request.activity), "note"))

    async def GetTimeline(self, request: pb.GetTimelineRequest, context: Ctx) -> pb.GetTimelineResponse:
        p = listing.params(limit=request.limit, page_token=request.page_token)
        anchors = {"contact_id": request.contact_id, "account_id": request.account_id, "deal_id": request.deal_id,
                   "lead_id": request.lead_id}
        timeline = await self.domain.timeline(anchors, p, _split(request.types))
        return pb.GetTimelineResponse(activities=[to_proto(r._mapping) for r in timeline.page.rows],
                                      pagination=timeline.page.info(), sources=[_source(s) for s in timeline.sources])

    async def GetCalendar(self, request: pb.GetCalendarRequest, context: Ctx) -> pb.GetCalendarResponse:
        rows, lo, hi, truncated = await self.domain.calendar(getattr(request, "from"), request.to, request.owner_id,
                                                             _split(request.types))
        response = pb.GetCalendarResponse(activities=[to_proto(r) for r in rows], to=_ts(hi), truncated=truncated)
        getattr(response, "from").CopyFrom(_ts(lo))
        return response

    async def SyncCalendar(self, request: pb.SyncCalendarRequest, context: Ctx) -> common_pb2.Job:
        return jobs.to_proto(await self.domain.start_sync())

    async def GetCalendarSyncJob(self, request: pb.GetCalendarSyncJobRequest, context: Ctx) -> common_pb2.Job:
        return jobs.to_proto(await self.domain.get_sync_job(request.job_id))

    @staticmethod
    def _connection(row: Mapping[Any, Any]) -> pb.CalendarConnection:
        return pb.CalendarConnection(
            url=row["url"], username=row["username"], has_password=bool(row["password_encrypted"]),
            last_synced_at=_ts(row["last_synced_at"]), last_status=row["last_status"], last_error=row["last_error"],
            user_id=str(row["user_id"]), created_at=_ts(row["created_at"]), updated_at=_ts(row["updated_at"]),
        )

    async def PutCalendarConnection(self, request: pb.PutCalendarConnectionRequest, context: Ctx) -> pb.CalendarConnection:
        c = request.connection
        return self._connection(await self.domain.put_connection(c.url, c.username, c.password))

    async def GetCalendarConnection(self, request: pb.GetCalendarConnectionRequest, context: Ctx) -> pb.CalendarConnection:
        return self._connection(await self.domain.get_connection())

    async def DeleteCalendarConnection(self, request: pb.DeleteCalendarConnectionRequest, context: Ctx) -> empty_pb2.Empty:
        await self.domain.delete_connection()
        return empty_pb2.Empty()

    async def GetAvailability(self, request: pb.GetAvailabilityRequest, context: Ctx) -> pb.GetAvailabilityResponse:
        found = await self.domain.availability(list(request.user_ids), getattr(request, "from"), request.to)
        return pb.GetAvailabilityResponse(
            users=[pb.UserAvailability(user_id=u, busy=[_range(i) for i in busy], free=[_range(i) for i in free])
                   for u, busy, free in found.users],
            common_free=[_range(i) for i in found.common_free],
        )

    async def ScheduleMeeting(self, request: pb.ScheduleMeetingRequest, context: Ctx) -> pb.ScheduleMeetingResponse:
        wh = request.working_hours
        scheduled = await self.domain.schedule({
            "subject": request.subject, "body": request.body, "location": request.location,
            "duration_minutes": request.duration_minutes, "from": getattr(request, "from"), "to": request.to,
            "attendee_user_ids": list(request.attendee_user_ids),
            "attendees": [{"email": x.email, "name": x.name, "user_id": x.user_id} for x in request.attendees],
            "working_hours": (wh.start, wh.end, wh.time_zone, list(wh.days)), "slot_minutes": request.slot_minutes,
            "contact_id": request.contact_id, "account_id": request.account_id, "deal_id": request.deal_id,
            "lead_id": request.lead_id,
        })
        return pb.ScheduleMeetingResponse(activity=to_proto(scheduled.row), invitation=_invitation(scheduled.invitation))

    async def RescheduleActivity(self, request: pb.RescheduleActivityRequest, context: Ctx) -> pb.RescheduleActivityResponse:
        moved = await self.domain.reschedule(request.id, _time(request, "start_at"), _time(request, "end_at"),
                                             _time(request, "due_at"), request.ignore_conflicts)
        return pb.RescheduleActivityResponse(activity=to_proto(moved.row), invitation=_invitation(moved.invitation))

    async def ReassignAccount(self, request: pb.ReassignAccountRequest, context: Ctx) -> pb.ReassignAccountResponse:
        return pb.ReassignAccountResponse(
            reassigned=await self.domain.reassign_account(list(request.from_account_ids), request.to_account_id))
