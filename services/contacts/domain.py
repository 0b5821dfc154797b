"""The contacts domain: storage and rules behind the rpcs. No gRPC here."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import datetime as dt
import itertools
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, text, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.contacts import dedupe, tabular
from services.contacts.rules import RELATIONSHIP_TYPES, WRITABLE_FIELDS, camel, check
from services.contacts.tables import SCHEMA, contacts, relationships
from services.kernel import context, listing, preconditions
from services.kernel.db import Database, Row, raw_query
from services.kernel.errors import (
    AlreadyExists,
    FieldViolation,
    InvalidArgument,
    NotFound,
    validation,
)
from services.kernel.events import emit
from services.kernel.jobs import JobResult, JobRunner

MAX_BULK = 500
MAX_REASSIGN = 100
IMPORT_KIND = "contacts.import"
IMPORT_CHUNK = 2000  # rows checked, then loaded, at a time

# Which of these account ids the caller cannot link to (unknown, another tenant's, out of sight).
# Answered by the accounts service; without one every id is accepted.
MissingAccounts = Callable[[set[uuid.UUID]], Awaitable[set[uuid.UUID]]]


async def _no_account_check(ids: set[uuid.UUID]) -> set[uuid.UUID]:
    return set()

c = contacts.c
LIST_SPEC = listing.ListSpec(
    fields={
        "id": listing.Field(c.id, "uuid"),
        "firstName": listing.Field(c.first_name, "text", sortable=True),
        "lastName": listing.Field(c.last_name, "text", sortable=True),
        "email": listing.Field(c.email, "ci_text", sortable=True),
        "phone": listing.Field(c.phone, "text"),
        "title": listing.Field(c.title, "text"),
        "company": listing.Field(c.company, "ci_text", sortable=True),
        "accountId": listing.Field(c.account_id, "uuid"),
        "ownerId": listing.Field(c.owner_id, "uuid"),
        "lifecycleStage": listing.Field(c.lifecycle_stage, "text"),
        "source": listing.Field(c.source, "text"),
        "tag": listing.Field(c.tags, "tags"),
        "tags": listing.Field(c.tags, "tags"),
        "createdAt": listing.Field(c.created_at, "time", sortable=True),
        "updatedAt": listing.Field(c.updated_at, "time", sortable=True),
    },
    id_column=c.id,
    search_column=c.search_text,
    default_sort="-createdAt",
)
_SELECT = select(*[col for col in contacts.c if col.key != "search_text"])
_GET = raw_query(_SELECT.where(c.id == bindparam("id"), c.tenant_id == bindparam("tenant")))
# The create's one statement, written once for `Database.write` (asyncpg's $n parameters).
_INSERT_COLUMNS = ("id", "tenant_id", *WRITABLE_FIELDS, "created_by")
_INSERT = (f"INSERT INTO {SCHEMA}.contacts ({', '.join(_INSERT_COLUMNS)}) "
           f"VALUES ({', '.join(f'${i}' for i in range(1, len(_INSERT_COLUMNS) + 1))}) "
           f"RETURNING {', '.join(col.name for col in _SELECT.selected_columns)}")
_COLUMN_DEFAULTS: dict[str, Any] = {"tags": [], "address": {}, "custom_fields": {}, "account_id": None,
                                    "owner_id": None, "created_by": None}


def parse_id(value: str, name: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument(f"{name} must be a UUID", violations=[FieldViolation(name, "must be a UUID")]) from None


def public(row: Row) -> dict[str, Any]:
    """A contact as events carry it: the API's field names, JSON values."""
    out: dict[str, Any] = {"id": str(row["id"])}
    for name in WRITABLE_FIELDS:
        value = row[name]
        out[camel(name)] = str(value) if isinstance(value, uuid.UUID) else value
    return out


def changes(before: RowMapping, after: RowMapping) -> dict[str, dict[str, Any]]:
    old, new = public(before), public(after)
    return {k: {"from": old[k], "to": new[k]} for k in new if old.get(k) != new[k]}


@dataclass
class BulkResult:
    index: int
    success: bool
    id: str = ""
    created: bool = False
    row: RowMapping | None = None
    errors: list[FieldViolation] = field(default_factory=list)


class ContactsDomain:
    def __init__(self, db: Database, jobs: JobRunner, missing_accounts: MissingAccounts = _no_account_check) -> None:
        self.db = db
        self.jobs = jobs
        self.missing_accounts = missing_accounts
        jobs.handler(IMPORT_KIND, self._run_import)

    async def _check_account(self, account_id: uuid.UUID | None, field_name: str = "accountId") -> None:
        if account_id is not None and await self.missing_accounts({account_id}):
            raise validation([FieldViolation(field_name, "no such account", "NOT_FOUND")])

    # --- single records ------------------------------------------------------------------
    async def _get(self, conn: AsyncConnection, contact_id: uuid.UUID, *, lock: bool = False) -> RowMapping:
        stmt = _SELECT.where(c.id == contact_id, c.tenant_id == uuid.UUID(context.tenant_id()))
        row = (await conn.execute(stmt.with_for_update() if lock else stmt)).mappings().first()
        if row is None:
            raise NotFound("contact not found")
        return row

    async def get(self, contact_id: str) -> Row:
        row = await self.db.fetchrow(_GET, id=parse_id(contact_id), tenant=uuid.UUID(context.tenant_id()))
        if row is None:
            raise NotFound("contact not found")
        return row

    def _new_row(self, values: Mapping[str, Any]) -> dict[str, Any]:
        ctx = context.current()
        row = {name: values[name] for name in WRITABLE_FIELDS if name in values}
        row.update(id=uuid.uuid4(), tenant_id=uuid.UUID(ctx.tenant_id), created_by=uuid.UUID(ctx.user_id) if ctx.user_id else None)
        if row.get("owner_id") is None and ctx.user_id:
            row["owner_id"] = uuid.UUID(ctx.user_id)
        return row

    async def create(self, values: Mapping[str, Any]) -> Row:
        clean, problems = check(values)
        if problems:
            raise validation(problems)
        await self._check_account(clean.get("account_id"))
        new = self._new_row(clean)
        async with self.db.write() as conn:
            row = await conn.fetchrow(_INSERT, *[new.get(col, _COLUMN_DEFAULTS.get(col, "")) for col in _INSERT_COLUMNS])
            assert row is not None
            await emit(conn, SCHEMA, "crm.contacts.contact.created", str(row["id"]), {"contact": public(row)})
        return row

    async def update(self, contact_id: str, values: Mapping[str, Any], mask: set[str] | None) -> RowMapping:
        key = parse_id(contact_id)
        if mask is not None:
            unknown = mask - set(WRITABLE_FIELDS)
            if unknown:
                raise InvalidArgument(
                    "unknown field in updateMask",
                    violations=[FieldViolation("updateMask", f"not a writable field: {camel(n)}") for n in sorted(unknown)],
                )
            values = {k: v for k, v in values.items() if k in mask}
        clean, problems = check(values, partial=mask is not None)
        if problems:
            raise validation(problems)
        async with self.db.transaction() as conn:
            before = await self._get(conn, key, lock=True)
            preconditions.require_current(before["updated_at"])
            if clean.get("account_id") != before["account_id"]:  # a link kept as it is is not re-checked
                await self._check_account(clean.get("account_id"))
            merged = {**dict(before), **clean}
            if not (merged["first_name"] or merged["last_name"] or merged["email"]):
                raise validation([FieldViolation("firstName", "a contact needs a first name, a last name or an email", "REQUIRED")])
            row = (
                await conn.execute(
                    update(contacts).where(c.id == key).values(**clean, updated_at=text("now()"))
                    .returning(*_SELECT.selected_columns)
                )
            ).mappings().one()
            diff = changes(before, row)
            if diff:
                await emit(conn, SCHEMA, "crm.contacts.contact.updated", str(key), {"contact": public(row), "changes": diff})
        return row

    async def delete(self, contact_id: str) -> None:
        key = parse_id(contact_id)
        async with self.db.transaction() as conn:
            before = await self._get(conn, key, lock=True)
            preconditions.require_current(before["updated_at"])
            await conn.execute(delete(contacts).where(c.id == key))
            await emit(conn, SCHEMA, "crm.contacts.contact.deleted", str(key), {"contact": public(before)})

    async def exists(self, contact_id: str) -> None:
        await self.get(contact_id)

    # --- lists ---------------------------------------------------------------------------
    # From here on a bare `list` in a signature would mean this method, so signatures say `builtins.list`.
    async def list(self, p: listing.ListParams) -> listing.Page:
        """A page of contacts; its rows are asyncpg records (the read path)."""
        async with self.db.read() as conn:
            return await listing.fetch_page(conn, _SELECT, LIST_SPEC, p, [c.tenant_id == uuid.UUID(context.tenant_id())])

    # --- bulk ----------------------------------------------------------------------------
    async def bulk_upsert(self, items: Sequence[tuple[str, Mapping[str, Any], set[str] | None]]) -> builtins.list[BulkResult]:
        """`items` are (id or "", values, present fields); creates and updates apply together."""
        if not items or len(items) > MAX_BULK:
            raise InvalidArgument("bad batch size", violations=[FieldViolation("items", f"send 1 to {MAX_BULK} items", "OUT_OF_RANGE")])
        results: list[BulkResult] = []
        creates: list[tuple[int, dict[str, Any]]] = []
        updates: list[tuple[int, uuid.UUID, dict[str, Any]]] = []
        for index, (item_id, values, present) in enumerate(items):
            prefix = f"items[{index}]."
            if item_id:
                try:
                    key = uuid.UUID(item_id)
                except ValueError:
                    results.append(BulkResult(index, False, item_id, errors=[FieldViolation(f"{prefix}id", "must be a UUID")]))
                    continue
                clean, problems = check({k: v for k, v in values.items() if present is None or k in present}, prefix, partial=True)
                results.append(BulkResult(index, not problems, item_id, errors=problems))
                if not problems:
                    updates.append((index, key, clean))
            else:
                clean, problems = check(values, prefix)
                results.append(BulkResult(index, not problems, errors=problems))
                if not problems:
                    creates.append((index, self._new_row(clean)))
        missing = await self.missing_accounts(
            {v["account_id"] for _, v in creates if v.get("account_id")}
            | {v["account_id"] for _, _, v in updates if v.get("account_id")})
        if missing:
            def linked(index: int, values: Mapping[str, Any]) -> bool:
                if values.get("account_id") not in missing:
                    return True
                results[index].success = False
                results[index].errors = [FieldViolation(f"items[{index}].accountId", "no such account", "NOT_FOUND")]
                return False
            creates = [(i, v) for i, v in creates if linked(i, v)]
            updates = [(i, k, v) for i, k, v in updates if linked(i, v)]
        async with self.db.transaction() as conn:
            if creates:
                rows = (
                    await conn.execute(insert(contacts).returning(*_SELECT.selected_columns, sort_by_parameter_order=True),
                                       [r for _, r in creates])
                ).mappings().all()
                for (index, _), row in zip(creates, rows, strict=True):
                    results[index].id, results[index].created, results[index].row = str(row["id"]), True, row
                    await emit(conn, SCHEMA, "crm.contacts.contact.created", str(row["id"]), {"contact": public(row)})
            for index, key, clean in updates:
                before = (await conn.execute(_SELECT.where(c.id == key).with_for_update())).mappings().first()
                if before is None:
                    results[index].success = False
                    results[index].errors = [FieldViolation(f"items[{index}].id", "contact not found", "NOT_FOUND")]
                    continue
                row = (
                    await conn.execute(update(contacts).where(c.id == key).values(**clean, updated_at=text("now()"))
                                       .returning(*_SELECT.selected_columns))
                ).mappings().one()
                results[index].row = row
                diff = changes(before, row)
                if diff:
                    await emit(conn, SCHEMA, "crm.contacts.contact.updated", str(key), {"contact": public(row), "changes": diff})
        return results

    async def bulk_delete(self, ids: Sequence[str]) -> builtins.list[BulkResult]:
        if not ids or len(ids) > MAX_BULK:
            raise InvalidArgument("bad batch size", violations=[FieldViolation("ids", f"send 1 to {MAX_BULK} ids", "OUT_OF_RANGE")])
        results = [BulkResult(i, False, raw) for i, raw in enumerate(ids)]
        keys: dict[uuid.UUID, list[int]] = {}
        for i, raw in enumerate(ids):
            try:
                keys.setdefault(uuid.UUID(raw), []).append(i)
            except ValueError:
                results[i].errors = [FieldViolation(f"ids[{i}]", "must be a UUID")]
        async with self.db.transaction() as conn:
            deleted = (
                await conn.execute(delete(contacts).where(c.id.in_(list(keys))).returning(*_SELECT.selected_columns))
            ).mappings().all() if keys else []
            for row in deleted:
                for i in keys[row["id"]]:
                    results[i].success = True
                    results[i].row = row
                await emit(conn, SCHEMA, "crm.contacts.contact.deleted", str(row["id"]), {"contact": public(row)})
        gone = {row["id"] for row in deleted}
        for key, indexes in keys.items():
            if key not in gone:
                for i in indexes:
                    results[i].errors = [FieldViolation(f"ids[{i}]", "contact not found", "NOT_FOUND")]
        return results

    async def reassign_account(self, from_ids: Sequence[str], to_id: str) -> int:
        """Move every contact of `from_ids` to `to_id` (unlink them when empty), each with its
        `updated` event. Idempotent: moved contacts no longer match. Returns how many moved."""
        problems: list[FieldViolation] = []
        if not from_ids or len(from_ids) > MAX_REASSIGN:
            problems.append(FieldViolation("fromAccountIds", f"give 1 to {MAX_REASSIGN} account ids", "OUT_OF_RANGE"))
        sources: list[uuid.UUID] = []
        for i, raw in enumerate(from_ids[:MAX_REASSIGN]):
            try:
                sources.append(uuid.UUID(raw))
            except ValueError:
                problems.append(FieldViolation(f"fromAccountIds[{i}]", "must be a UUID"))
        target: uuid.UUID | None = None
        if to_id:
            try:
                target = uuid.UUID(to_id)
            except ValueError:
                problems.append(FieldViolation("toAccountId", "must be a UUID"))
        if target is not None and target in sources:
            problems.append(FieldViolation("toAccountId", "is also one of fromAccountIds"))
        if problems:
            raise validation(problems)
        async with self.db.transaction() as conn:
            before = {r["id"]: r for r in (await conn.execute(
                _SELECT.where(c.account_id.in_(sources)).with_for_update())).mappings().all()}
            if not before:
                return 0
            rows = (await conn.execute(
                update(contacts).where(c.id.in_(list(before))).values(account_id=target, updated_at=text("now()"))
                .returning(*_SELECT.selected_columns)
            )).mappings().all()
            for row in rows:
                await emit(conn, SCHEMA, "crm.contacts.contact.updated", str(row["id"]),
                           {"contact": public(row), "changes": changes(before[row["id"]], row)})
        return len(rows)

    # --- relationships -------------------------------------------------------------------
    async def list_relationships(self, contact_id: str, p: listing.ListParams, rel_type: str) -> listing.Page:
        key = parse_id(contact_id)
        r = relationships.c
        spec = listing.ListSpec(fields={"createdAt": listing.Field(r.created_at, "time", sortable=True),
                                        "type": listing.Field(r.type)}, id_column=r.id)
        where = [r.contact_id == key]
        if rel_type:
            where.append(r.type == rel_type)
        async with self.db.transaction() as conn:
            await self._get(conn, key)
            return await listing.fetch_page(conn, select(relationships), spec, p, where)

    @staticmethod
    def _check_relationship(values: Mapping[str, Any], *, creating: bool) -> builtins.list[FieldViolation]:
        problems = []
        if values.get("type", "") not in RELATIONSHIP_TYPES:
            problems.append(FieldViolation("type", f"must be one of {', '.join(sorted(RELATIONSHIP_TYPES))}"))
        if len(values.get("notes", "")) > 2000:
            problems.append(FieldViolation("notes", "must be at most 2000 characters", "TOO_LONG"))
        return problems

    async def create_relationship(self, contact_id: str, related_id: str, rel_type: str, notes: str) -> RowMapping:
        key = parse_id(contact_id)
        problems = self._check_relationship({"type": rel_type, "notes": notes}, creating=True)
        try:
            related = uuid.UUID(related_id)
        except ValueError:
            problems.append(FieldViolation("relatedContactId", "must be the id of another contact"))
            related = None
        if related == key:
            problems.append(FieldViolation("relatedContactId", "a contact cannot be related to itself", "SELF_RELATIONSHIP"))
        if problems:
            raise validation(problems)
        async with self.db.transaction() as conn:
            await self._get(conn, key)
            if (await conn.execute(select(c.id).where(c.id == related))).first() is None:
                raise validation([FieldViolation("relatedContactId", "no such contact", "NOT_FOUND")])
            try:
                async with conn.begin_nested():
                    row = (
                        await conn.execute(
                            insert(relationships).values(
                                id=uuid.uuid4(), tenant_id=uuid.UUID(context.tenant_id()), contact_id=key,
                                related_contact_id=related, type=rel_type, notes=notes,
                            ).returning(relationships)
                        )
                    ).mappings().one()
            except IntegrityError:
                raise AlreadyExists("this relationship already exists", reason="RELATIONSHIP_EXISTS") from None
            await emit(conn, SCHEMA, "crm.contacts.relationship.created", str(row["id"]), _rel_public(row))
        return row

    async def update_relationship(self, contact_id: str, rel_id: str, rel_type: str, notes: str) -> RowMapping:
        key, rel_key = parse_id(contact_id), parse_id(rel_id, "relId")
        problems = self._check_relationship({"type": rel_type, "notes": notes}, creating=False)
        if problems:
            raise validation(problems)
        r = relationships.c
        async with self.db.transaction() as conn:
            try:
                async with conn.begin_nested():
                    row = (
                        await conn.execute(
                            update(relationships).where(r.id == rel_key, r.contact_id == key)
                            .values(type=rel_type, notes=notes, updated_at=text("now()")).returning(relationships)
                        )
                    ).mappings().first()
            except IntegrityError:
                raise AlreadyExists("this relationship already exists", reason="RELATIONSHIP_EXISTS") from None
            if row is None:
                raise NotFound("relationship not found")
            await emit(conn, SCHEMA, "crm.contacts.relationship.updated", str(rel_key), _rel_public(row))
        return row

    async def delete_relationship(self, contact_id: str, rel_id: str) -> None:
        key, rel_key = parse_id(contact_id), parse_id(rel_id, "relId")
        r = relationships.c
        async with self.db.transaction() as conn:
            row = (
                await conn.execute(delete(relationships).where(r.id == rel_key, r.contact_id == key).returning(relationships))
            ).mappings().first()
            if row is None:
                raise NotFound("relationship not found")
            await emit(conn, SCHEMA, "crm.contacts.relationship.deleted", str(rel_key), _rel_public(row))

    # --- validate ------------------------------------------------------------------------
    async def validate(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], builtins.list[FieldViolation], builtins.list[str]]:
        clean, problems = check(values)
        duplicates: list[str] = []
        probes = []
        if clean.get("email"):
            probes.append(c.email == clean["email"])
        if clean.get("phone"):
            probes.append(c.phone == clean["phone"])
        if probes:
            from sqlalchemy import or_

            async with self.db.transaction() as conn:
                found = await conn.execute(select(c.id).where(c.tenant_id == uuid.UUID(context.tenant_id()), or_(*probes)).limit(20))
                duplicates = [str(x) for x in found.scalars()]
        return clean, problems, duplicates

    # --- deduplicate ---------------------------------------------------------------------
    async def deduplicate(self, *, dry_run: bool, match_on: set[str]) -> tuple[builtins.list[dedupe.DuplicateGroup], int]:
        bad = match_on - {"email", "phone", "name"}
        if bad:
            raise InvalidArgument("unknown match signal", violations=[FieldViolation("matchOn", "use email, phone or name")])
        async with self.db.transaction() as conn:
            result = await conn.stream(select(c.id, c.created_at, c.first_name, c.last_name, c.email, c.phone))
            records = [
                dedupe.DedupeRecord(id=str(r.id), created_at=r.created_at, first_name=r.first_name,
                                    last_name=r.last_name, email=r.email, phone=r.phone)
                async for r in result
            ]
            groups = dedupe.find_duplicate_groups(records, match_on)
            if dry_run or not groups:
                return groups, 0
            merged = 0
            for group in groups:
                merged += await self._merge(conn, uuid.UUID(group.primary_id), [uuid.UUID(i) for i in group.ids[1:]])
        return groups, merged

    async def _merge(self, conn: AsyncConnection, primary_id: uuid.UUID, other_ids: builtins.list[uuid.UUID]) -> int:
        """Fold `other_ids` into the primary: fill its empty fields, move relationships, delete the rest."""
        rows = (await conn.execute(_SELECT.where(c.id.in_([primary_id, *other_ids])).with_for_update())).mappings().all()
        by_id = {r["id"]: r for r in rows}
        primary = by_id.get(primary_id)
        others = [by_id[i] for i in other_ids if i in by_id]
        if primary is None or not others:
            return 0
        merged = dedupe.merge_fields({k: primary[k] for k in WRITABLE_FIELDS}, [{k: o[k] for k in WRITABLE_FIELDS} for o in others])
        await conn.execute(update(contacts).where(c.id == primary_id).values(**merged, updated_at=text("now()")))
        gone = [o["id"] for o in others]
        r = relationships.c
        # Re-point both ends of every relationship; pairs that would repeat or loop are dropped.
        await conn.execute(text(
            "INSERT INTO contacts.relationships (id, tenant_id, contact_id, related_contact_id, type, notes, created_at, updated_at) "
            "SELECT gen_random_uuid(), tenant_id, "
            "CASE WHEN contact_id = ANY(:gone) THEN :p ELSE contact_id END, "
            "CASE WHEN related_contact_id = ANY(:gone) THEN :p ELSE related_contact_id END, "
            "type, notes, created_at, now() FROM contacts.relationships "
            "WHERE (contact_id = ANY(:gone) OR related_contact_id = ANY(:gone)) "
            "AND (CASE WHEN contact_id = ANY(:gone) THEN :p ELSE contact_id END) <> "
            "(CASE WHEN related_contact_id = ANY(:gone) THEN :p ELSE related_contact_id END) "
            "ON CONFLICT DO NOTHING"
        ), {"gone": gone, "p": primary_id})
        await conn.execute(delete(relationships).where((r.contact_id.in_(gone)) | (r.related_contact_id.in_(gone))))
        await conn.execute(delete(contacts).where(c.id.in_(gone)))
        await emit(conn, SCHEMA, "crm.contacts.contact.merged", str(primary_id),
                   {"primaryId": str(primary_id), "mergedIds": [str(g) for g in gone]})
        return len(gone)

    # --- import --------------------------------------------------------------------------
    async def start_import(self, body: bytes, content_type: str, format_hint: str, skip_duplicates: bool) -> RowMapping:
        if not body:
            raise InvalidArgument("the file is empty", violations=[FieldViolation("file", "send a CSV or XLSX file", "REQUIRED")])
        try:
            detected, _ = tabular.read_upload(body, content_type, format_hint)
        except tabular.TabularError as exc:
            raise InvalidArgument(exc.message, reason=exc.code, violations=[FieldViolation("file", exc.message, exc.code)]) from None
        params = {"contentType": content_type, "format": detected, "skipDuplicates": skip_duplicates}
        async with self.db.transaction() as conn:
            job = await self.jobs.create(conn, IMPORT_KIND, params=params, input_data=body)
        self.jobs.start(job["id"], context.tenant_id())
        return job

    async def get_import(self, job_id: str) -> RowMapping:
        async with self.db.transaction() as conn:
            return await self.jobs.get(conn, job_id, IMPORT_KIND)

    async def _run_import(self, job: RowMapping, conn: AsyncConnection) -> JobResult:
        """Validate the rows a chunk at a time and load each good chunk with COPY and one
        INSERT ... SELECT, all in the job's one transaction (every row or none). A chunk is
        checked in a worker thread while the one before it loads, so Python's per-row work and
        PostgreSQL's index work overlap instead of adding up."""
        params = job["params"]
        skip_duplicates = bool(params.get("skipDuplicates"))
        result = JobResult()
        seen_emails: set[str] = set()
        # Per row only what differs: the tenant and the importing user are read once, and the
        # new ids come from one read of the system's random source per chunk.
        ctx = context.current()
        tenant = uuid.UUID(ctx.tenant_id)
        user = uuid.UUID(ctx.user_id) if ctx.user_id else None
        try:
            _, rows = tabular.read_upload(bytes(job["input"]), params.get("contentType", ""), params.get("format", ""))
        except tabular.TabularError as exc:
            raise InvalidArgument(exc.message, reason=exc.code) from None
        numbered = enumerate(rows, start=1)

        def next_chunk() -> tuple[builtins.list[dict[str, Any]], int]:
            """The next chunk's valid rows, ready to load, and how many rows it read."""
            good: builtins.list[dict[str, Any]] = []
            read = 0
            for number, raw in itertools.islice(numbered, IMPORT_CHUNK):
                read += 1
                result.total += 1
                clean, problems = check(_row_values(raw))
                if problems:
                    result.failed += 1
                    result.errors.extend({"row": number, "field": p.field, "code": p.code, "message": p.message} for p in problems)
                    continue
                if skip_duplicates and clean.get("email"):
                    if clean["email"] in seen_emails:
                        result.failed += 1
                        result.errors.append({"row": number, "field": "email", "code": "DUPLICATE", "message": "repeats an earlier row"})
                        continue
                    seen_emails.add(clean["email"])
                clean["tenant_id"], clean["created_by"], clean["_row"] = tenant, user, number
                if clean.get("owner_id") is None and user is not None:
                    clean["owner_id"] = user
                good.append(clean)
            randomness = os.urandom(16 * len(good))
            for i, row in enumerate(good):
                row["id"] = uuid.UUID(bytes=randomness[16 * i:16 * i + 16], version=4)
            return good, read

        loader = _ContactLoader(conn)
        imported: builtins.list[str] = []
        try:
            while True:
                try:
                    good, read = await asyncio.to_thread(next_chunk)  # the chunk before loads meanwhile
                except tabular.TabularError as exc:
                    raise InvalidArgument(exc.message, reason=exc.code) from None
                if skip_duplicates and good:
                    good = await self._drop_existing(loader, good, result)
                await loader.load(good)
                imported.extend(str(r["id"]) for r in good[:max(0, 10_000 - len(imported))])
                result.succeeded += len(good)
                if read < IMPORT_CHUNK:
                    break
            await loader.finish()
        finally:
            await loader.cancel()
        result.errors.sort(key=lambda e: e["row"])  # chunk by chunk, duplicates of stored contacts come late
        await emit(conn, SCHEMA, "crm.contacts.import.completed", str(job["id"]),
                   {"jobId": str(job["id"]), "imported": result.succeeded, "failed": result.failed,
                    "contactIds": imported})
        return result

    @staticmethod
    async def _drop_existing(loader: _ContactLoader, good: builtins.list[dict[str, Any]],
                             result: JobResult) -> builtins.list[dict[str, Any]]:
        """`good` without the rows whose email a stored contact of the tenant has."""
        emails = [r["email"] for r in good if r.get("email")]
        existing = await loader.existing_emails(emails) if emails else set()
        kept = []
        for row in good:
            if row.get("email") in existing:
                result.failed += 1
                result.errors.append({"row": row["_row"], "field": "email", "code": "DUPLICATE",
                                      "message": "a contact with this email exists"})
            else:
                kept.append(row)
        return kept

    # --- export --------------------------------------------------------------------------
    async def export_rows(self, p: listing.ListParams) -> AsyncIterator[dict[str, Any]]:
        """Every matching contact in list order, streamed from a server-side cursor."""
        clauses = [listing.condition_clause(LIST_SPEC, cond) for cond in p.conditions]
        if p.search:
            clauses.append(listing.search_clause(LIST_SPEC, p.search))
        order = listing.order_by(LIST_SPEC, p.sort)
        async with self.db.transaction() as conn:
            result = await conn.stream(_SELECT.where(c.tenant_id == uuid.UUID(context.tenant_id()), *clauses).order_by(*order))
            async for row in result.mappings():
                yield _export_row(row)


def _rel_public(row: RowMapping) -> dict[str, Any]:
    return {"id": str(row["id"]), "contactId": str(row["contact_id"]), "relatedContactId": str(row["related_contact_id"]),
            "type": row["type"], "notes": row["notes"]}


def _row_values(raw: Mapping[str, Any]) -> dict[str, Any]:
    """An import row (tabular's canonical keys) as contact values."""
    values: dict[str, Any] = {}
    address: dict[str, str] = {}
    custom: dict[str, str] = {}
    for key, value in raw.items():
        if key.startswith("address_"):
            address[key[len("address_"):]] = value
        elif key.startswith("custom:"):
            if value:
                custom[key[len("custom:"):]] = value
        elif key == "tags":
            values["tags"] = value if isinstance(value, list) else [t for t in str(value).replace(";", ",").split(",")]
        else:
            values[key] = value
    if address:
        values["address"] = address
    if custom:
        values["custom_fields"] = custom
    return values


def _export_row(row: RowMapping) -> dict[str, Any]:
    out: dict[str, Any] = {k: row[k] for k in WRITABLE_FIELDS if k not in ("address", "custom_fields")}
    out["id"] = row["id"]
    for key, value in (row["address"] or {}).items():
        out[f"address_{key}"] = value
    out["created_at"] = row["created_at"]
    out["updated_at"] = row["updated_at"]
    return {k: (str(v) if isinstance(v, uuid.UUID) else v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in out.items()}


COPY_COLUMNS = ("id", "tenant_id", *[n for n in WRITABLE_FIELDS], "created_by")


class _ContactLoader:
    """Loads chunks of new contacts on the import job's connection, one chunk in flight while
    the next is checked. COPY goes into a temporary table, then one INSERT ... SELECT: COPY
    itself cannot write a table under row-level security, and the INSERT still passes every
    policy check."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._pg: Any = None
        self._pending: asyncio.Task[None] | None = None

    async def _connection(self) -> Any:
        if self._pg is None:
            raw = await self.conn.get_raw_connection()
            self._pg = raw.driver_connection
            await self._pg.execute("CREATE TEMP TABLE import_contacts (LIKE contacts.contacts INCLUDING DEFAULTS "
                                   "EXCLUDING GENERATED) ON COMMIT DROP")
        return self._pg

    async def _settle(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending

    async def existing_emails(self, emails: builtins.list[str]) -> set[str]:
        await self._settle()  # one statement at a time on a connection
        pg = await self._connection()
        return {r["email"] for r in await pg.fetch("SELECT email FROM contacts.contacts WHERE email = ANY($1::text[])",
                                                   emails)}

    async def load(self, rows: builtins.list[dict[str, Any]]) -> None:
        """Start loading `rows` (after the chunk before has loaded); `finish` waits for the last."""
        await self._settle()
        if not rows:
            return
        pg = await self._connection()
        records = [tuple(_as_json(r.get(col)) if col in ("address", "custom_fields") else r.get(col, default)
                         for col, default in _COPY_DEFAULTS) for r in rows]
        self._pending = asyncio.create_task(self._copy(pg, records))

    @staticmethod
    async def _copy(pg: Any, records: builtins.list[tuple[Any, ...]]) -> None:
        await pg.copy_records_to_table("import_contacts", records=records, columns=list(COPY_COLUMNS))
        cols = ", ".join(COPY_COLUMNS)
        await pg.execute(f"INSERT INTO contacts.contacts ({cols}) SELECT {cols} FROM import_contacts")
        await pg.execute("TRUNCATE import_contacts")

    async def finish(self) -> None:
        await self._settle()
        if self._pg is not None:
            await self._pg.execute("DROP TABLE import_contacts")

    async def cancel(self) -> None:
        """After a failure: stop a load still in flight (the transaction is rolled back)."""
        if self._pending is not None:
            self._pending.cancel()
            with contextlib.suppress(BaseException):
                await self._pending
            self._pending = None


def _as_json(value: dict[str, Any] | None) -> str:
    return json.dumps(value) if value else "{}"  # most rows have no address or custom fields


_COPY_DEFAULTS = [(col, _COLUMN_DEFAULTS.get(col, "")) for col in COPY_COLUMNS]
