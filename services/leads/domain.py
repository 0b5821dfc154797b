"""The leads domain: storage and rules behind the lead rpcs. No gRPC here.

Conversion (a saga across services) lives in conversion.py, web forms in forms.py and
assignment rules in routing.py; they share this module's helpers.
"""

from __future__ import annotations

import builtins
import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.kernel import context, listing, preconditions
from services.kernel.db import Database
from services.kernel.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    from_database,
    validation,
)
from services.kernel.events import emit
from services.leads import enrich
from services.leads.capture import Captured
from services.leads.rules import WRITABLE, camel, check
from services.leads.tables import SCHEMA, leads, score_history

MAX_BULK = 500
MAX_ENRICH = 100
c = leads.c
LIST_SPEC = listing.ListSpec(
    fields={
        "id": listing.Field(c.id, "uuid"),
        "firstName": listing.Field(c.first_name, "text", sortable=True),
        "lastName": listing.Field(c.last_name, "text", sortable=True),
        "email": listing.Field(c.email, "ci_text"),
        "phone": listing.Field(c.phone, "text"),
        "company": listing.Field(c.company, "ci_text", sortable=True),
        "title": listing.Field(c.title, "text"),
        "source": listing.Field(c.source, "text"),
        "status": listing.Field(c.status, "text"),
        "score": listing.Field(c.score, "int", sortable=True),
        "ownerId": listing.Field(c.owner_id, "uuid"),
        "territory": listing.Field(c.territory, "text"),
        "country": listing.Field(c.country, "text"),
        "tag": listing.Field(c.tags, "tags"),
        "tags": listing.Field(c.tags, "tags"),
        "createdAt": listing.Field(c.created_at, "time", sortable=True),
        "updatedAt": listing.Field(c.updated_at, "time", sortable=True),
    },
    id_column=c.id,
    search_column=c.search_text,
    default_sort="-createdAt",
)
SELECT = select(*[col for col in leads.c if col.key not in ("search_text", "capture_ref")])
COLUMNS = SELECT.selected_columns
FROZEN = {"converting": "CONVERSION_IN_PROGRESS", "converted": "LEAD_CONVERTED"}


def parse_id(value: str, name: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument(f"{name} must be a UUID", violations=[FieldViolation(name, "must be a UUID")]) from None


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def public(row: RowMapping) -> dict[str, Any]:
    """A lead as events carry it: the API's field names, JSON values."""
    out: dict[str, Any] = {"id": str(row["id"])}
    for name in (*WRITABLE, "converted_contact_id", "converted_account_id", "converted_deal_id", "converted_at",
                 "conversion_id"):
        out[_camel_any(name)] = _plain(row[name])
    return out


def _camel_any(name: str) -> str:
    head, *rest = name.split("_")
    return camel(name) if name in ("first_name", "last_name", "owner_id", "custom_fields") else head + "".join(
        w.capitalize() for w in rest)


def changes(before: RowMapping, after: RowMapping) -> dict[str, dict[str, Any]]:
    old, new = public(before), public(after)
    return {k: {"from": old[k], "to": new[k]} for k in new if old.get(k) != new[k]}


def frozen(row: Mapping[Any, Any]) -> FailedPrecondition | None:
    """The refusal for changing a lead that is being converted or was converted."""
    reason = FROZEN.get(str(row["status"]))
    if reason is None:
        return None
    what = "is being converted" if row["status"] == "converting" else "was converted"
    return FailedPrecondition(f"the lead {what} and cannot change", reason=reason)


@dataclass
class ItemResult:
    index: int
    success: bool
    id: str = ""
    row: RowMapping | None = None
    errors: list[FieldViolation] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)


def item_error(index: int, raw: str, err: DomainError, path: str) -> ItemResult:
    return ItemResult(index, False, raw, errors=err.violations or [FieldViolation(path, err.message, err.reason)])


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


class LeadsDomain:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- single records ------------------------------------------------------------------
    @staticmethod
    async def fetch(conn: AsyncConnection, lead_id: uuid.UUID, *, lock: bool = False) -> RowMapping:
        stmt = SELECT.where(c.id == lead_id, c.tenant_id == uuid.UUID(context.tenant_id()))
        row = (await conn.execute(stmt.with_for_update() if lock else stmt)).mappings().first()
        if row is None:
            raise NotFound("lead not found")
        return row

    async def get(self, lead_id: str) -> RowMapping:
        async with self.db.transaction() as conn:
            return await self.fetch(conn, parse_id(lead_id))

    def _new_row(self, values: Mapping[Any, Any]) -> dict[str, Any]:
        ctx = context.current()
        row = {name: values[name] for name in WRITABLE if name in values}
        row.update(id=uuid.uuid4(), tenant_id=uuid.UUID(context.tenant_id()),
                   created_by=uuid.UUID(ctx.user_id) if ctx.user_id else None)
        if "owner_id" not in values and ctx.user_id:
            row["owner_id"] = uuid.UUID(ctx.user_id)
        return row

    async def insert(self, conn: AsyncConnection, values: Mapping[Any, Any], *, captured: Captured | None = None,
                     enrichment: dict[str, Any] | None = None) -> RowMapping:
        """Store a checked lead (in the caller's transaction) and announce it."""
        row = self._new_row(values)
        if enrichment:
            row["enrichment"] = enrichment
        if captured is not None:
            row.update(capture=captured.capture, capture_ref=captured.ref)
        try:
            async with conn.begin_nested():
                saved = (await conn.execute(insert(leads).values(row).returning(*COLUMNS))).mappings().one()
        except IntegrityError:
            existing = (await conn.execute(select(c.id).where(c.capture_ref == row.get("capture_ref", "")))).scalar()
            raise AlreadyExists("this was captured before", reason="LEAD_ALREADY_CAPTURED",
                                metadata={"leadId": str(existing or "")}) from None
        if saved["score"]:
            await self._record_score(conn, saved["id"], 0, saved["score"], "initial score", "create")
        await emit(conn, SCHEMA, "crm.leads.lead.created", str(saved["id"]), {"lead": public(saved)})
        return saved

    async def create(self, values: Mapping[Any, Any]) -> RowMapping:
        clean, problems = check(values)
        if problems:
            raise validation(problems)
        async with self.db.transaction() as conn:
            return await self.insert(conn, clean)

    async def capture(self, captured: Captured, *, source: str, prefix: str = "", strict: bool = True) -> RowMapping:
        """A captured lead, enriched before it is stored (offline, so it costs nothing to wait).

        Not `strict` (emails, profiles: nobody typed the values for this form), a value that
        breaks the rules is left out instead of refusing the lead, as long as a valid lead remains.
        """
        values = dict(captured.values)
        values["source"] = values.get("source") or source
        clean, problems = check(values, prefix)
        if problems and not strict:
            bad = {p.field.removeprefix(prefix) for p in problems}
            values = {k: v for k, v in values.items() if camel(k) not in bad or k == "source"}
            clean, problems = check(values, prefix)
        if problems:
            raise validation(problems)
        changes_, enrichment = enrich.apply(clean, enrich.infer(clean), now_iso())
        for key, value in captured.signature.items():
            enrichment.setdefault(f"signature{key.capitalize()}", {
                "value": value, "source": "email_signature", "inferred": True, "applied": True, "inferredAt": now_iso()})
        clean.update(changes_)
        async with self.db.transaction() as conn:
            return await self.insert(conn, clean, captured=captured, enrichment=enrichment)

    async def update(self, lead_id: str, values: Mapping[Any, Any], mask: set[str] | None) -> RowMapping:
        key = parse_id(lead_id)
        if mask is not None:
            unknown = mask - set(WRITABLE)
            if unknown:
                raise InvalidArgument("unknown field in updateMask", violations=[
                    FieldViolation("updateMask", f"not a writable field: {camel(n)}") for n in sorted(unknown)])
            values = {k: v for k, v in values.items() if k in mask}
        clean, problems = check(values, partial=mask is not None)
        if problems:
            raise validation(problems)
        async with self.db.transaction() as conn:
            before = await self.fetch(conn, key, lock=True)
            preconditions.require_current(before["updated_at"])
            refusal = frozen(before)
            if refusal:
                raise refusal
            merged = {**dict(before), **clean}
            if not (merged["first_name"] or merged["last_name"] or merged["email"]):
                raise validation([FieldViolation("firstName", "a lead needs a first name, a last name or an email", "REQUIRED")])
            extra: dict[str, Any] = {}
            if clean.get("status") == "qualified" and before["status"] != "qualified":
                extra["qualified_at"] = text("now()")
            row = (await conn.execute(update(leads).where(c.id == key).values(**clean, **extra, updated_at=text("now()"))
                                      .returning(*COLUMNS))).mappings().one()
            if row["score"] != before["score"]:
                await self._record_score(conn, key, before["score"], row["score"], "", "update")
            diff = changes(before, row)
            if diff:
                await emit(conn, SCHEMA, "crm.leads.lead.updated", str(key), {"lead": public(row), "changes": diff})
                if "ownerId" in diff:
                    await emit(conn, SCHEMA, "crm.leads.lead.assigned", str(key),
                               {"leadId": str(key), "ownerId": diff["ownerId"]["to"], "previousOwnerId": diff["ownerId"]["from"],
                                "by": "update"})
        return row

    async def delete(self, lead_id: str) -> None:
        key = parse_id(lead_id)
        async with self.db.transaction() as conn:
            before = await self.fetch(conn, key, lock=True)
            preconditions.require_current(before["updated_at"])
            if before["status"] == "converting":
                raise FailedPrecondition("the lead is being converted", reason="CONVERSION_IN_PROGRESS")
            await conn.execute(delete(leads).where(c.id == key))
            await emit(conn, SCHEMA, "crm.leads.lead.deleted", str(key), {"lead": public(before)})

    # --- lists ---------------------------------------------------------------------------
    async def list(self, p: listing.ListParams, unassigned: bool | None = None) -> listing.Page:
        where = [c.tenant_id == uuid.UUID(context.tenant_id())]
        if unassigned is not None:
            where.append(c.owner_id.is_(None) if unassigned else c.owner_id.is_not(None))
        async with self.db.transaction() as conn:
            return await listing.fetch_page(conn, SELECT, LIST_SPEC, p, where)

    # --- qualification -------------------------------------------------------------------
    @staticmethod
    def _qualify_values(status: str, reason: str) -> dict[str, Any]:
        status = (status or "qualified").strip().lower()
        problems = []
        if status not in ("qualified", "unqualified"):
            problems.append(FieldViolation("status", "must be qualified or unqualified"))
        if len(reason) > 1000:
            problems.append(FieldViolation("reason", "must be at most 1000 characters", "TOO_LONG"))
        if problems:
            raise validation(problems)
        return {"status": status, "status_reason": reason.strip()}

    async def _qualify(self, conn: AsyncConnection, key: uuid.UUID, values: dict[str, Any]) -> RowMapping:
        before = await self.fetch(conn, key, lock=True)
        refusal = frozen(before)
        if refusal:
            raise refusal
        extra = {"qualified_at": text("now()")} if values["status"] == "qualified" else {}
        row = (await conn.execute(update(leads).where(c.id == key).values(**values, **extra, updated_at=text("now()"))
                                  .returning(*COLUMNS))).mappings().one()
        event = "qualified" if values["status"] == "qualified" else "disqualified"
        await emit(conn, SCHEMA, f"crm.leads.lead.{event}", str(key),
                   {"lead": public(row), "previousStatus": before["status"], "reason": values["status_reason"]})
        return row

    async def qualify(self, lead_id: str, status: str, reason: str) -> RowMapping:
        key = parse_id(lead_id)
        values = self._qualify_values(status, reason)
        async with self.db.transaction() as conn:
            return await self._qualify(conn, key, values)

    async def bulk_qualify(self, ids: Sequence[str], status: str, reason: str) -> builtins.list[ItemResult]:
        check_batch(ids, MAX_BULK)
        values = self._qualify_values(status, reason)
        results: list[ItemResult] = []
        async with self.db.transaction() as conn:
            for index, raw in enumerate(ids):
                path = f"ids[{index}]"
                try:
                    key = parse_id(raw, path)
                    async with conn.begin_nested():
                        row = await self._qualify(conn, key, values)
                    results.append(ItemResult(index, True, raw, row))
                except DomainError as err:
                    results.append(item_error(index, raw, err, path))
                except DBAPIError as exc:
                    mapped = from_database(exc)
                    if mapped is None:
                        raise
                    results.append(item_error(index, raw, mapped, path))
        return results

    # --- scoring -------------------------------------------------------------------------
    async def _record_score(self, conn: AsyncConnection, lead_id: uuid.UUID, previous: int, score: int, reason: str,
                            source: str) -> None:
        ctx = context.current()
        await conn.execute(insert(score_history).values(
            id=uuid.uuid4(), tenant_id=uuid.UUID(context.tenant_id()), lead_id=lead_id, previous_score=previous,
            score=score, reason=reason, source=source, changed_by=uuid.UUID(ctx.user_id) if ctx.user_id else None))

    async def score(self, lead_id: str, score: int, reason: str) -> RowMapping:
        key = parse_id(lead_id)
        problems = []
        if not 0 <= score <= 100:
            problems.append(FieldViolation("score", "must be a whole number from 0 to 100", "OUT_OF_RANGE"))
        reason = " ".join(reason.split())
        if not reason:
            problems.append(FieldViolation("reason", "say why the score changes", "REQUIRED"))
        elif len(reason) > 1000:
            problems.append(FieldViolation("reason", "must be at most 1000 characters", "TOO_LONG"))
        if problems:
            raise validation(problems)
        async with self.db.transaction() as conn:
            before = await self.fetch(conn, key, lock=True)
            refusal = frozen(before)
            if refusal:
                raise refusal
            row = (await conn.execute(update(leads).where(c.id == key).values(score=score, updated_at=text("now()"))
                                      .returning(*COLUMNS))).mappings().one()
            await self._record_score(conn, key, before["score"], score, reason, "manual")
            await emit(conn, SCHEMA, "crm.leads.lead.scored", str(key),
                       {"leadId": str(key), "previousScore": before["score"], "score": score, "reason": reason})
        return row

    async def scoring_history(self, lead_id: str, p: listing.ListParams) -> listing.Page:
        key = parse_id(lead_id)
        h = score_history.c
        spec = listing.ListSpec(fields={"changedAt": listing.Field(h.changed_at, "time", sortable=True)},
                                id_column=h.id, default_sort="-changedAt")
        async with self.db.transaction() as conn:
            await self.fetch(conn, key)
            return await listing.fetch_page(conn, select(score_history), spec, p, [h.lead_id == key])

    # --- enrichment ----------------------------------------------------------------------
    async def enrich(self, ids: Sequence[str]) -> builtins.list[ItemResult]:
        check_batch(ids, MAX_ENRICH)
        results: list[ItemResult] = []
        async with self.db.transaction() as conn:
            for index, raw in enumerate(ids):
                path = f"ids[{index}]"
                try:
                    key = parse_id(raw, path)
                    async with conn.begin_nested():
                        row, found = await self._enrich_one(conn, key)
                    results.append(ItemResult(index, True, raw, row, extra=found))
                except DomainError as err:
                    results.append(item_error(index, raw, err, path))
                except DBAPIError as exc:
                    mapped = from_database(exc)
                    if mapped is None:
                        raise
                    results.append(item_error(index, raw, mapped, path))
        return results

    async def _enrich_one(self, conn: AsyncConnection, key: uuid.UUID) -> tuple[RowMapping, builtins.list[str]]:
        before = await self.fetch(conn, key, lock=True)
        refusal = frozen(before)
        if refusal:
            raise refusal
        found = enrich.infer(before)
        fills, enrichment = enrich.apply(before, found, now_iso())
        row = (await conn.execute(update(leads).where(c.id == key).values(**fills, enrichment=enrichment,
                                                                             updated_at=text("now()"))
                                  .returning(*COLUMNS))).mappings().one()
        names = [f.field for f in found]
        await emit(conn, SCHEMA, "crm.leads.lead.enriched", str(key),
                   {"leadId": str(key), "inferred": {f.field: f.value for f in found}, "applied": sorted(fills)})
        return row, names

    # --- analytics -----------------------------------------------------------------------
    async def sources(self, start: dt.date, end: dt.date) -> builtins.list[RowMapping]:
        """Per source (and, with source NULL, for all): one aggregation over the period."""
        stmt = (
            select(
                c.source,
                func.count().label("leads"),
                func.count().filter(c.qualified_at.is_not(None) | c.status.in_(("qualified", "converted"))).label("qualified"),
                func.count().filter(c.status == "converted").label("converted"),
                func.coalesce(func.avg(c.score), 0).label("average_score"),
            )
            .where(c.tenant_id == uuid.UUID(context.tenant_id()),
                   c.created_at >= dt.datetime.combine(start, dt.time(), dt.UTC),
                   c.created_at < dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC))
            .group_by(func.rollup(c.source))
            .order_by(func.count().desc(), c.source)
        )
        async with self.db.transaction() as conn:
            return list((await conn.execute(stmt)).mappings().all())


def check_batch(ids: Sequence[str], most: int) -> None:
    if not ids or len(ids) > most:
        raise InvalidArgument("bad batch size", violations=[FieldViolation("ids", f"send 1 to {most} ids", "OUT_OF_RANGE")])


def anonymous_in(tenant_id: str) -> context.RequestContext:
    """An anonymous caller of `tenant_id`: public captures learn their tenant from the form key,
    and a token that happens to come along (another tenant's, even) lends them nobody's identity."""
    ctx = context.current()
    return context.RequestContext(request_id=ctx.request_id, tenant_id=tenant_id, client_ip=ctx.client_ip,
                                  user_agent=ctx.user_agent)
