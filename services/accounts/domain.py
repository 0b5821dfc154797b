"""The accounts domain: storage, hierarchy and merge behind the rpcs. No gRPC here.

Hierarchy changes of one tenant are serialized by a transaction-scoped advisory lock, so two
concurrent "set parent" calls cannot together build a loop that neither would alone. Records of
other services (contacts, deals, activities) move through the `Peers` port: the servicer layer
implements it over gRPC.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import ColumnElement, bindparam, delete, func, insert, literal, select, text, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.accounts import rules
from services.accounts.rules import WRITABLE_FIELDS, camel, check, check_territory
from services.accounts.tables import SCHEMA, accounts, merges, territories
from services.kernel import context, listing, preconditions
from services.kernel.db import Database, Row, every_owner_visible, raw_query
from services.kernel.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    validation,
)
from services.kernel.events import emit
from services.kernel.jobs import JobResult, JobRunner

MERGE_KIND = "accounts.merge"
# Services whose records follow a merged account, in the order the merge moves them.
MERGE_PEERS = ("contacts", "deals", "activities")

c = accounts.c
t = territories.c
VISIBLE = c.merged_into.is_(None)  # accounts being merged away are gone for every reader
LIST_SPEC = listing.ListSpec(
    fields={
        "id": listing.Field(c.id, "uuid"),
        "name": listing.Field(c.name, "ci_text", sortable=True),
        "domain": listing.Field(c.domain, "ci_text", sortable=True),
        "industry": listing.Field(c.industry, "ci_text"),
        "territory": listing.Field(c.territory, "text"),
        "parentId": listing.Field(c.parent_id, "uuid"),
        "ownerId": listing.Field(c.owner_id, "uuid"),
        "tag": listing.Field(c.tags, "tags"),
        "tags": listing.Field(c.tags, "tags"),
        "createdAt": listing.Field(c.created_at, "time", sortable=True),
        "updatedAt": listing.Field(c.updated_at, "time", sortable=True),
    },
    id_column=c.id,
    search_column=c.search_text,
    default_sort="-createdAt",
)
TERRITORY_SPEC = listing.ListSpec(
    fields={
        "key": listing.Field(t.key, "text", sortable=True),
        "name": listing.Field(t.name, "text", sortable=True),
        "createdAt": listing.Field(t.created_at, "time", sortable=True),
    },
    id_column=t.key,
    search_column=t.search_text,
    default_sort="name",
)
_COLUMNS = [col for col in accounts.c if col.key not in ("search_text", "merged_into")]
_SELECT = select(*_COLUMNS)
_GET = raw_query(_SELECT.where(c.id == bindparam("id"), c.tenant_id == bindparam("tenant"), VISIBLE))
_ACCOUNT_COUNT = (
    select(func.count()).where(c.tenant_id == t.tenant_id, c.territory == t.key, VISIBLE)
    .scalar_subquery().label("account_count")
)
_TERRITORY_SELECT = select(t.tenant_id, t.key, t.name, t.description, t.created_at, t.updated_at, _ACCOUNT_COUNT)


class Peers(Protocol):
    """The other services whose records hang off an account."""

    def can_reassign(self, peer: str) -> bool:
        """Whether `peer` runs in this deployment and can move records between accounts."""
        ...

    async def reassign(self, peer: str, tenant_id: str, from_ids: Sequence[uuid.UUID], to_id: uuid.UUID) -> int:
        """Move the peer's records of `from_ids` to `to_id`; idempotent. Returns how many moved."""
        ...


def parse_id(value: str, name: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument(f"{name} must be a UUID", violations=[FieldViolation(name, "must be a UUID")]) from None


def _json(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return value


def public(row: Mapping[Any, Any]) -> dict[str, Any]:
    """An account as events carry it: the API's field names, JSON values."""
    out: dict[str, Any] = {"id": str(row["id"])}
    for name in WRITABLE_FIELDS:
        out[camel(name)] = _json(row[name])
    return out


def changes(before: Mapping[Any, Any], after: Mapping[Any, Any]) -> dict[str, dict[str, Any]]:
    old, new = public(before), public(after)
    return {k: {"from": old[k], "to": new[k]} for k in new if old.get(k) != new[k]}


def territory_public(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {"key": row["key"], "name": row["name"], "description": row["description"]}


@dataclass
class Hierarchy:
    account_id: uuid.UUID
    root_id: uuid.UUID
    rows: Sequence[RowMapping]  # the tree, breadth first, each with a `depth`
    truncated: bool


class AccountsDomain:
    def __init__(self, db: Database, jobs: JobRunner, peers: Peers) -> None:
        self.db = db
        self.jobs = jobs
        self.peers = peers
        jobs.handler(MERGE_KIND, self._run_merge)

    # --- reading -------------------------------------------------------------------------
    @staticmethod
    def _tenant() -> uuid.UUID:
        return uuid.UUID(context.tenant_id())

    async def _get(self, conn: AsyncConnection, account_id: uuid.UUID, *, lock: bool = False) -> RowMapping:
        stmt = _SELECT.where(c.id == account_id, c.tenant_id == self._tenant(), VISIBLE)
        row = (await conn.execute(stmt.with_for_update() if lock else stmt)).mappings().first()
        if row is None:
            raise NotFound("account not found")
        return row

    async def get(self, account_id: str) -> Row:
        row = await self.db.fetchrow(_GET, id=parse_id(account_id), tenant=self._tenant())
        if row is None:
            raise NotFound("account not found")
        return row

    async def list_accounts(self, p: listing.ListParams, where: Sequence[ColumnElement[bool]] = ()) -> listing.Page:
        """A page of accounts; its rows are asyncpg records (the read path)."""
        async with self.db.read() as conn:
            return await listing.fetch_page(conn, _SELECT, LIST_SPEC, p, [c.tenant_id == self._tenant(), VISIBLE, *where])

    async def children(self, account_id: str, p: listing.ListParams) -> listing.Page:
        key = parse_id(account_id)
        async with self.db.transaction() as conn:
            await self._get(conn, key)
            return await listing.fetch_page(conn, _SELECT, LIST_SPEC, p, [c.tenant_id == self._tenant(), VISIBLE,
                                                                        c.parent_id == key])

    async def parent(self, account_id: str) -> tuple[RowMapping, RowMapping | None]:
        async with self.db.transaction() as conn:
            row = await self._get(conn, parse_id(account_id))
            parent = None
            if row["parent_id"] is not None:
                parent = (await conn.execute(_SELECT.where(c.id == row["parent_id"], VISIBLE))).mappings().first()
            return row, parent

    # --- hierarchy queries ---------------------------------------------------------------
    @staticmethod
    async def _lock_hierarchy(conn: AsyncConnection) -> None:
        """One hierarchy change at a time per tenant (see the module docstring)."""
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('accounts.hierarchy:' || :t))"),
                           {"t": context.tenant_id()})

    @staticmethod
    async def _chain(conn: AsyncConnection, start: uuid.UUID) -> list[uuid.UUID]:
        """`start` and its ancestors, nearest first; bounded, so even looping data ends."""
        rows = await conn.execute(text(
            "WITH RECURSIVE up(id, parent_id, n) AS ("
            " SELECT id, parent_id, 1 FROM accounts.accounts WHERE id = :start"
            " UNION ALL SELECT a.id, a.parent_id, up.n + 1 FROM accounts.accounts a JOIN up ON a.id = up.parent_id"
            " WHERE up.n <= :bound) SELECT id FROM up ORDER BY n"
        ), {"start": start, "bound": rules.MAX_DEPTH + 1})
        return list(rows.scalars())

    @staticmethod
    async def _heights(conn: AsyncConnection, roots: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        """Levels below each of `roots` (0 for a leaf); bounded like `_chain`."""
        if not roots:
            return {}
        rows = await conn.execute(text(
            "WITH RECURSIVE down(root, id, n) AS ("
            " SELECT id, id, 0 FROM accounts.accounts WHERE id = ANY(:roots)"
            " UNION ALL SELECT down.root, a.id, down.n + 1 FROM accounts.accounts a JOIN down ON a.parent_id = down.id"
            " WHERE down.n <= :bound) SELECT root, max(n) FROM down GROUP BY root"
        ), {"roots": list(roots), "bound": rules.MAX_DEPTH + 1})
        return {root: int(height) for root, height in rows.all()}

    async def _check_parent(self, conn: AsyncConnection, account_id: uuid.UUID | None, parent_id: uuid.UUID,
                            field: str = "parentId") -> None:
        """422 unless `parent_id` is a visible account under which `account_id` may hang."""
        parent = (await conn.execute(select(c.id).where(c.id == parent_id, c.tenant_id == self._tenant(), VISIBLE))).first()
        if parent is None:
            raise validation([FieldViolation(field, "no such account", "NOT_FOUND")])
        # Cycles and depth count every account of the tenant, also those the caller may not see.
        async with every_owner_visible(conn):
            chain = await self._chain(conn, parent_id)
            height = (await self._heights(conn, [account_id])).get(account_id, 0) if account_id else 0
        problem = rules.parent_violation(account_id, chain, height, field)
        if problem:
            raise validation([problem])

    async def hierarchy(self, account_id: str) -> Hierarchy:
        key = parse_id(account_id)
        async with self.db.transaction() as conn:
            await self._get(conn, key)
            up = await conn.execute(text(
                "WITH RECURSIVE up(id, parent_id, n) AS ("
                " SELECT id, parent_id, 0 FROM accounts.accounts WHERE id = :start AND merged_into IS NULL"
                " UNION ALL SELECT a.id, a.parent_id, up.n + 1 FROM accounts.accounts a JOIN up ON a.id = up.parent_id"
                " WHERE up.n < :bound AND a.merged_into IS NULL) SELECT id FROM up ORDER BY n DESC LIMIT 1"
            ), {"start": key, "bound": rules.MAX_DEPTH})
            root = up.scalar_one()
            base = _SELECT.add_columns(literal(0).label("depth")).where(c.id == root).cte("tree", recursive=True)
            child = accounts.alias("child")
            tree = base.union_all(
                select(*[child.c[col.key] for col in _COLUMNS], (base.c.depth + 1).label("depth"))
                .join(base, child.c.parent_id == base.c.id)
                .where(base.c.depth < rules.MAX_DEPTH - 1, child.c.merged_into.is_(None))
            )
            rows = (await conn.execute(
                select(tree).order_by(tree.c.depth, tree.c.name, tree.c.id).limit(rules.MAX_HIERARCHY_NODES + 1)
            )).mappings().all()
        truncated = len(rows) > rules.MAX_HIERARCHY_NODES
        return Hierarchy(account_id=key, root_id=root, rows=rows[: rules.MAX_HIERARCHY_NODES], truncated=truncated)

    # --- writing -------------------------------------------------------------------------
    async def _check_territory_exists(self, conn: AsyncConnection, key: str, field: str = "territory") -> None:
        found = (await conn.execute(select(t.key).where(t.tenant_id == self._tenant(), t.key == key))).first()
        if found is None:
            raise validation([FieldViolation(field, f"no territory with key {key!r}: define it first", "NOT_FOUND")])

    def _new_row(self, values: Mapping[Any, Any]) -> dict[str, Any]:
        ctx = context.current()
        row = {name: values[name] for name in WRITABLE_FIELDS if name in values}
        row.update(id=uuid.uuid4(), tenant_id=uuid.UUID(ctx.tenant_id),
                   created_by=uuid.UUID(ctx.user_id) if ctx.user_id else None)
        if row.get("owner_id") is None and ctx.user_id:
            row["owner_id"] = uuid.UUID(ctx.user_id)
        return row

    @staticmethod
    def _check_merged(row: Mapping[Any, Any]) -> None:
        """Rules over the whole record after a partial change."""
        if row.get("annual_revenue") is not None and not row.get("currency"):
            raise validation([FieldViolation("currency", "an annual revenue needs its currency", "REQUIRED")])

    async def _insert(self, conn: AsyncConnection, clean: Mapping[Any, Any]) -> RowMapping:
        self._check_merged(clean)
        if clean.get("parent_id") is not None:
            await self._lock_hierarchy(conn)
            await self._check_parent(conn, None, clean["parent_id"])
        if clean.get("territory"):
            await self._check_territory_exists(conn, clean["territory"])
        row = (await conn.execute(insert(accounts).values(self._new_row(clean)).returning(*_COLUMNS))).mappings().one()
        await emit(conn, SCHEMA, "crm.accounts.account.created", str(row["id"]), {"account": public(row)})
        return row

    async def create(self, values: Mapping[Any, Any]) -> RowMapping:
        clean, problems = check(values)
        if problems:
            raise validation(problems)
        async with self.db.transaction() as conn:
            return await self._insert(conn, clean)

    async def _change(self, conn: AsyncConnection, before: RowMapping, clean: Mapping[Any, Any], *,
                      hierarchy_checked: bool = False) -> RowMapping:
        """Apply checked values to a locked account: hierarchy and territory rules, then one
        `updated` event, plus `parent_changed` / `territory_changed` when those moved.

        `hierarchy_checked`: the caller holds the hierarchy lock and checked the new parent
        itself (a merge checks all its moves at once; one by one they could fail midway)."""
        key = before["id"]
        self._check_merged({**dict(before), **clean})
        if (not hierarchy_checked and "parent_id" in clean and clean["parent_id"] != before["parent_id"]
                and clean["parent_id"] is not None):
            await self._lock_hierarchy(conn)
            await self._check_parent(conn, key, clean["parent_id"])
        if clean.get("territory") and clean["territory"] != before["territory"]:
            await self._check_territory_exists(conn, clean["territory"])
        row = (
            await conn.execute(update(accounts).where(c.id == key).values(**clean, updated_at=text("now()"))
                               .returning(*_COLUMNS))
        ).mappings().one()
        diff = changes(before, row)
        if diff:
            await emit(conn, SCHEMA, "crm.accounts.account.updated", str(key), {"account": public(row), "changes": diff})
        if "parentId" in diff:
            await emit(conn, SCHEMA, "crm.accounts.account.parent_changed", str(key),
                       {"accountId": str(key), "from": diff["parentId"]["from"], "to": diff["parentId"]["to"]})
        if "territory" in diff:
            await emit(conn, SCHEMA, "crm.accounts.account.territory_changed", str(key),
                       {"accountId": str(key), "from": diff["territory"]["from"], "to": diff["territory"]["to"]})
        return row

    async def update(self, account_id: str, values: Mapping[Any, Any], mask: set[str] | None) -> RowMapping:
        key = parse_id(account_id)
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
            return await self._change(conn, before, clean)

    async def set_parent(self, account_id: str, parent_id: str) -> RowMapping:
        key = parse_id(account_id)
        clean, problems = check({"parent_id": parent_id}, partial=True)
        if problems:
            raise validation(problems)
        async with self.db.transaction() as conn:
            return await self._change(conn, await self._get(conn, key, lock=True), clean)

    async def add_child(self, parent_id: str, child_id: str, values: Mapping[Any, Any] | None) -> RowMapping:
        """Hang an existing account (`child_id`) or a new one (`values`) under `parent_id`."""
        key = parse_id(parent_id)
        if bool(child_id) == bool(values):
            raise InvalidArgument("give childId or account", violations=[
                FieldViolation("childId", "give the id of an existing account, or a new `account`", "REQUIRED")])
        async with self.db.transaction() as conn:
            await self._get(conn, key)
            if values:
                clean, problems = check({**values, "parent_id": str(key)}, "account.")
                if problems:
                    raise validation(problems)
                return await self._insert(conn, clean)
            try:
                child = uuid.UUID(child_id)
            except ValueError:
                raise validation([FieldViolation("childId", "must be a UUID")]) from None
            before = (await conn.execute(_SELECT.where(c.id == child, c.tenant_id == self._tenant(), VISIBLE)
                                         .with_for_update())).mappings().first()
            if before is None:
                raise validation([FieldViolation("childId", "no such account", "NOT_FOUND")])
            await self._lock_hierarchy(conn)
            await self._check_parent(conn, child, key, field="childId")
            return await self._change(conn, before, {"parent_id": key}, hierarchy_checked=True)

    async def delete(self, account_id: str) -> None:
        """Delete an account; its children become roots (each with its `parent_changed`)."""
        key = parse_id(account_id)
        async with self.db.transaction() as conn:
            before = await self._get(conn, key, lock=True)
            preconditions.require_current(before["updated_at"])
            await self._refuse_if_merge_target(conn, key)
            await self._lock_hierarchy(conn)
            # Every child, also those the caller cannot see: a child the caller may not change
            # makes the delete fail (403 OUT_OF_SCOPE) rather than leave it pointing nowhere.
            async with every_owner_visible(conn):
                kids = (await conn.execute(_SELECT.where(c.parent_id == key).with_for_update())).mappings().all()
                for kid in kids:
                    await self._change(conn, kid, {"parent_id": None})
            await conn.execute(delete(accounts).where(c.id == key))
            await emit(conn, SCHEMA, "crm.accounts.account.deleted", str(key), {"account": public(before)})

    async def _refuse_if_merge_target(self, conn: AsyncConnection, key: uuid.UUID) -> None:
        merging = (await conn.execute(select(c.id).where(c.merged_into == key).limit(1))).first()
        if merging is not None:
            raise FailedPrecondition("accounts are being merged into this account; try again when the merge is done",
                                     reason="MERGE_IN_PROGRESS")

    # --- territories ---------------------------------------------------------------------
    async def territory(self, account_id: str) -> tuple[RowMapping, RowMapping | None]:
        async with self.db.transaction() as conn:
            row = await self._get(conn, parse_id(account_id))
            found = None
            if row["territory"]:
                found = (await conn.execute(_TERRITORY_SELECT.where(t.key == row["territory"]))).mappings().first()
            return row, found

    async def set_territory(self, account_id: str, key: str) -> tuple[RowMapping, RowMapping | None]:
        account_key = parse_id(account_id)
        clean, problems = check({"territory": key}, partial=True)
        if problems:
            raise validation(problems)
        async with self.db.transaction() as conn:
            row = await self._change(conn, await self._get(conn, account_key, lock=True), clean)
            found = None
            if row["territory"]:
                found = (await conn.execute(_TERRITORY_SELECT.where(t.key == row["territory"]))).mappings().first()
            return row, found

    async def list_territories(self, p: listing.ListParams) -> listing.Page:
        async with self.db.transaction() as conn:
            return await listing.fetch_page(conn, _TERRITORY_SELECT, TERRITORY_SPEC, p, [t.tenant_id == self._tenant()])

    async def _territory(self, conn: AsyncConnection, key: str, *, lock: bool = False) -> RowMapping:
        stmt = select(territories).where(t.tenant_id == self._tenant(), t.key == key.strip().lower())
        row = (await conn.execute(stmt.with_for_update() if lock else stmt)).mappings().first()
        if row is None:
            raise NotFound("territory not found")
        return row

    async def get_territory(self, key: str) -> RowMapping:
        async with self.db.transaction() as conn:
            row = (await conn.execute(_TERRITORY_SELECT.where(t.key == key.strip().lower()))).mappings().first()
            if row is None:
                raise NotFound("territory not found")
            return row

    async def create_territory(self, values: Mapping[Any, Any]) -> RowMapping:
        clean, problems = check_territory(values, creating=True)
        if problems:
            raise validation(problems)
        async with self.db.transaction() as conn:
            try:
                async with conn.begin_nested():
                    await conn.execute(insert(territories).values(tenant_id=self._tenant(), **clean))
            except IntegrityError:
                raise AlreadyExists(f"a territory with key {clean['key']!r} exists", reason="TERRITORY_EXISTS",
                                    violations=[FieldViolation("key", "already used", "ALREADY_EXISTS")]) from None
            row = (await conn.execute(_TERRITORY_SELECT.where(t.key == clean["key"]))).mappings().one()
            await emit(conn, SCHEMA, "crm.accounts.territory.created", row["key"], {"territory": territory_public(row)})
            return row

    async def update_territory(self, key: str, values: Mapping[Any, Any]) -> RowMapping:
        clean, problems = check_territory(values, creating=False)
        if problems:
            raise validation(problems)
        async with self.db.transaction() as conn:
            before = await self._territory(conn, key, lock=True)
            await conn.execute(update(territories).where(t.tenant_id == before["tenant_id"], t.key == before["key"])
                               .values(**clean, updated_at=text("now()")))
            row = (await conn.execute(_TERRITORY_SELECT.where(t.key == before["key"]))).mappings().one()
            await emit(conn, SCHEMA, "crm.accounts.territory.updated", row["key"], {"territory": territory_public(row)})
            return row

    async def delete_territory(self, key: str) -> None:
        async with self.db.transaction() as conn:
            before = await self._territory(conn, key, lock=True)
            # Every account counts here, also those the caller may not see: the key stays in use.
            async with every_owner_visible(conn):
                used = (await conn.execute(select(func.count()).where(c.territory == before["key"]))).scalar_one()
            if used:
                raise FailedPrecondition(f"{used} account(s) are assigned to this territory; reassign them first",
                                         reason="TERRITORY_IN_USE")
            await conn.execute(delete(territories).where(t.tenant_id == before["tenant_id"], t.key == before["key"]))
            await emit(conn, SCHEMA, "crm.accounts.territory.deleted", before["key"], {"territory": territory_public(before)})

    # --- merge ---------------------------------------------------------------------------
    async def merge(self, target_id: str, source_ids: Sequence[str]) -> tuple[RowMapping, RowMapping]:
        """Accept a merge: check it, re-hang the sources' children, hide the sources, and queue
        the job that moves the other services' records and then deletes the sources."""
        target, sources = _merge_ids(target_id, source_ids)
        async with self.db.transaction() as conn:
            await self._lock_hierarchy(conn)
            found = {
                r["id"]: r for r in (await conn.execute(
                    _SELECT.where(c.id.in_([target, *sources]), c.tenant_id == self._tenant(), VISIBLE).with_for_update()
                )).mappings().all()
            }
            problems = [] if target in found else [FieldViolation("targetId", "no such account", "NOT_FOUND")]
            problems += [FieldViolation(f"sourceIds[{i}]", "no such account", "NOT_FOUND")
                         for i, s in enumerate(sources) if s not in found]
            if problems:
                raise validation(problems)
            for s in sources:
                await self._refuse_if_merge_target(conn, s)
            async with every_owner_visible(conn):
                chain = (await self._chain(conn, target))[1:]
                # Hidden children too (accounts being merged elsewhere): no row may keep pointing
                # at a source, or deleting it would fail.
                kids = dict((await conn.execute(select(c.id, c.parent_id).where(c.parent_id.in_(sources)))).all())
                moves = rules.merge_parents(target, chain, sources, kids)
                heights = await self._heights(conn, [k for k, p in moves.items() if p == target])
            if rules.merge_levels(chain, sources, heights.values()) > rules.MAX_DEPTH:
                raise validation([FieldViolation(
                    "targetId", f"the merged hierarchy would have more than {rules.MAX_DEPTH} levels", "HIERARCHY_TOO_DEEP")])
            for kid_id, new_parent in sorted(moves.items(), key=lambda kv: str(kv[0])):
                kid = (await conn.execute(_SELECT.where(c.id == kid_id).with_for_update())).mappings().one()
                await self._change(conn, kid, {"parent_id": new_parent}, hierarchy_checked=True)
            await conn.execute(update(accounts).where(c.id.in_(sources)).values(merged_into=target))
            steps = [{"name": "children", "status": "completed", "moved": len(moves), "note": ""}]
            steps += [{"name": p, "status": "pending", "moved": 0, "note": ""} for p in MERGE_PEERS]
            steps.append({"name": "accounts", "status": "pending", "moved": 0, "note": ""})
            job = await self.jobs.create(conn, MERGE_KIND, params={"targetId": str(target),
                                                                   "sourceIds": [str(s) for s in sources]})
            record = (await conn.execute(insert(merges).values(
                job_id=job["id"], tenant_id=self._tenant(), target_id=target, source_ids=sources, steps=steps,
            ).returning(merges))).mappings().one()
        self.jobs.start(job["id"], context.tenant_id())
        return job, record

    async def get_merge(self, job_id: str) -> tuple[RowMapping, RowMapping]:
        async with self.db.transaction() as conn:
            job = await self.jobs.get(conn, job_id, MERGE_KIND)
            record = (await conn.execute(select(merges).where(merges.c.job_id == job["id"]))).mappings().one()
            return job, record

    async def _save_steps(self, job_id: uuid.UUID, steps: list[dict[str, Any]]) -> None:
        """Record a step's outcome on its own: a resumed job skips what is done."""
        async with self.db.transaction() as conn:
            await conn.execute(update(merges).where(merges.c.job_id == job_id).values(steps=steps, updated_at=text("now()")))

    async def _run_merge(self, job: RowMapping, conn: AsyncConnection) -> JobResult:
        """The merge job. Each step is idempotent (moving records already moved moves nothing),
        so a job resumed after a crash simply runs again from its first unfinished step. The
        sources are deleted last, in the transaction that completes the job. If a step fails,
        the sources come back and what already moved stays with the target: nothing is lost."""
        record = (await conn.execute(select(merges).where(merges.c.job_id == job["id"]))).mappings().one()
        target, sources = record["target_id"], list(record["source_ids"])
        steps = [dict(s) for s in record["steps"]]
        step: dict[str, Any] = {}
        try:
            for step in steps:
                if step["status"] in ("completed", "skipped") or step["name"] not in MERGE_PEERS:
                    continue
                if not self.peers.can_reassign(step["name"]):
                    step.update(status="skipped",
                                note=f"the {step['name']} service is not deployed: its records were not moved")
                else:
                    step["moved"] = await self.peers.reassign(step["name"], context.tenant_id(), sources, target)
                    step["status"] = "completed"
                await self._save_steps(job["id"], steps)
            step = next(s for s in steps if s["name"] == "accounts")
            # A savepoint: if finishing fails, its row locks go with it and the sources can be restored.
            async with conn.begin_nested():
                return await self._finish_merge(conn, job["id"], target, sources, steps)
        except Exception as exc:
            step.update(status="failed", note=str(getattr(exc, "message", "") or exc)[:500])
            await self._save_steps(job["id"], steps)
            await self._restore_sources(target, sources)
            raise

    async def _finish_merge(self, conn: AsyncConnection, job_id: uuid.UUID, target: uuid.UUID,
                            sources: list[uuid.UUID], steps: list[dict[str, Any]]) -> JobResult:
        """Fold the sources into the target, delete them and announce the merge."""
        rows = (await conn.execute(
            _SELECT.where(c.id.in_(sources), c.merged_into == target).with_for_update()
        )).mappings().all()
        gone = sorted(rows, key=lambda r: sources.index(r["id"]))
        before = await self._get_any(conn, target)
        fill = rules.fold_sources(before, gone)
        if fill.get("territory"):  # a source's territory may have been deleted since
            exists = (await conn.execute(select(t.key).where(t.key == fill["territory"]))).first()
            if exists is None:
                del fill["territory"]
        if fill:
            await self._change(conn, before, fill)
        await conn.execute(delete(accounts).where(c.id.in_([r["id"] for r in gone])))
        for r in gone:
            await emit(conn, SCHEMA, "crm.accounts.account.deleted", str(r["id"]),
                       {"account": public(r), "mergedInto": str(target)})
        next(s for s in steps if s["name"] == "accounts").update(status="completed", moved=len(gone))
        moved = {s["name"]: s["moved"] for s in steps if s["status"] == "completed" and s["name"] != "accounts"}
        await emit(conn, SCHEMA, "crm.accounts.account.merged", str(target), {
            "targetId": str(target), "sourceIds": [str(r["id"]) for r in gone], "moved": moved,
            "skipped": [s["name"] for s in steps if s["status"] == "skipped"],
        })
        await conn.execute(update(merges).where(merges.c.job_id == job_id).values(steps=steps, updated_at=text("now()")))
        return JobResult(total=len(sources), succeeded=len(gone), failed=len(sources) - len(gone))

    async def _get_any(self, conn: AsyncConnection, key: uuid.UUID) -> RowMapping:
        row = (await conn.execute(_SELECT.where(c.id == key).with_for_update())).mappings().first()
        if row is None:
            raise NotFound("the merge target no longer exists")
        return row

    async def _restore_sources(self, target: uuid.UUID, sources: list[uuid.UUID]) -> None:
        """A failed merge gives the sources back (what already moved stays with the target)."""
        async with self.db.transaction() as conn:
            await conn.execute(update(accounts).where(c.id.in_(sources), c.merged_into == target).values(merged_into=None))


def _merge_ids(target_id: str, source_ids: Sequence[str]) -> tuple[uuid.UUID, list[uuid.UUID]]:
    problems: list[FieldViolation] = []
    target: uuid.UUID | None = None
    try:
        target = uuid.UUID(target_id)
    except ValueError:
        problems.append(FieldViolation("targetId", "must be an account id" if target_id else "required",
                                       "INVALID" if target_id else "REQUIRED"))
    if not source_ids or len(source_ids) > rules.MAX_MERGE_SOURCES:
        problems.append(FieldViolation("sourceIds", f"give 1 to {rules.MAX_MERGE_SOURCES} account ids", "OUT_OF_RANGE"))
    sources: list[uuid.UUID] = []
    for i, raw in enumerate(source_ids[: rules.MAX_MERGE_SOURCES]):
        try:
            s = uuid.UUID(raw)
        except ValueError:
            problems.append(FieldViolation(f"sourceIds[{i}]", "must be an account id"))
            continue
        if s == target:
            problems.append(FieldViolation(f"sourceIds[{i}]", "an account cannot be merged into itself", "SELF_MERGE"))
        elif s in sources:
            problems.append(FieldViolation(f"sourceIds[{i}]", "repeats an earlier source", "DUPLICATE"))
        else:
            sources.append(s)
    if problems or target is None:
        raise validation(problems)
    return target, sources


def merge_progress(job: Mapping[Any, Any], record: Mapping[Any, Any]) -> int:
    if job["status"] == "completed":
        return 100
    steps = record["steps"]
    done = sum(1 for s in steps if s["status"] in ("completed", "skipped"))
    return int(100 * done / len(steps)) if steps and job["status"] == "running" else int(job["progress"])


__all__ = ["LIST_SPEC", "MERGE_KIND", "AccountsDomain", "Hierarchy", "Peers", "merge_progress", "parse_id"]
