"""The Activities service through real Envoy: every seed endpoint, the route pairs that share a
prefix with /activities/{id}, link checks across tenants, timelines, calendars, availability,
meeting scheduling with invitations, rescheduling, account reassignment and events."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from typing import Any

import grpc
import httpx
import icalendar
import jwt
import nats
from crm.activities.v1 import activities_service_pb2 as apb
from crm.activities.v1 import activities_service_pb2_grpc as apb_grpc
from nats.js.api import DeliverPolicy

from services.devstack import DevStack
from tests.integration.conftest import account, mint, sign_up
from tests.integration.test_contacts_rest import h

# A Monday far enough ahead that nothing else in the suite books it.
MONDAY = dt.date(2031, 3, 3)


def at(day_offset: int, hour: int, minute: int = 0) -> str:
    when = dt.datetime.combine(MONDAY + dt.timedelta(days=day_offset), dt.time(hour, minute), dt.UTC)
    return when.isoformat().replace("+00:00", "Z")


def user_of(t: dict[str, str]) -> str:
    claims = jwt.decode(t["authorization"].split()[1], options={"verify_signature": False})
    return str(claims["sub"])


def create(api: httpx.Client, t: dict[str, str], path: str = "/v1/activities", **fields: Any) -> dict[str, Any]:
    r = api.post(path, headers=h(t), json=fields)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def contact(api: httpx.Client, t: dict[str, str], **fields: Any) -> str:
    r = api.post("/v1/contacts", headers=h(t), json={"firstName": "C", **fields})
    assert r.status_code == 201, r.text
    return str(r.json()["data"]["id"])


def test_crud(api: httpx.Client, tenant: dict[str, str]) -> None:
    made = create(api, tenant, type="task", subject="Send proposal", dueAt=at(0, 12), priority="high", body="v2 pricing")
    assert made["type"] == "task" and made["status"] == "open" and made["ownerId"] == user_of(tenant)
    assert made["occurredAt"] == made["dueAt"] and made["createdBy"] == user_of(tenant)
    got = api.get(f"/v1/activities/{made['id']}", headers=h(tenant)).json()["data"]
    assert got["subject"] == "Send proposal" and got["priority"] == "high"
    r = api.put(f"/v1/activities/{made['id']}?updateMask=status", headers=h(tenant), json={"status": "completed"})
    assert r.status_code == 200, r.text
    done = r.json()["data"]
    assert done["status"] == "completed" and done["completedAt"] and done["subject"] == "Send proposal"
    # A full replace keeps the type and owner; changing the type is refused.
    r = api.put(f"/v1/activities/{made['id']}", headers=h(tenant), json={"subject": "Send v3", "status": "open"})
    assert r.status_code == 200 and r.json()["data"]["type"] == "task" and r.json()["data"].get("completedAt") is None
    r = api.put(f"/v1/activities/{made['id']}", headers=h(tenant), json={"type": "note", "body": "x"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "type"
    assert api.delete(f"/v1/activities/{made['id']}", headers=h(tenant)).status_code == 200
    r = api.get(f"/v1/activities/{made['id']}", headers=h(tenant))
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NOT_FOUND"
    assert api.delete(f"/v1/activities/{made['id']}", headers=h(tenant)).status_code == 404


def test_validation_errors_name_the_field(api: httpx.Client, tenant: dict[str, str]) -> None:
    r = api.post("/v1/activities", headers=h(tenant), json={"subject": "no type"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "type"
    r = api.post("/v1/activities/events", headers=h(tenant), json={"subject": "Demo", "startAt": at(0, 10), "endAt": at(0, 9)})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "endAt"
    r = api.post("/v1/activities/notes", headers=h(tenant), json={"type": "task", "body": "x"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "type"
    r = api.post("/v1/activities/tasks", headers=h(tenant), json={"subject": "x", "contactId": "nope"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "contactId"
    r = api.get("/v1/activities/not-a-uuid", headers=h(tenant))
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "id"
    r = api.get("/v1/activities?sort=body", headers=h(tenant))
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "sort"


def test_typed_creation(api: httpx.Client, tenant: dict[str, str]) -> None:
    cid = contact(api, tenant)
    task = create(api, tenant, "/v1/activities/tasks", subject="Follow up", contactId=cid, dueAt=at(1, 9))
    event = create(api, tenant, "/v1/activities/events", subject="Demo", startAt=at(1, 10), durationSeconds=1800,
                   location="Zoom", attendees=[{"email": "Guest@Example.com", "name": "Guest"}], contactId=cid)
    call = create(api, tenant, "/v1/activities/calls", direction="inbound", outcome="voicemail", durationSeconds=95,
                  contactId=cid)
    email = create(api, tenant, "/v1/activities/emails", subject="Pricing", fromAddress="me@acme.io",
                   toAddresses=["Bob@Example.com"], contactId=cid)
    note = create(api, tenant, "/v1/activities/notes", body="Prefers mornings", contactId=cid)
    assert [x["type"] for x in (task, event, call, email, note)] == ["task", "event", "call", "email", "note"]
    assert event["endAt"] == at(1, 10, 30) and event["status"] == "scheduled" and event["icalUid"]
    assert event["attendees"] == [{"email": "guest@example.com", "name": "Guest", "userId": "", "responseStatus": "needs-action"}]
    assert call["subject"] == "Call" and call["outcome"] == "voicemail" and call["status"] == "completed"
    assert email["toAddresses"] == ["bob@example.com"] and email["direction"] == "outbound"
    # Typed routes refuse fields of other types.
    r = api.post("/v1/activities/calls", headers=h(tenant), json={"attendees": [{"email": "a@b.co"}]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "attendees"
    # The contact's sub-list in the Contacts API answers from this service.
    r = api.get(f"/v1/contacts/{cid}/activities?limit=2", headers=h(tenant))
    assert r.status_code == 200, r.text
    assert len(r.json()["data"]) == 2 and r.json()["meta"]["pagination"]["total"] == 5


def deal(api: httpx.Client, tenant: dict[str, str]) -> str:
    r = api.post("/v1/deals", headers=h(tenant), json={"name": "Linked deal"})
    assert r.status_code == 201, r.text
    return str(r.json()["data"]["id"])


def test_links_are_checked_with_their_services(api: httpx.Client, tenant: dict[str, str]) -> None:
    other = sign_up(api)
    theirs = contact(api, other)
    r = api.post("/v1/activities/tasks", headers=h(tenant), json={"subject": "x", "contactId": theirs})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "contactId" and r.json()["errors"][0]["code"] == "NOT_FOUND"
    mine = create(api, tenant, "/v1/activities/tasks", subject="y", contactId=contact(api, tenant))
    r = api.put(f"/v1/activities/{mine['id']}?updateMask=contactId", headers=h(tenant), json={"contactId": theirs})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "contactId"
    # Deals are deployed: an unknown deal is refused, a real one is checked.
    r = api.post("/v1/activities/notes", headers=h(tenant), json={"body": "z", "dealId": str(uuid.uuid4())})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "dealId"
    made = create(api, tenant, "/v1/activities/notes", body="z", dealId=deal(api, tenant))
    assert "dealId" not in made["unverifiedLinks"]
    # Accounts are checked too: an unknown one is refused, a real one kept.
    r = api.put(f"/v1/activities/{made['id']}?updateMask=accountId", headers=h(tenant),
                json={"accountId": str(uuid.uuid4())})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "accountId"
    acct = account(api, tenant)
    r = api.put(f"/v1/activities/{made['id']}?updateMask=accountId", headers=h(tenant), json={"accountId": acct})
    assert r.json()["data"]["accountId"] == acct and r.json()["data"]["unverifiedLinks"] == []


def test_lists_filter_sort_search_and_page(api: httpx.Client, tenant: dict[str, str]) -> None:
    cid = contact(api, tenant)
    owner = user_of(tenant)
    create(api, tenant, "/v1/activities/tasks", subject="Call back Müller", dueAt=at(0, 9), contactId=cid)
    create(api, tenant, "/v1/activities/tasks", subject="Send contract", dueAt=at(2, 9), status="in_progress")
    create(api, tenant, "/v1/activities/events", subject="Workshop", startAt=at(1, 13), endAt=at(1, 15), contactId=cid)
    create(api, tenant, "/v1/activities/notes", body="Budget approved", dealId=deal(api, tenant))

    def ids(query: str) -> list[str]:
        r = api.get(f"/v1/activities?{query}", headers=h(tenant))
        assert r.status_code == 200, r.text
        return [x["subject"] or x["body"] for x in r.json()["data"]]

    assert ids("type=task&sort=occurredAt") == ["Call back Müller", "Send contract"]
    assert ids(f"contactId={cid}&sort=occurredAt") == ["Call back Müller", "Workshop"]
    assert ids("status=in_progress") == ["Send contract"]
    assert ids(f"ownerId={owner}&type=event") == ["Workshop"]
    assert ids(f"dueAfter={at(1, 0)}") == ["Send contract"]
    assert ids(f"startAfter={at(1, 0)}&startBefore={at(2, 0)}") == ["Workshop"]
    assert ids("search=muller") == ["Call back Müller"]  # accent-folded
    assert ids("search=budget") == ["Budget approved"]
    r = api.get("/v1/activities?limit=3&sort=-occurredAt", headers=h(tenant)).json()
    assert len(r["data"]) == 3 and r["meta"]["pagination"]["total"] == 4 and r["meta"]["pagination"]["hasNext"]
    token = r["meta"]["pagination"]["nextPageToken"]
    rest = api.get(f"/v1/activities?limit=3&sort=-occurredAt&pageToken={token}", headers=h(tenant)).json()
    assert len(rest["data"]) == 1 and rest["data"][0]["id"] not in {x["id"] for x in r["data"]}


def test_tenant_isolation(api: httpx.Client, tenant: dict[str, str]) -> None:
    other = sign_up(api)
    made = create(api, tenant, "/v1/activities/notes", body="secret")
    assert api.get(f"/v1/activities/{made['id']}", headers=h(other)).status_code == 404
    assert api.delete(f"/v1/activities/{made['id']}", headers=h(other)).status_code == 404
    assert api.get("/v1/activities", headers=h(other)).json()["data"] == []


def test_literal_routes_are_not_activity_ids(api: httpx.Client, tenant: dict[str, str]) -> None:
    """`/activities/timeline|calendar|availability|schedule` reach their own rpcs, not `{id}`."""
    cid = contact(api, tenant)
    made = create(api, tenant, "/v1/activities/notes", body="n", contactId=cid)
    r = api.get(f"/v1/activities/timeline?contactId={cid}", headers=h(tenant))
    assert r.status_code == 200 and r.json()["data"]["activities"][0]["id"] == made["id"]
    r = api.get(f"/v1/activities/calendar?from={MONDAY}&to={MONDAY + dt.timedelta(days=1)}", headers=h(tenant))
    assert r.status_code == 200 and "activities" in r.json()["data"]
    r = api.get(f"/v1/activities/availability?from={MONDAY}&to={MONDAY + dt.timedelta(days=1)}", headers=h(tenant))
    assert r.status_code == 200 and r.json()["data"]["users"][0]["userId"] == user_of(tenant)
    r = api.post("/v1/activities/schedule", headers=h(tenant), json={"subject": ""})
    assert r.status_code == 422  # ScheduleMeeting's own validation, not "POST /activities/{id}"
    # And the id route still answers for ids; the literal words are no ids.
    assert api.get(f"/v1/activities/{made['id']}", headers=h(tenant)).status_code == 200
    for word in ("timeline", "calendar", "availability"):
        assert api.put(f"/v1/activities/{word}", headers=h(tenant), json={"body": "x"}).status_code == 400
    r = api.put(f"/v1/activities/{made['id']}/reschedule", headers=h(tenant), json={"startAt": at(0, 9)})
    assert r.status_code == 422  # a note has no start: the reschedule rpc, not UpdateActivity
    assert api.post("/v1/activities/calendar/sync", headers=h(tenant), json={}).json()["errors"][0]["code"] == "NO_CALENDAR_CONNECTION"


def test_timeline_merges_the_contacts_account_activities(api: httpx.Client, tenant: dict[str, str]) -> None:
    acct = account(api, tenant)
    cid = contact(api, tenant, accountId=acct)
    other_cid = contact(api, tenant)
    first = create(api, tenant, "/v1/activities/notes", body="on the contact", contactId=cid)
    create(api, tenant, "/v1/activities/tasks", subject="on the account", accountId=acct, dueAt=at(0, 9))
    create(api, tenant, "/v1/activities/events", subject="account meeting", accountId=acct,
           startAt=at(1, 9), endAt=at(1, 10))
    create(api, tenant, "/v1/activities/notes", body="someone else", contactId=other_cid)
    r = api.get(f"/v1/activities/timeline?contactId={cid}&limit=2", headers=h(tenant))
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    # Newest first: the meeting (start), the account task (due), then the note (created now).
    assert [x["subject"] or x["body"] for x in data["activities"]] == ["account meeting", "on the account"]
    sources = {s["relation"]: s for s in data["sources"]}
    assert sources["account"]["status"] == "included" and sources["account"]["recordCount"] == 1
    assert sources["deals"]["status"] == "included"  # the deals service answers (none for this contact)
    token = data["pagination"]["nextPageToken"]
    assert token and r.json()["meta"]["pagination"]["hasNext"] is True
    r = api.get(f"/v1/activities/timeline?contactId={cid}&limit=2&pageToken={token}", headers=h(tenant))
    rest = r.json()["data"]
    assert [x["id"] for x in rest["activities"]] == [first["id"]] and rest["pagination"]["nextPageToken"] == ""
    # An account's timeline takes its contacts' activities in (one ListContacts call).
    r = api.get(f"/v1/activities/timeline?accountId={acct}&types=note", headers=h(tenant))
    assert [x["id"] for x in r.json()["data"]["activities"]] == [first["id"]]
    assert {s["relation"]: s["recordCount"] for s in r.json()["data"]["sources"]}["contacts"] == 1
    # Exactly one anchor; an unknown contact is a 404 from the contacts service.
    assert api.get("/v1/activities/timeline", headers=h(tenant)).status_code == 400
    assert api.get(f"/v1/activities/timeline?contactId={uuid.uuid4()}", headers=h(tenant)).status_code == 404
    other = sign_up(api)
    assert api.get(f"/v1/activities/timeline?contactId={cid}", headers=h(other)).status_code == 404


def test_calendar_view(api: httpx.Client, tenant: dict[str, str]) -> None:
    create(api, tenant, "/v1/activities/events", subject="Mon 10", startAt=at(0, 10), endAt=at(0, 11))
    create(api, tenant, "/v1/activities/tasks", subject="Due Tue", dueAt=at(1, 17))
    create(api, tenant, "/v1/activities/events", subject="Next week", startAt=at(7, 10), endAt=at(7, 11))
    create(api, tenant, "/v1/activities/events", subject="Sun overnight", startAt=at(-1, 22), endAt=at(0, 1))
    create(api, tenant, "/v1/activities/notes", body="not on calendars")
    r = api.get(f"/v1/activities/calendar?from={MONDAY}&to={at(5, 0)}", headers=h(tenant))
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [x["subject"] for x in data["activities"]] == ["Sun overnight", "Mon 10", "Due Tue"]
    assert data["from"] == at(0, 0) and data["truncated"] is False
    r = api.get(f"/v1/activities/calendar?from={MONDAY}&to={at(5, 0)}&types=task", headers=h(tenant))
    assert [x["subject"] for x in r.json()["data"]["activities"]] == ["Due Tue"]
    r = api.get(f"/v1/activities/calendar?from={MONDAY}&to={MONDAY + dt.timedelta(days=200)}", headers=h(tenant))
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "to"
    r = api.get(f"/v1/activities/calendar?to={MONDAY}", headers=h(tenant))
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "from"


def test_availability_merges_each_users_events(api: httpx.Client, tenant: dict[str, str]) -> None:
    me = user_of(tenant)
    colleague = str(uuid.uuid4())
    create(api, tenant, "/v1/activities/events", subject="A", startAt=at(0, 9), endAt=at(0, 10))
    create(api, tenant, "/v1/activities/events", subject="B", startAt=at(0, 9, 30), endAt=at(0, 11))
    create(api, tenant, "/v1/activities/events", subject="C", startAt=at(0, 14), endAt=at(0, 15), status="cancelled")
    # The colleague attends one of the caller's meetings and owns none.
    create(api, tenant, "/v1/activities/events", subject="D", startAt=at(0, 13), endAt=at(0, 14),
           attendees=[{"userId": colleague, "name": "Col"}])
    r = api.get(f"/v1/activities/availability?userIds={me},{colleague}&from={at(0, 8)}&to={at(0, 18)}", headers=h(tenant))
    assert r.status_code == 200, r.text
    users = {u["userId"]: u for u in r.json()["data"]["users"]}
    assert users[me]["busy"] == [{"start": at(0, 9), "end": at(0, 11)}, {"start": at(0, 13), "end": at(0, 14)}]
    assert users[me]["free"][0] == {"start": at(0, 8), "end": at(0, 9)}
    assert users[colleague]["busy"] == [{"start": at(0, 13), "end": at(0, 14)}]
    assert r.json()["data"]["commonFree"] == [{"start": at(0, 8), "end": at(0, 9)}, {"start": at(0, 11), "end": at(0, 13)},
                                              {"start": at(0, 14), "end": at(0, 18)}]
    r = api.get(f"/v1/activities/availability?userIds=bad&from={at(0, 8)}&to={at(0, 18)}", headers=h(tenant))
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "userIds[0]"


def test_schedule_books_the_first_common_slot_with_an_invitation(api: httpx.Client, tenant: dict[str, str]) -> None:
    me = user_of(tenant)
    colleague = str(uuid.uuid4())
    cid = contact(api, tenant)
    create(api, tenant, "/v1/activities/events", subject="mine", startAt=at(0, 9), endAt=at(0, 10))
    create(api, tenant, "/v1/activities/events", subject="theirs", startAt=at(0, 10), endAt=at(0, 11, 10),
           attendees=[{"userId": colleague}])
    r = api.post("/v1/activities/schedule", headers=h(tenant), json={
        "subject": "Kick-off", "body": "Agenda", "location": "Room 2", "durationMinutes": 45,
        "from": at(0, 0), "to": at(4, 0), "attendeeUserIds": [colleague],
        "attendees": [{"email": "Client@Example.com", "name": "Client"}],
        "workingHours": {"start": "09:00", "end": "17:00", "timeZone": "UTC"}, "contactId": cid,
    })
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    event = data["activity"]
    assert (event["startAt"], event["endAt"]) == (at(0, 11, 15), at(0, 12))  # after both, on the 15-minute grid
    assert event["type"] == "event" and event["contactId"] == cid and event["sequence"] == 0
    assert {a["userId"] or a["email"] for a in event["attendees"]} == {colleague, "client@example.com"}
    invitation = data["invitation"]
    assert invitation["method"] == "REQUEST" and invitation["delivery"] == "attached"
    assert invitation["contentType"].startswith("text/calendar")
    cal = icalendar.Calendar.from_ical(invitation["content"])
    assert str(cal["method"]) == "REQUEST"
    vevent: Any = cal.walk("VEVENT")[0]
    assert str(vevent["uid"]) == event["icalUid"] and int(vevent["sequence"]) == 0
    assert vevent.decoded("dtstart") == dt.datetime.fromisoformat(at(0, 11, 15))
    assert str(vevent["organizer"]).startswith("mailto:admin-") and vevent["organizer"].params["CN"] == "Ada Admin"
    attendees = {str(a) for a in vevent["attendee"]}
    assert attendees == {"mailto:client@example.com", f"urn:uuid:{colleague}"}
    # The booked slot is now busy for both: the next booking goes after it.
    r = api.post("/v1/activities/schedule", headers=h(tenant), json={
        "subject": "Second", "durationMinutes": 30, "from": at(0, 0), "to": at(4, 0), "attendeeUserIds": [colleague]})
    assert r.json()["data"]["activity"]["startAt"] == at(0, 12)
    # No room at all: 409 naming the range.
    r = api.post("/v1/activities/schedule", headers=h(tenant), json={
        "subject": "Late", "durationMinutes": 60, "from": at(0, 16, 30), "to": at(0, 23)})
    assert r.status_code == 409 and r.json()["errors"][0]["code"] == "NO_FREE_SLOT"
    r = api.post("/v1/activities/schedule", headers=h(tenant), json={
        "subject": "Bad", "durationMinutes": 2, "from": at(0, 0), "to": at(1, 0), "workingHours": {"timeZone": "Nowhere/City"}})
    assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"durationMinutes", "workingHours.timeZone"}
    assert me


def test_reschedule_raises_the_sequence_and_checks_conflicts(api: httpx.Client, tenant: dict[str, str]) -> None:
    colleague = str(uuid.uuid4())
    event = create(api, tenant, "/v1/activities/events", subject="Review", startAt=at(2, 9), endAt=at(2, 10),
                   attendees=[{"userId": colleague}, {"email": "guest@example.com"}])
    create(api, tenant, "/v1/activities/events", subject="Colleague busy", startAt=at(2, 14), endAt=at(2, 15),
           ownerId=colleague)
    r = api.put(f"/v1/activities/{event['id']}/reschedule", headers=h(tenant), json={"startAt": at(2, 11)})
    assert r.status_code == 200, r.text
    moved = r.json()["data"]
    assert (moved["activity"]["startAt"], moved["activity"]["endAt"]) == (at(2, 11), at(2, 12))
    assert moved["activity"]["sequence"] == 1
    vevent: Any = icalendar.Calendar.from_ical(moved["invitation"]["content"]).walk("VEVENT")[0]
    assert str(vevent["uid"]) == event["icalUid"] and int(vevent["sequence"]) == 1
    assert vevent.decoded("dtstart") == dt.datetime.fromisoformat(at(2, 11))
    # Overlapping its own old time is fine; the colleague's meeting is a conflict.
    r = api.put(f"/v1/activities/{event['id']}/reschedule", headers=h(tenant), json={"startAt": at(2, 14, 30)})
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "startAt"
    assert colleague in r.json()["errors"][0]["message"]
    assert api.get(f"/v1/activities/{event['id']}", headers=h(tenant)).json()["data"]["sequence"] == 1
    r = api.put(f"/v1/activities/{event['id']}/reschedule", headers=h(tenant),
                json={"startAt": at(2, 14, 30), "ignoreConflicts": True})
    assert r.status_code == 200 and r.json()["data"]["activity"]["sequence"] == 2
    # Tasks move their due time; they have no invitation.
    task = create(api, tenant, "/v1/activities/tasks", subject="Prep", dueAt=at(1, 9))
    r = api.put(f"/v1/activities/{task['id']}/reschedule", headers=h(tenant), json={"dueAt": at(1, 15)})
    assert r.status_code == 200 and r.json()["data"]["activity"]["dueAt"] == at(1, 15)
    assert r.json()["data"].get("invitation") is None
    r = api.put(f"/v1/activities/{task['id']}/reschedule", headers=h(tenant), json={})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "dueAt"


def test_reassign_account_over_grpc(api: httpx.Client, stack: DevStack, tenant: dict[str, str]) -> None:
    old_a, old_b, new = (account(api, tenant, n) for n in ("old a", "old b", "new"))
    for acct in (old_a, old_a, old_b):
        create(api, tenant, "/v1/activities/notes", body="n", accountId=acct)
    other = sign_up(api)
    theirs = account(api, other)
    create(api, other, "/v1/activities/notes", body="theirs", accountId=theirs)
    md = (("authorization", tenant["authorization"]), ("x-tenant-id", tenant["x-tenant-id"]))
    with grpc.insecure_channel(f"127.0.0.1:{stack.grpc_port}") as channel:
        stub = apb_grpc.ActivitiesServiceStub(channel)
        done = stub.ReassignAccount(apb.ReassignAccountRequest(from_account_ids=[old_a, old_b], to_account_id=new), metadata=md)
        assert done.reassigned == 3
        again = stub.ReassignAccount(apb.ReassignAccountRequest(from_account_ids=[old_a, old_b], to_account_id=new), metadata=md)
        assert again.reassigned == 0  # idempotent
        try:
            stub.ReassignAccount(apb.ReassignAccountRequest(from_account_ids=[new], to_account_id=new), metadata=md)
            raise AssertionError("merging an account into itself must fail")
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        reader = mint(stack, tenant_id=tenant["x-tenant-id"], perms=["activities:read"])
        try:
            stub.ReassignAccount(apb.ReassignAccountRequest(from_account_ids=[new]),
                                 metadata=(("authorization", f"Bearer {reader}"), ("x-tenant-id", tenant["x-tenant-id"])))
            raise AssertionError("a reader may not reassign")
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert api.get(f"/v1/activities?accountId={new}", headers=h(tenant)).json()["meta"]["pagination"]["total"] == 3
    assert api.get(f"/v1/activities?accountId={theirs}", headers=h(other)).json()["meta"]["pagination"]["total"] == 1


def test_sales_reps_change_only_their_own_activities(api: httpx.Client, stack: DevStack, tenant: dict[str, str]) -> None:
    made = create(api, tenant, "/v1/activities/notes", body="admin's")
    rep_id = str(uuid.uuid4())
    rep = {"authorization": f"Bearer {mint(stack, tenant_id=tenant['x-tenant-id'], user_id=rep_id, roles=['sales_rep'])}",
           "x-tenant-id": tenant["x-tenant-id"]}
    assert api.get(f"/v1/activities/{made['id']}", headers=rep).status_code == 200
    r = api.put(f"/v1/activities/{made['id']}?updateMask=body", headers=rep, json={"body": "mine now"})
    assert r.status_code == 403
    r = api.post("/v1/activities/notes", headers=rep, json={"body": "rep's"})
    assert r.status_code == 201 and r.json()["data"]["ownerId"] == rep_id


def test_every_change_is_announced(api: httpx.Client, stack: DevStack, tenant: dict[str, str]) -> None:
    async def collect() -> list[dict[str, Any]]:
        nc = await nats.connect(stack.nats_url)
        js = nc.jetstream()
        sub = await js.subscribe("crm.activities.>", ordered_consumer=True,
                                 deliver_policy=DeliverPolicy.NEW)
        event = create(api, tenant, "/v1/activities/events", subject="E", startAt=at(3, 9), endAt=at(3, 10))
        api.put(f"/v1/activities/{event['id']}/reschedule", headers=h(tenant), json={"startAt": at(3, 11)})
        api.put(f"/v1/activities/{event['id']}?updateMask=status", headers=h(tenant), json={"status": "completed"})
        api.delete(f"/v1/activities/{event['id']}", headers=h(tenant))
        seen: list[dict[str, Any]] = []
        try:
            while len([e for e in seen if e["subject"] == event["id"]]) < 5:
                msg = await sub.next_msg(timeout=10)
                seen.append(json.loads(msg.data))
        finally:
            await nc.close()
        return [e for e in seen if e["subject"] == event["id"]]

    events = asyncio.run(collect())
    assert [e["type"] for e in events] == [
        "crm.activities.activity.created", "crm.activities.activity.rescheduled", "crm.activities.activity.updated",
        "crm.activities.activity.completed", "crm.activities.activity.deleted"]
    assert events[1]["data"]["changes"]["sequence"] == {"from": 0, "to": 1}
    assert all(e["tenantid"] == tenant["x-tenant-id"] for e in events)
