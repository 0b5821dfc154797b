"""The activities domain: storage and rules behind the rpcs. No gRPC here (other services are
reached through services/activities/relations.py)."""

from __future__ import annotations

import builtins
import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, text, true, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.activities import caldav, ical, rules
from services.activities.config import ActivitiesConfig
from services.activities.relations import AUTH, NotDeployed, Related, Relations
from services.activities.tables import SCHEMA, activities, calendar_connections, calendar_items, participants
from services.kernel import context, listing, preconditions
from services.kernel.db import Database
from services.kernel.errors import Conflict, FieldViolation, InvalidArgument, NotFound, validation
from services.kernel.events import emit
from services.kernel.jobs import JobRunner

SYNC_KIND = "activities.calendar_sync"
CALENDAR_MAX_DAYS = 92
CALENDAR_MAX_ITEMS = 2000
AVAILABILITY_MAX_DAYS = 31
MAX_USERS = 20
MAX_REASSIGN = 100

a = activities.c
_FIELDS: dict[str, listing.Field] = {
    "id": listing.Field(a.id, "uuid"),
    "type": listing.Field(a.type, "text"),
    "status": listing.Field(a.status, "text"),
    "priority": listing.Field(a.priority, "text"),
    "subject": listing.Field(a.subject, "text", sortable=True),
    "ownerId": listing.Field(a.owner_id, "uuid"),
    "contactId": listing.Field(a.contact_id, "uuid"),
    "accountId": listing.Field(a.account_id, "uuid"),
    "dealId": listing.Field(a.deal_id, "uuid"),
    "leadId": listing.Field(a.lead_id, "uuid"),
    # `dueAfter`/`dueBefore` and `startAfter`/`startBefore` filter on these.
    "due": listing.Field(a.due_at, "time"),
    "start": listing.Field(a.start_at, "time"),
    "occurredAt": listing.Field(a.occurred_at, "time", sortable=True),
    "createdAt": listing.Field(a.created_at, "time", sortable=True),
    "updatedAt": listing.Field(a.updated_at, "time", sortable=True),
}
LIST_SPEC = listing.ListSpec(fields=_FIELDS, id_column=a.id, search_column=a.search_text, default_sort="-occurredAt")
_SELECT = select(*[col for col in activities.c if col.key != "search_text"])
_RETURNING = [col for col in activities.c if col.key != "search_text"]


def parse_id(value: str, name: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument(f"{name} must be a UUID", violations=[FieldViolation(name, "must be a UUID")]) from None


def _iso(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def public(row: Mapping[Any, Any]) -> dict[str, Any]:
    """An activity as events carry it: the API's field names, JSON values."""
    out: dict[str, Any] = {"id": str(row["id"])}
    for name in (*rules.WRITABLE, "ical_uid", "sequence", "completed_at"):
        out[rules.camel(name) if name not in ("ical_uid", "completed_at") else
            {"ical_uid": "icalUid", "completed_at": "completedAt"}[name]] = _iso(row[name])
    return out


def changes(before: Mapping[Any, Any], after: Mapping[Any, Any]) -> dict[str, dict[str, Any]]:
    old, new = public(before), public(after)
    return {k: {"from": old[k], "to": new[k]} for k in new if old.get(k) != new[k]}


@dataclass
class Timeline:
    page: listing.Page
    sources: list[Related]


@dataclass
class Availability:
    users: list[tuple[str, list[rules.Interval], list[rules.Interval]]]
    common_free: list[rules.Interval]


@dataclass
class Scheduled:
    row: RowMapping
    invitation: str


def _tenant() -> uuid.UUID:
    return uuid.UUID(context.tenant_id())


def _caller() -> uuid.UUID | None:
    user = context.current().user_id
    return uuid.UUID(user) if user else None


class ActivitiesDomain:
    def __init__(self, db: Database, jobs: JobRunner, relations: Relations, config: ActivitiesConfig) -> None:
        self.db = db
        self.jobs = jobs
        self.relations = relations
        self.config = config
        from services.activities.sync import CalendarSync

        self.sync = CalendarSync(self)
        jobs.handler(SYNC_KIND, self.sync.run)

    # --- single records ------------------------------------------------------------------
    async def _get(self, conn: AsyncConnection, key: uuid.UUID, *, lock: bool = False) -> RowMapping:
        stmt = _SELECT.where(a.id == key, a.tenant_id == _tenant())
        row = (await conn.execute(stmt.with_for_update() if lock else stmt)).mappings().first()
        if row is None:
            raise NotFound("activity not found")
        return row

    async def get(self, activity_id: str) -> RowMapping:
        async with self.db.transaction() as conn:
            return await self._get(conn, parse_id(activity_id))

    async def _checked(self, values: Mapping[str, Any], before: Mapping[Any, Any] | None = None) -> tuple[dict[str, Any], list[str]]:
        """Validated values and the links accepted unchecked; 422 with every problem otherwise.
        Only links that change are asked about (an unchanged one was checked when it was set)."""
        clean, problems = rules.check(values)
        if problems:
            raise validation(problems)
        links = {k: str(clean[k]) for k in rules.LINKS
                 if clean[k] is not None and (before is None or clean[k] != before[k])}
        link_problems, unverified = await self.relations.check_links(links) if links else ([], [])
        if link_problems:
            raise validation(link_problems)
        if before is not None:
            kept = {name for name in before["unverified_links"]
                    if any(rules.camel(k) == name and clean[k] == before[k] and clean[k] is not None for k in rules.LINKS)}
            unverified = sorted(kept | set(unverified))
        return clean, unverified

    async def _set_participants(self, conn: AsyncConnection, row: Mapping[Any, Any]) -> None:
        await conn.execute(delete(participants).where(participants.c.activity_id == row["id"]))
        if row["type"] != "event":
            return
        users = {str(row["owner_id"])} if row["owner_id"] else set()
        users |= {att["user_id"] for att in row["attendees"] if att.get("user_id")}
        if users:
            await conn.execute(insert(participants), [
                {"tenant_id": row["tenant_id"], "activity_id": row["id"], "user_id": uuid.UUID(u)} for u in sorted(users)
            ])

    async def _insert(self, conn: AsyncConnection, clean: Mapping[str, Any], unverified: list[str]) -> RowMapping:
        key = uuid.uuid4()
        values = {name: clean[name] for name in rules.WRITABLE}
        values.update(id=key, tenant_id=_tenant(), created_by=_caller(), ical_uid=clean.get("ical_uid") or f"{key}@crm",
                      sequence=int(clean.get("sequence") or 0), unverified_links=unverified,
                      completed_at=text("now()") if clean["status"] == "completed" else None)
        if values["owner_id"] is None:
            values["owner_id"] = _caller()
        row = (await conn.execute(insert(activities).values(values).returning(*_RETURNING))).mappings().one()
        await self._set_participants(conn, row)
        await emit(conn, SCHEMA, "crm.activities.activity.created", str(key), {"activity": public(row)})
        return row

    async def create(self, values: Mapping[str, Any], route_type: str = "") -> RowMapping:
        values = dict(values)
        if route_type:
            given = str(values.get("type") or "").strip().lower()
            if given and given != route_type:
                raise validation([FieldViolation("type", f"this route creates a {route_type}")])
            values["type"] = route_type
        clean, unverified = await self._checked(values)
        async with self.db.transaction() as conn:
            return await self._insert(conn, clean, unverified)

    async def update(self, activity_id: str, values: Mapping[str, Any], mask: set[str] | None) -> RowMapping:
        key = parse_id(activity_id)
        if mask is not None:
            unknown = mask - set(rules.WRITABLE)
            if unknown:
                raise InvalidArgument("unknown field in updateMask", violations=[
                    FieldViolation("updateMask", f"not a writable field: {rules.camel(n)}") for n in sorted(unknown)])
        async with self.db.transaction() as conn:
            before = await self._get(conn, key, lock=True)
        preconditions.require_current(before["updated_at"])  # early, before checking links elsewhere
        merged = {name: before[name] for name in rules.WRITABLE}
        incoming = {k: v for k, v in values.items() if mask is None or k in mask}
        if mask is None:
            # A full replace keeps what a client cannot mean to clear: the type and the owner.
            incoming["type"] = incoming.get("type") or before["type"]
            incoming["owner_id"] = incoming.get("owner_id") or before["owner_id"]
        if str(incoming.get("type") or before["type"]).strip().lower() != before["type"]:
            raise validation([FieldViolation("type", "the type of an activity cannot change")])
        merged.update(incoming)
        clean, unverified = await self._checked(merged, before)
        async with self.db.transaction() as conn:
            current = await self._get(conn, key, lock=True)
            preconditions.require_current(current["updated_at"])
            return await self._apply(conn, current, clean, unverified)

    async def _apply(self, conn: AsyncConnection, before: RowMapping, clean: Mapping[str, Any],
                     unverified: list[str], *, bump: bool | None = None, event: str = "updated") -> RowMapping:
        """Write `clean` over `before`; SEQUENCE goes up when an event's time or place changes."""
        values = {name: clean[name] for name in rules.WRITABLE}
        moved = any(values[k] != before[k] for k in ("start_at", "end_at", "location"))
        if bump if bump is not None else (before["type"] == "event" and moved):
            values["sequence"] = before["sequence"] + 1
        values["unverified_links"] = unverified
        if values["status"] == "completed" and before["status"] != "completed":
            values["completed_at"] = text("now()")
        elif values["status"] != "completed":
            values["completed_at"] = None
        row = (await conn.execute(
            update(activities).where(a.id == before["id"]).values(**values, updated_at=text("now()")).returning(*_RETURNING)
        )).mappings().one()
        await self._set_participants(conn, row)
        diff = changes(before, row)
        if diff:
            await emit(conn, SCHEMA, f"crm.activities.activity.{event}", str(row["id"]),
                       {"activity": public(row), "changes": diff})
            if row["status"] == "completed" and before["status"] != "completed":
                await emit(conn, SCHEMA, "crm.activities.activity.completed", str(row["id"]), {"activity": public(row)})
        return row

    async def delete(self, activity_id: str) -> None:
        key = parse_id(activity_id)
        async with self.db.transaction() as conn:
            before = await self._get(conn, key, lock=True)
            preconditions.require_current(before["updated_at"])
            await self._delete(conn, before)

    async def _delete(self, conn: AsyncConnection, before: Mapping[Any, Any]) -> None:
        # The calendar copy goes at the next sync: the item stays, marked as deleted here.
        await conn.execute(update(calendar_items).where(calendar_items.c.activity_id == before["id"])
                           .values(activity_id=None, local_deleted_at=text("now()")))
        await conn.execute(delete(activities).where(a.id == before["id"]))
        await emit(conn, SCHEMA, "crm.activities.activity.deleted", str(before["id"]), {"activity": public(before)})

    # --- lists ---------------------------------------------------------------------------
    async def list(self, p: listing.ListParams) -> listing.Page:
        async with self.db.transaction() as conn:
            return await listing.fetch_page(conn, _SELECT, LIST_SPEC, p, [a.tenant_id == _tenant()])

    async def timeline(self, anchors: Mapping[str, str], p: listing.ListParams, types: builtins.list[str]) -> Timeline:
        """The anchor's activities and its related records', newest first. Related ids come
        from the owning services, one call per relation, never one per record."""
        given = {k: v for k, v in anchors.items() if v}
        if len(given) != 1:
            raise InvalidArgument("give exactly one of contactId, accountId, dealId, leadId", violations=[
                FieldViolation("contactId", "give exactly one of contactId, accountId, dealId, leadId", "REQUIRED")])
        (column, raw), = given.items()
        anchor = parse_id(raw, rules.camel(column))
        bad_types = [t for t in types if t not in rules.TYPES]
        if bad_types:
            raise InvalidArgument("unknown type", violations=[FieldViolation("types", f"use {', '.join(rules.TYPES)}")])
        if column == "contact_id":
            related = await self.relations.for_contact(str(anchor))
        elif column == "account_id":
            related = await self.relations.for_account(str(anchor))
        elif column == "deal_id":
            related = await self.relations.for_deal(str(anchor))
        else:
            related = []
        ids: dict[str, set[uuid.UUID]] = {column: {anchor}}
        for rel in related:
            for value in rel.ids:
                try:
                    ids.setdefault(rel.link, set()).add(uuid.UUID(value))
                except ValueError:
                    continue
        matches = [getattr(a, col).in_(sorted(values)) for col, values in ids.items()]
        where = [a.tenant_id == _tenant(), or_(*matches)]
        if types:
            where.append(a.type.in_(types))
        p.sort = "-occurredAt"
        async with self.db.transaction() as conn:
            page = await listing.fetch_page(conn, _SELECT, LIST_SPEC, p, where)
        return Timeline(page, related)

    async def calendar(self, start: str, end: str, owner_id: str, types: builtins.list[str]) -> tuple[builtins.list[RowMapping], dt.datetime, dt.datetime, bool]:
        span, problems = rules.parse_range(start, end, CALENDAR_MAX_DAYS)
        if span is None:
            raise InvalidArgument("invalid range", violations=problems)
        lo, hi = span
        kinds = types or ["event", "call", "task"]
        if any(t not in rules.TYPES for t in kinds):
            raise InvalidArgument("unknown type", violations=[FieldViolation("types", f"use {', '.join(rules.TYPES)}")])
        timed = and_(a.start_at < hi, func.coalesce(a.end_at, a.start_at) >= lo,
                     or_(a.end_at.is_(None), a.end_at > lo))
        due = and_(a.start_at.is_(None), a.due_at >= lo, a.due_at < hi)
        where = [a.tenant_id == _tenant(), a.type.in_(kinds), or_(timed, due)]
        if owner_id:
            where.append(a.owner_id == parse_id(owner_id, "ownerId"))
        async with self.db.transaction() as conn:
            rows = (await conn.execute(
                _SELECT.where(*where).order_by(a.occurred_at, a.id).limit(CALENDAR_MAX_ITEMS + 1)
            )).mappings().all()
        return list(rows[:CALENDAR_MAX_ITEMS]), lo, hi, len(rows) > CALENDAR_MAX_ITEMS

    # --- availability and scheduling ----------------------------------------------------
    async def _busy(self, conn: AsyncConnection, users: Sequence[uuid.UUID], lo: dt.datetime, hi: dt.datetime,
                    exclude: uuid.UUID | None = None) -> dict[str, builtins.list[rules.Interval]]:
        pc = participants.c
        stmt = (select(pc.user_id, a.start_at, a.end_at).select_from(participants.join(activities, a.id == pc.activity_id))
                .where(pc.user_id.in_(list(users)), a.type == "event", a.status != "cancelled",
                       a.start_at < hi, a.end_at > lo, a.id != exclude if exclude else true()))
        out: dict[str, builtins.list[rules.Interval]] = {str(u): [] for u in users}
        for user, start, end in (await conn.execute(stmt)).all():
            out[str(user)].append(rules.Interval(start, end))
        return {u: rules.clip(ivs, lo, hi) for u, ivs in out.items()}

    def _users(self, raw: Sequence[str], field: str) -> builtins.list[uuid.UUID]:
        users: list[uuid.UUID] = []
        for i, value in enumerate(v.strip() for item in raw for v in item.split(",")):
            if not value:
                continue
            try:
                key = uuid.UUID(value)
            except ValueError:
                raise InvalidArgument("not a user id", violations=[FieldViolation(f"{field}[{i}]", "must be a UUID")]) from None
            if key not in users:
                users.append(key)
        if len(users) > MAX_USERS:
            raise InvalidArgument("too many users", violations=[FieldViolation(field, f"at most {MAX_USERS}", "TOO_MANY")])
        return users

    async def availability(self, user_ids: Sequence[str], start: str, end: str) -> Availability:
        span, problems = rules.parse_range(start, end, AVAILABILITY_MAX_DAYS)
        if span is None:
            raise InvalidArgument("invalid range", violations=problems)
        lo, hi = span
        users = self._users(user_ids, "userIds") or [u for u in [_caller()] if u]
        async with self.db.transaction() as conn:
            busy = await self._busy(conn, users, lo, hi)
        everyone = rules.merge(iv for ivs in busy.values() for iv in ivs)
        return Availability([(str(u), busy[str(u)], rules.free(busy[str(u)], lo, hi)) for u in users],
                            rules.free(everyone, lo, hi))

    async def organizer(self) -> ical.Person:
        """The caller as ORGANIZER: address and name from the auth service when it is here."""
        user = context.current().user_id
        try:
            info = await self.relations.call(AUTH, "GetUserInfo", {})
        except NotDeployed:
            return ical.Person(user_id=user)
        return ical.Person(email=str(getattr(info, "email", "")), name=str(getattr(info, "name", "")), user_id=user)

    async def schedule(self, request: Mapping[str, Any]) -> Scheduled:
        problems: list[FieldViolation] = []
        span, range_problems = rules.parse_range(request["from"], request["to"], AVAILABILITY_MAX_DAYS)
        problems += range_problems
        minutes = int(request["duration_minutes"] or 0)
        if not 5 <= minutes <= 480:
            problems.append(FieldViolation("durationMinutes", "must be between 5 and 480", "OUT_OF_RANGE"))
        step = int(request["slot_minutes"] or 15)
        if not 5 <= step <= 60:
            problems.append(FieldViolation("slotMinutes", "must be between 5 and 60", "OUT_OF_RANGE"))
        hours, hour_problems = rules.working_hours(*request["working_hours"])
        problems += hour_problems
        if not str(request["subject"]).strip():
            problems.append(FieldViolation("subject", "a meeting needs a subject", "REQUIRED"))
        if problems or span is None:
            raise validation(problems)
        users = self._users(request["attendee_user_ids"], "attendeeUserIds")
        organizer = _caller()
        everyone = ([organizer] if organizer else []) + [u for u in users if u != organizer]
        lo, hi = span
        async with self.db.transaction() as conn:
            busy = await self._busy(conn, everyone, lo, hi)
        slot = rules.first_common_slot((iv for ivs in busy.values() for iv in ivs), lo, hi,
                                       dt.timedelta(minutes=minutes), hours, dt.timedelta(minutes=step))
        if slot is None:
            raise Conflict("no common free slot in working hours within the range", reason="NO_FREE_SLOT",
                           violations=[FieldViolation("to", "every attendee is busy or outside working hours until then",
                                                      "NO_FREE_SLOT")])
        attendees = [dict(item) for item in request["attendees"]]
        listed = {str(item.get("user_id") or "") for item in attendees}
        attendees += [{"user_id": str(u), "email": "", "name": ""} for u in users if str(u) not in listed and u != organizer]
        values = {name: None for name in rules.WRITABLE} | {
            "type": "event", "subject": request["subject"], "body": request["body"], "location": request["location"],
            "start_at": slot.start, "end_at": slot.end, "attendees": attendees,
            **{k: request[k] for k in rules.LINKS},
        }
        clean, unverified = await self._checked(values)
        person = await self.organizer()
        async with self.db.transaction() as conn:
            # Book under a lock on the participants' busy time: a concurrent booking may not take the slot.
            for user in sorted(everyone):
                await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"calendar:{user}"})
            clash = await self._busy(conn, everyone, slot.start, slot.end)
            if any(clash.values()):
                raise Conflict("the slot was just taken; try again", reason="SLOT_TAKEN")
            row = await self._insert(conn, clean, unverified)
            invite = ical.invitation(row, person)
            await emit(conn, SCHEMA, "crm.activities.meeting.scheduled", str(row["id"]),
                       {"activity": public(row), "organizer": person.email or person.user_id,
                        "invitation": {"method": "REQUEST", "delivery": "attached"}})
        return Scheduled(row, invite)

    async def reschedule(self, activity_id: str, start: dt.datetime | None, end: dt.datetime | None,
                         due: dt.datetime | None, ignore_conflicts: bool) -> Scheduled:
        key = parse_id(activity_id)
        async with self.db.transaction() as conn:
            before = await self._get(conn, key)
        values = {name: before[name] for name in rules.WRITABLE}
        if before["type"] == "event":
            if start is None:
                raise validation([FieldViolation("startAt", "give the new start", "REQUIRED")])
            values["start_at"] = start
            values["end_at"] = end or start + (before["end_at"] - before["start_at"])
        elif before["type"] == "task":
            if due is None:
                raise validation([FieldViolation("dueAt", "give the new due time", "REQUIRED")])
            values["due_at"] = due
        elif before["type"] in ("note", "email"):
            raise validation([FieldViolation("startAt", f"a {before['type']} has no time to move", "NOT_SCHEDULABLE")])
        else:
            if start is None:
                raise validation([FieldViolation("startAt", "give the new start", "REQUIRED")])
            values["start_at"] = start
            values["end_at"] = end if end is not None else (
                start + (before["end_at"] - before["start_at"]) if before["end_at"] and before["start_at"] else None)
        if before["status"] == "cancelled":
            raise validation([FieldViolation("status", "a cancelled activity cannot be rescheduled", "CANCELLED")])
        clean, problems = rules.check(values)
        if problems:
            raise validation(problems)
        person = await self.organizer() if before["type"] == "event" else None
        async with self.db.transaction() as conn:
            current = await self._get(conn, key, lock=True)
            if current["type"] == "event" and not ignore_conflicts:
                users = sorted({uuid.UUID(str(current["owner_id"]))} if current["owner_id"] else set())
                users += [uuid.UUID(x["user_id"]) for x in current["attendees"]
                          if x.get("user_id") and uuid.UUID(x["user_id"]) not in users]
                for user in sorted(users):
                    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"calendar:{user}"})
                clash = await self._busy(conn, users, clean["start_at"], clean["end_at"], exclude=key)
                busy = [u for u, ivs in clash.items() if ivs]
                if busy:
                    raise Conflict("an attendee is busy at the new time", reason="SCHEDULE_CONFLICT",
                                   violations=[FieldViolation("startAt", f"user {u} is busy then", "CONFLICT") for u in busy])
            row = await self._apply(conn, current, clean, list(current["unverified_links"]),
                                    bump=current["type"] == "event", event="rescheduled")
        return Scheduled(row, ical.invitation(row, person) if person is not None else "")

    # --- account merges ------------------------------------------------------------------
    async def reassign_account(self, from_ids: Sequence[str], to_id: str) -> int:
        if not from_ids or len(from_ids) > MAX_REASSIGN:
            raise InvalidArgument("bad batch size", violations=[
                FieldViolation("fromAccountIds", f"send 1 to {MAX_REASSIGN} ids", "OUT_OF_RANGE")])
        sources = [parse_id(v, f"fromAccountIds[{i}]") for i, v in enumerate(from_ids)]
        target = parse_id(to_id, "toAccountId") if to_id else None
        if target is not None and target in sources:
            raise InvalidArgument("an account cannot be merged into itself", violations=[
                FieldViolation("toAccountId", "must not be one of fromAccountIds")])
        async with self.db.transaction() as conn:
            moved = (await conn.execute(
                update(activities).where(a.account_id.in_(sources))
                .values(account_id=target, updated_at=text("now()")).returning(a.id)
            )).scalars().all()
            if moved:
                await emit(conn, SCHEMA, "crm.activities.account.reassigned", str(target or ""), {
                    "fromAccountIds": [str(s) for s in sources], "toAccountId": str(target or ""),
                    "activityIds": [str(m) for m in moved]})
        return len(moved)

    # --- calendar connections ------------------------------------------------------------
    async def connection(self, conn: AsyncConnection, *, lock: bool = False) -> RowMapping:
        cc = calendar_connections.c
        stmt = select(calendar_connections).where(cc.user_id == _caller(), cc.tenant_id == _tenant())
        row = (await conn.execute(stmt.with_for_update() if lock else stmt)).mappings().first()
        if row is None:
            raise NotFound("no calendar connected: PUT /v1/activities/calendar/connection first",
                           reason="NO_CALENDAR_CONNECTION")
        return row

    async def get_connection(self) -> RowMapping:
        async with self.db.transaction() as conn:
            return await self.connection(conn)

    async def put_connection(self, url: str, username: str, password: str) -> RowMapping:
        url = url.strip()
        reason = "is required" if not url else await caldav.check_url(url, self.config.allow_loopback)
        problems = [FieldViolation("url", f"the calendar URL {reason}", "UNSAFE_URL" if url else "REQUIRED")] if reason else []
        if len(url) > 2000 or len(username) > 200 or len(password) > 500:
            problems.append(FieldViolation("url" if len(url) > 2000 else "username" if len(username) > 200 else "password",
                                           "too long", "TOO_LONG"))
        if problems:
            raise validation(problems)
        sealed = self.config.secrets.seal(password) if password else None
        user = _caller()
        if user is None:
            raise InvalidArgument("a calendar belongs to a user")
        cc = calendar_connections.c
        async with self.db.transaction() as conn:
            existing = (await conn.execute(select(calendar_connections).where(cc.user_id == user).with_for_update())
                        ).mappings().first()
            if existing is None:
                row = (await conn.execute(insert(calendar_connections).values(
                    id=uuid.uuid4(), tenant_id=_tenant(), user_id=user, url=url, username=username,
                    password_encrypted=sealed).returning(calendar_connections))).mappings().one()
            else:
                moved = existing["url"] != url
                values: dict[str, Any] = {"url": url, "username": username, "updated_at": text("now()")}
                if sealed is not None:
                    values["password_encrypted"] = sealed
                if moved:
                    # Another calendar: what was known about the old one no longer applies.
                    values.update(sync_token="", last_status="never", last_error="", last_synced_at=None)
                    await conn.execute(delete(calendar_items).where(calendar_items.c.connection_id == existing["id"]))
                row = (await conn.execute(update(calendar_connections).where(cc.id == existing["id"]).values(**values)
                                          .returning(calendar_connections))).mappings().one()
            if self.config.sync_interval_seconds:
                next_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.config.sync_interval_seconds)
                await conn.execute(text(
                    "INSERT INTO activities.calendar_sync_due (connection_id, tenant_id, user_id, next_at) "
                    "VALUES (:c, :t, :u, :n) ON CONFLICT (connection_id) DO NOTHING"),
                    {"c": row["id"], "t": row["tenant_id"], "u": user, "n": next_at})
            await emit(conn, SCHEMA, "crm.activities.calendar_connection.updated", str(row["id"]),
                       {"userId": str(user), "url": url, "username": username})
        return row

    async def delete_connection(self) -> None:
        async with self.db.transaction() as conn:
            row = await self.connection(conn, lock=True)
            await conn.execute(delete(calendar_connections).where(calendar_connections.c.id == row["id"]))
            await conn.execute(text("DELETE FROM activities.calendar_sync_due WHERE connection_id = :c"), {"c": row["id"]})
            await emit(conn, SCHEMA, "crm.activities.calendar_connection.deleted", str(row["id"]),
                       {"userId": str(row["user_id"])})

    async def start_sync(self) -> RowMapping:
        async with self.db.transaction() as conn:
            row = await self.connection(conn)
            job = await self.jobs.create(conn, SYNC_KIND, params={"connectionId": str(row["id"])})
        self.jobs.start(job["id"], context.tenant_id())
        return job

    async def get_sync_job(self, job_id: str) -> RowMapping:
        async with self.db.transaction() as conn:
            job = await self.jobs.get(conn, job_id, SYNC_KIND)
        if job["created_by"] != _caller():  # a user's calendar syncs are theirs to see
            raise NotFound("job not found")
        return job
