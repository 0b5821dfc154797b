"""Two-way sync of a user's events with their CalDAV calendar, run as a job.

One sync: pull the server's changes since the stored sync token (RFC 6578 sync-collection; a
full listing when the server forgot the token), then push local changes (PUT with If-Match on the
last known ETag, If-None-Match: * for new ones) and local deletions (DELETE).

Conflict rule, applied per event when both sides changed since they were last in step:
- Between two edits, the later modification wins: the server copy's LAST-MODIFIED (or DTSTAMP)
  against the activity's updatedAt; a tie goes to the server's copy.
- A deletion wins over an edit, on either side: an event deleted here is deleted on the server
  even if it was edited there meanwhile, and one deleted on the server is deleted here.
A PUT that meets a changed server copy (412) fetches it and applies the same rule.

Which events: those the connection's user owns, of type event. Events found only on the
server become events of that user. The whole sync commits at once; when the server fails midway,
nothing local is kept and the next sync starts from the same token (events already written to
the server are matched again by their UID, so nothing is duplicated).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.activities import caldav, ical, rules
from services.activities.tables import SCHEMA, activities, calendar_connections, calendar_items
from services.kernel import context
from services.kernel.errors import FailedPrecondition
from services.kernel.events import emit
from services.kernel.jobs import JobResult

if TYPE_CHECKING:
    from services.activities.domain import ActivitiesDomain

log = logging.getLogger(__name__)

a = activities.c
ci = calendar_items.c
cc = calendar_connections.c
SCHEDULER_TICK_SECONDS = 30.0


class SyncFailed(FailedPrecondition):
    """The calendar server could not be synced with (the job fails with this message)."""

    default_reason = "CALENDAR_SYNC_FAILED"


class CalendarSync:
    def __init__(self, domain: ActivitiesDomain) -> None:
        self.domain = domain
        self._scheduler: asyncio.Task[None] | None = None

    # --- the job ---------------------------------------------------------------------------
    async def run(self, job: RowMapping, conn: AsyncConnection) -> JobResult:
        connection_id = uuid.UUID(job["params"]["connectionId"])
        # One sync per calendar at a time.
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"caldav:{connection_id}"})
        connection = (await conn.execute(select(calendar_connections).where(cc.id == connection_id))).mappings().first()
        if connection is None:
            raise SyncFailed("the calendar connection was removed")
        client = caldav.CalDavClient(connection["url"], connection["username"],
                                     self.domain.config.secrets.open(connection["password_encrypted"]),
                                     allow_loopback=self.domain.config.allow_loopback)
        result = JobResult()
        try:
            token = await self._pull(conn, client, connection, result)
            await self._push(conn, client, connection, result)
        except caldav.CalDavError as exc:
            await self._record(connection_id, "failed", exc.message)
            raise SyncFailed(f"calendar sync failed: {exc.message}") from None
        finally:
            await client.close()
        await conn.execute(update(calendar_connections).where(cc.id == connection_id).values(
            sync_token=token, last_synced_at=text("now()"), last_status="ok", last_error=""))
        await emit(conn, SCHEMA, "crm.activities.calendar.synced", str(connection_id), {
            "userId": str(connection["user_id"]), "changes": result.succeeded, "problems": result.failed})
        return result

    async def _record(self, connection_id: uuid.UUID, status: str, error: str) -> None:
        """The outcome on the connection, in its own transaction (the job's rolls back)."""
        async with self.domain.db.transaction() as conn:
            await conn.execute(update(calendar_connections).where(cc.id == connection_id).values(
                last_status=status, last_error=error[:500], last_synced_at=text("now()")))

    # --- pull ----------------------------------------------------------------------------
    async def _pull(self, conn: AsyncConnection, client: caldav.CalDavClient, connection: RowMapping,
                    result: JobResult) -> str:
        full = not connection["sync_token"]
        try:
            found = await client.sync(connection["sync_token"])
        except caldav.InvalidSyncToken:
            full = True
            found = await client.sync("")
        items = {r["href"]: r for r in (await conn.execute(
            select(calendar_items).where(ci.connection_id == connection["id"]))).mappings().all()}
        deleted = list(found.deleted)
        if full:
            # A full listing reports no deletions: what we knew of and is gone was deleted there.
            listed = {c.href for c in found.changed}
            deleted += [href for href in items if href not in listed]
        for change in found.changed:
            result.total += 1
            try:
                if await self._apply_remote(conn, client, connection, items.get(change.href), change):
                    result.succeeded += 1
            except ValueError as exc:
                result.failed += 1
                result.errors.append({"row": result.total, "field": "", "code": "BAD_EVENT",
                                      "message": f"{change.href}: {exc}"[:300]})
        for href in deleted:
            item = items.get(href)
            if item is None:
                continue
            result.total += 1
            result.succeeded += 1
            if item["activity_id"] is not None:
                row = (await conn.execute(select(*[c for c in activities.c if c.key != "search_text"])
                                          .where(a.id == item["activity_id"]))).mappings().first()
                if row is not None:
                    await self.domain._delete(conn, row)  # deletion wins over a local edit
            await conn.execute(delete(calendar_items).where(ci.id == item["id"]))
        return found.token

    async def _apply_remote(self, conn: AsyncConnection, client: caldav.CalDavClient, connection: RowMapping,
                            item: RowMapping | None, change: caldav.Change) -> bool:
        """Take one server-side change in; True when something changed here."""
        if item is not None and item["etag"] and item["etag"] == change.etag:
            return False  # our own write coming back
        if not change.data:
            return False
        try:
            remote = ical.parse_event(change.data)
        except Exception as exc:  # noqa: BLE001 - icalendar raises many types on malformed input
            raise ValueError(f"unreadable calendar object ({exc.__class__.__name__})") from None
        if remote is None or not remote.uid:
            return False
        if item is None:
            # Maybe one of ours whose item was lost (a sync that failed after its PUT).
            row = (await conn.execute(select(*[c for c in activities.c if c.key != "search_text"]).where(
                a.ical_uid == remote.uid, a.owner_id == connection["user_id"]))).mappings().first()
            if row is None:
                await self._create_local(conn, connection, change, remote)
                return True
            item_id = uuid.uuid4()
            await conn.execute(insert(calendar_items).values(
                id=item_id, tenant_id=connection["tenant_id"], connection_id=connection["id"], activity_id=row["id"],
                uid=remote.uid, href=change.href, etag="", local_version=None))
            item = (await conn.execute(select(calendar_items).where(ci.id == item_id))).mappings().one()
        if item["activity_id"] is None:
            return False  # deleted here: the push deletes it there (deletion wins)
        row = (await conn.execute(select(*[c for c in activities.c if c.key != "search_text"]).where(
            a.id == item["activity_id"]).with_for_update())).mappings().first()
        if row is None:
            return False
        local_changed = item["local_version"] is None or row["updated_at"] > item["local_version"]
        remote_wins = not local_changed or remote.last_modified is None or remote.last_modified >= row["updated_at"]
        if not remote_wins:
            # Ours is newer: remember the server's version so the push may overwrite it.
            await conn.execute(update(calendar_items).where(ci.id == item["id"]).values(etag=change.etag))
            return False
        values = {name: row[name] for name in rules.WRITABLE}
        values.update(subject=remote.subject or row["subject"] or "(no title)", body=remote.body, location=remote.location,
                      start_at=remote.start_at, end_at=remote.end_at, duration_seconds=0,
                      status=remote.status if row["status"] != "completed" or remote.status == "cancelled" else "completed")
        if remote.attendees:
            values["attendees"] = remote.attendees
        clean, problems = rules.check(values)
        if problems:
            raise ValueError("; ".join(f"{p.field}: {p.message}" for p in problems))
        updated = await self.domain._apply(conn, row, clean, list(row["unverified_links"]), bump=False)
        if remote.sequence > updated["sequence"]:
            await conn.execute(update(activities).where(a.id == row["id"]).values(sequence=remote.sequence))
        await conn.execute(update(calendar_items).where(ci.id == item["id"]).values(
            etag=change.etag, local_version=updated["updated_at"], synced_at=text("now()")))
        return True

    async def _create_local(self, conn: AsyncConnection, connection: RowMapping, change: caldav.Change,
                            remote: ical.RemoteEvent) -> None:
        values: dict[str, Any] = {name: None for name in rules.WRITABLE}
        values.update(type="event", subject=remote.subject or "(no title)", body=remote.body, location=remote.location,
                      start_at=remote.start_at, end_at=remote.end_at, status=remote.status,
                      owner_id=connection["user_id"], attendees=remote.attendees)
        clean, problems = rules.check(values)
        if problems:
            raise ValueError("; ".join(f"{p.field}: {p.message}" for p in problems))
        clean["ical_uid"], clean["sequence"] = remote.uid, remote.sequence
        # Created on behalf of the calendar's owner (the job runs as whoever started it).
        bound = context.bind(context.RequestContext(tenant_id=str(connection["tenant_id"]),
                                                    user_id=str(connection["user_id"])))
        try:
            row = await self.domain._insert(conn, clean, [])
        finally:
            context.reset(bound)
        await conn.execute(insert(calendar_items).values(
            id=uuid.uuid4(), tenant_id=connection["tenant_id"], connection_id=connection["id"], activity_id=row["id"],
            uid=remote.uid, href=change.href, etag=change.etag, local_version=row["updated_at"]))

    # --- push ----------------------------------------------------------------------------
    async def _push(self, conn: AsyncConnection, client: caldav.CalDavClient, connection: RowMapping,
                    result: JobResult) -> None:
        organizer = ical.Person(user_id=str(connection["user_id"]))
        pending = (await conn.execute(
            select(*[c for c in activities.c if c.key != "search_text"], ci.id.label("item_id"), ci.href, ci.etag,
                   ci.local_version)
            .select_from(activities.outerjoin(calendar_items, (ci.activity_id == a.id) & (ci.connection_id == connection["id"])))
            .where(a.owner_id == connection["user_id"], a.type == "event", a.start_at.is_not(None),
                   a.end_at.is_not(None), (ci.id.is_(None)) | (ci.local_version.is_(None)) | (a.updated_at > ci.local_version))
        )).mappings().all()
        for row in pending:
            result.total += 1
            href = row["href"] or client.href_for(row["ical_uid"])
            body = ical.calendar(ical.vevent(row, organizer)).to_ical().decode()
            etag = await client.put(href, body, row["etag"] or "")
            if etag is None:
                # The server's copy changed since we last saw it: fetch it and apply the rule.
                got = await client.get(href)
                if got is not None:
                    item = (await conn.execute(select(calendar_items).where(ci.id == row["item_id"]))).mappings().first()
                    await self._apply_remote(conn, client, connection, item, caldav.Change(href, got[0], got[1]))
                    fresh = (await conn.execute(select(calendar_items).where(ci.id == row["item_id"]))).mappings().first()
                    current = (await conn.execute(select(a.updated_at).where(a.id == row["id"]))).scalar_one()
                    if fresh is None or fresh["local_version"] is None or current > fresh["local_version"]:
                        etag = await client.put(href, body, got[0])  # ours is newer: overwrite that version
                    else:
                        result.succeeded += 1
                        continue
                if etag is None:
                    result.failed += 1
                    result.errors.append({"row": result.total, "field": "", "code": "CONFLICT",
                                          "message": f"{href}: changed on the server during the sync"})
                    continue
            result.succeeded += 1
            if row["item_id"] is None:
                await conn.execute(insert(calendar_items).values(
                    id=uuid.uuid4(), tenant_id=connection["tenant_id"], connection_id=connection["id"],
                    activity_id=row["id"], uid=row["ical_uid"], href=href, etag=etag, local_version=row["updated_at"]))
            else:
                await conn.execute(update(calendar_items).where(ci.id == row["item_id"]).values(
                    etag=etag, local_version=row["updated_at"], synced_at=text("now()")))
        gone = (await conn.execute(select(calendar_items).where(
            ci.connection_id == connection["id"], ci.activity_id.is_(None)))).mappings().all()
        for item in gone:
            result.total += 1
            # Deletion wins: if the server's copy changed meanwhile, delete that version too.
            if not await client.delete(item["href"], item["etag"]):
                await client.delete(item["href"], "")
            await conn.execute(delete(calendar_items).where(ci.id == item["id"]))
            result.succeeded += 1

    # --- background schedule ---------------------------------------------------------------
    def start_scheduler(self) -> None:
        if self.domain.config.sync_interval_seconds and self._scheduler is None:
            self._scheduler = asyncio.create_task(self._schedule(), name="caldav-scheduler")

    async def stop_scheduler(self) -> None:
        if self._scheduler is not None:
            self._scheduler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scheduler
            self._scheduler = None

    async def _schedule(self) -> None:
        """Start a sync job for every calendar whose turn has come (each process may run this:
        SKIP LOCKED hands each due calendar to one of them)."""
        interval = dt.timedelta(seconds=self.domain.config.sync_interval_seconds)
        while True:
            try:
                async with self.domain.db.transaction(tenant_id="") as conn:
                    due = (await conn.execute(text(
                        "UPDATE activities.calendar_sync_due SET next_at = now() + :i WHERE connection_id IN ("
                        "SELECT connection_id FROM activities.calendar_sync_due WHERE next_at <= now() "
                        "ORDER BY next_at LIMIT 50 FOR UPDATE SKIP LOCKED) RETURNING connection_id, tenant_id, user_id"),
                        {"i": interval})).all()
                for connection_id, tenant_id, user_id in due:
                    bound = context.bind(context.RequestContext(tenant_id=str(tenant_id), user_id=str(user_id)))
                    try:
                        async with self.domain.db.transaction() as conn:
                            exists = (await conn.execute(select(cc.id).where(cc.id == connection_id))).first()
                            if exists is None:
                                await conn.execute(text("DELETE FROM activities.calendar_sync_due WHERE connection_id = :c"),
                                                   {"c": connection_id})
                                continue
                            job = await self.domain.jobs.create(conn, "activities.calendar_sync",
                                                                params={"connectionId": str(connection_id)})
                        self.domain.jobs.start(job["id"], str(tenant_id))
                    finally:
                        context.reset(bound)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("calendar sync scheduler: retrying after error", exc_info=True)
            await asyncio.sleep(SCHEDULER_TICK_SECONDS)
