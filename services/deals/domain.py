"""The deals domain: records, stage moves with history, board, bulk changes. No gRPC here.

Which stages exist, their order, kind and probability belong to the Pipelines service; a
request that needs them fetches the pipeline (or all pipelines) once, never per deal. The board
and forecast are single SQL aggregations over indexes (analytics.py holds the forecast and the
analytics).
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.deals import rules
from services.deals.peers import PipelineInfo, PipelinesPeer, ReferencesPeer, StageInfo
from services.deals.tables import SCHEMA, deals, history
from services.kernel import context, listing, preconditions
from services.kernel.db import Database
from services.kernel.errors import (
    Conflict,
    DomainError,
    FieldViolation,
    InvalidArgument,
    NotFound,
    from_database,
    validation,
)
from services.kernel.events import emit

MAX_BULK = 500
MAX_PER_STAGE = 100
d = deals.c
h = history.c
LIST_SPEC = listing.ListSpec(
    fields={
        "id": listing.Field(d.id, "uuid"),
        "name": listing.Field(d.name, "text", sortable=True),
        "amount": listing.Field(d.amount, "decimal", sortable=True),
        "currency": listing.Field(d.currency, "text"),
        "pipelineId": listing.Field(d.pipeline_id, "uuid"),
        "stageId": listing.Field(d.stage_id, "uuid"),
        "status": listing.Field(d.status, "text"),
        "ownerId": listing.Field(d.owner_id, "uuid"),
        "accountId": listing.Field(d.account_id, "uuid"),
        "contactId": listing.Field(d.contact_id, "uuid"),
        "forecastCategory": listing.Field(d.forecast_category, "text"),
        "expectedCloseDate": listing.Field(d.expected_close_date, "date"),
        "createdAt": listing.Field(d.created_at, "time", sortable=True),
        "updatedAt": listing.Field(d.updated_at, "time", sortable=True),
        "stageEnteredAt": listing.Field(d.stage_entered_at, "time", sortable=True),
    },
    id_column=d.id,
    search_column=d.search_text,
    default_sort="-createdAt",
)
HISTORY_SPEC = listing.ListSpec(fields={"changedAt": listing.Field(h.changed_at, "time", sortable=True)},
                                id_column=h.id, default_sort="-changedAt")
COLUMNS = [col for col in deals.c if col.key != "search_text"]
_SELECT = select(*COLUMNS)
BULK_FIELDS = ("name", "amount", "currency", "expectedCloseDate", "ownerId", "stageId", "forecastCategory", "lostReason",
               "description", "accountId", "contactId", "customFields")


def parse_id(value: str, name: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument(f"{name} must be a UUID", violations=[FieldViolation(name, "must be a UUID")]) from None


def _iso(value: Any) -> str:
    return value.isoformat() if value is not None else ""


def public(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A deal as events carry it: the API's field names, JSON values."""
    return {
        "id": str(row["id"]), "name": row["name"], "amount": rules.money(row["amount"]), "currency": row["currency"],
        "pipelineId": str(row["pipeline_id"]), "stageId": str(row["stage_id"]),
        "accountId": str(row["account_id"] or ""), "contactId": str(row["contact_id"] or ""),
        "expectedCloseDate": _iso(row["expected_close_date"]), "status": row["status"], "ownerId": str(row["owner_id"]),
        "forecastCategory": row["forecast_category"], "lostReason": row["lost_reason"], "description": row["description"],
        "customFields": row["custom_fields"], "stageEnteredAt": _iso(row["stage_entered_at"]), "closedAt": _iso(row["closed_at"]),
    }


def changes(before: Mapping[Any, Any], after: Mapping[Any, Any]) -> dict[str, dict[str, Any]]:
    old, new = public(before), public(after)
    return {k: {"from": old[k], "to": new[k]} for k in new if old.get(k) != new[k] and k != "stageEnteredAt"}


@dataclass
class BulkResult:
    index: int
    success: bool
    id: str = ""
    row: RowMapping | None = None
    errors: builtins.list[FieldViolation] = field(default_factory=list)


@dataclass
class BoardColumn:
    stage: StageInfo
    count: int
    totals: builtins.list[dict[str, Any]]
    rows: builtins.list[Mapping[str, Any]]


class _DryRun(Exception):
    """Unwinds a validate-only transaction, carrying the row it would have saved."""

    def __init__(self, row: RowMapping) -> None:
        super().__init__("validate only")
        self.row = row


class DealsDomain:
    def __init__(self, db: Database, pipelines: PipelinesPeer, refs: ReferencesPeer) -> None:
        self.db = db
        self.pipelines = pipelines
        self.refs = refs

    # --- single records ------------------------------------------------------------------
    async def _row(self, conn: AsyncConnection, key: uuid.UUID, *, lock: bool = False) -> RowMapping:
        stmt = _SELECT.where(d.id == key)
        row = (await conn.execute(stmt.with_for_update() if lock else stmt)).mappings().first()
        if row is None:
            raise NotFound("deal not found")
        return row

    async def get(self, deal_id: str) -> RowMapping:
        async with self.db.transaction() as conn:
            return await self._row(conn, parse_id(deal_id))

    async def _placement(self, pipeline_id: uuid.UUID | None, stage_id: uuid.UUID | None) -> tuple[PipelineInfo, StageInfo]:
        """The pipeline and stage a deal goes to: the named ones (checked against the Pipelines
        service), else the default pipeline and its first open stage."""
        pipeline = await (self.pipelines.get(str(pipeline_id)) if pipeline_id else self.pipelines.default())
        if stage_id is None:
            stage = pipeline.first_open()
            if stage is None:
                raise validation([FieldViolation("stageId", "the pipeline has no open stage: name a stage", "REQUIRED")])
            return pipeline, stage
        stage = pipeline.stage(str(stage_id))
        if stage is None:
            raise validation([FieldViolation("stageId", "not a stage of the deal's pipeline", "FOREIGN_STAGE")])
        return pipeline, stage

    async def _check_references(self, clean: Mapping[str, Any], before: Mapping[Any, Any] | None = None) -> None:
        """Contacts and accounts must be the tenant's (another tenant's id is 'not found': 422)."""
        for name, check in (("contact_id", self.refs.check_contact), ("account_id", self.refs.check_account)):
            value = clean.get(name)
            if value is not None and (before is None or before[name] != value):
                await check(str(value))

    async def _insert(self, conn: AsyncConnection, values: Mapping[Any, Any], pipeline: PipelineInfo, stage: StageInfo,
                      event_extra: Mapping[str, Any] | None = None) -> RowMapping:
        ctx = context.current()
        user = uuid.UUID(ctx.user_id) if ctx.user_id else None
        status = rules.status_of(stage.kind)
        row_values = {k: v for k, v in values.items() if k in rules.WRITABLE}
        row_values.update(
            id=uuid.uuid4(), tenant_id=uuid.UUID(ctx.tenant_id), pipeline_id=uuid.UUID(pipeline.id),
            stage_id=uuid.UUID(stage.id), status=status, owner_id=values.get("owner_id") or user, created_by=user,
            closed_at=None if status == "open" else text("now()"),
            lost_reason=values.get("lost_reason", "") if status == "lost" else "",
        )
        row = (await conn.execute(insert(deals).values(row_values).returning(*COLUMNS))).mappings().one()
        await conn.execute(insert(history).values(
            id=uuid.uuid4(), tenant_id=row["tenant_id"], deal_id=row["id"], pipeline_id=row["pipeline_id"],
            to_stage_id=row["stage_id"], to_stage_name=stage.name, to_status=status, changed_by=user))
        await emit(conn, SCHEMA, "crm.deals.deal.created", str(row["id"]), {"deal": public(row), **(event_extra or {})})
        return row

    async def create(self, values: Mapping[Any, Any]) -> RowMapping:
        clean, problems = rules.check(values, creating=True)
        if problems:
            raise validation(problems)
        pipeline, stage = await self._placement(clean.get("pipeline_id"), clean.get("stage_id"))
        asked = str(values.get("status") or "")
        if asked and asked != rules.status_of(stage.kind):
            raise validation([FieldViolation("status", f"the status follows the stage: {stage.name} makes it "
                                             f"{rules.status_of(stage.kind)}", "STATUS_FOLLOWS_STAGE")])
        await self._check_references(clean)
        async with self.db.transaction() as conn:
            return await self._insert(conn, clean, pipeline, stage)

    async def _move(self, conn: AsyncConnection, locked: RowMapping, pipeline: PipelineInfo, stage: StageInfo,
                    values: Mapping[Any, Any], lost_reason: str | None) -> RowMapping:
        """Put a locked deal in `stage`: status from its kind, history with the time spent in the
        stage it leaves, and the stage_changed event automation listens to."""
        status = rules.status_of(stage.kind)
        reason = (lost_reason if lost_reason is not None else values.get("lost_reason", locked["lost_reason"])) \
            if status == "lost" else ""
        user = context.current().user_id
        new_values = {k: v for k, v in values.items() if k in rules.WRITABLE}
        new_values.update(pipeline_id=uuid.UUID(pipeline.id), stage_id=uuid.UUID(stage.id), status=status,
                          lost_reason=reason, stage_entered_at=text("now()"), updated_at=text("now()"),
                          closed_at=None if status == "open" else text("now()"))
        row = (await conn.execute(update(deals).where(d.id == locked["id"]).values(**new_values)
                                  .returning(*COLUMNS))).mappings().one()
        from_name = await self._stage_name(conn, pipeline, locked)
        entry = (await conn.execute(insert(history).values(
            id=uuid.uuid4(), tenant_id=row["tenant_id"], deal_id=row["id"], pipeline_id=row["pipeline_id"],
            from_pipeline_id=locked["pipeline_id"] if locked["pipeline_id"] != row["pipeline_id"] else None,
            from_stage_id=locked["stage_id"], from_stage_name=from_name, to_stage_id=row["stage_id"], to_stage_name=stage.name,
            from_status=locked["status"], to_status=status, changed_by=uuid.UUID(user) if user else None,
            time_in_stage_seconds=text("GREATEST(0, EXTRACT(EPOCH FROM now() - CAST(:entered AS timestamptz)))::bigint")
            .bindparams(entered=locked["stage_entered_at"]),
        ).returning(h.id, h.time_in_stage_seconds))).one()
        await emit(conn, SCHEMA, "crm.deals.deal.stage_changed", str(row["id"]), {
            "deal": public(row), "pipelineId": str(row["pipeline_id"]), "fromPipelineId": str(locked["pipeline_id"]),
            "fromStageId": str(locked["stage_id"]), "toStageId": str(row["stage_id"]), "fromStatus": locked["status"],
            "toStatus": status, "timeInStageSeconds": entry.time_in_stage_seconds, "historyId": str(entry.id),
            "changedBy": user,
        })
        return row

    @staticmethod
    async def _stage_name(conn: AsyncConnection, pipeline: PipelineInfo, row: Mapping[Any, Any]) -> str:
        """Name of the stage a deal is in: from the pipeline at hand, else from its history."""
        known = pipeline.stage(str(row["stage_id"]))
        if known is not None:
            return known.name
        name = (await conn.execute(select(h.to_stage_name).where(h.deal_id == row["id"], h.to_stage_id == row["stage_id"])
                                   .order_by(h.changed_at.desc()).limit(1))).scalar()
        return name or ""

    async def update(self, deal_id: str, values: Mapping[Any, Any], mask: set[str] | None, *,
                     validate_only: bool = False) -> RowMapping:
        key = parse_id(deal_id)
        if mask is not None:
            unknown = mask - set(rules.WRITABLE) - {"status"}
            if unknown:
                raise InvalidArgument("unknown field in updateMask", violations=[
                    FieldViolation("updateMask", f"not a writable field: {rules.camel(n)}") for n in sorted(unknown)])
            wanted = {k: v for k, v in values.items() if k in mask}
        else:
            # A full replace keeps what a deal cannot be without when the client left it empty.
            keep = ("pipeline_id", "stage_id", "owner_id", "status", "currency")
            wanted = {k: v for k, v in values.items() if k not in keep or v}
        asked_status = str(wanted.pop("status", "") or "")
        clean, problems = rules.check(wanted)
        if "owner_id" in clean and clean["owner_id"] is None:
            problems.append(FieldViolation("ownerId", "a deal needs an owner", "REQUIRED"))
        if problems:
            raise validation(problems)
        before = await self.get(deal_id)
        preconditions.require_current(before["updated_at"])  # early, before asking pipelines
        target_pipeline = clean.get("pipeline_id") or before["pipeline_id"]
        target_stage = clean.get("stage_id")
        moving = target_pipeline != before["pipeline_id"] or (target_stage is not None and target_stage != before["stage_id"])
        placement: tuple[PipelineInfo, StageInfo] | None = None
        if moving:
            placement = await self._placement(target_pipeline, target_stage)
            status = rules.status_of(placement[1].kind)
        else:
            status = before["status"]
        if asked_status and asked_status != status:
            raise validation([FieldViolation("status", "the status follows the stage: move the deal to a won or lost "
                                             "stage instead", "STATUS_FOLLOWS_STAGE")])
        await self._check_references(clean, before)
        other = {k: v for k, v in clean.items() if k not in ("pipeline_id", "stage_id")}
        try:
            async with self.db.transaction() as conn:
                locked = await self._row(conn, key, lock=True)
                preconditions.require_current(locked["updated_at"])
                if (locked["pipeline_id"], locked["stage_id"]) != (before["pipeline_id"], before["stage_id"]) and moving:
                    raise Conflict("the deal moved meanwhile; read it again and retry", reason="CONCURRENT_MOVE")
                if placement is not None:
                    row = await self._move(conn, locked, placement[0], placement[1], other, None)
                else:
                    if locked["status"] != "lost":
                        other.pop("lost_reason", None)  # only lost deals carry a reason
                    row = (await conn.execute(update(deals).where(d.id == key).values(**other, updated_at=text("now()"))
                                              .returning(*COLUMNS))).mappings().one()
                diff = changes(locked, row)
                if diff:
                    await emit(conn, SCHEMA, "crm.deals.deal.updated", str(key), {"deal": public(row), "changes": diff})
                if validate_only:
                    raise _DryRun(row)
        except _DryRun as dry:
            return dry.row
        return row

    async def delete(self, deal_id: str) -> None:
        key = parse_id(deal_id)
        async with self.db.transaction() as conn:
            before = await self._row(conn, key, lock=True)
            preconditions.require_current(before["updated_at"])
            await conn.execute(delete(deals).where(d.id == key))
            await emit(conn, SCHEMA, "crm.deals.deal.deleted", str(key), {"deal": public(before)})

    async def move_stage(self, deal_id: str, stage_id: str, lost_reason: str) -> RowMapping:
        key = parse_id(deal_id)
        try:
            stage_key = uuid.UUID(stage_id)
        except ValueError:
            raise validation([FieldViolation("stageId", "must be a stage id", "REQUIRED" if not stage_id else "INVALID")]) from None
        _, problems = rules.check({"lost_reason": lost_reason})
        if problems:
            raise validation(problems)
        before = await self.get(deal_id)
        preconditions.require_current(before["updated_at"])
        pipeline = await self.pipelines.get(str(before["pipeline_id"]))
        stage = pipeline.stage(str(stage_key))
        if stage is None:
            raise validation([FieldViolation("stageId", "not a stage of the deal's pipeline", "FOREIGN_STAGE")])
        if stage_key == before["stage_id"]:
            return before  # already there: nothing moves, no history
        async with self.db.transaction() as conn:
            locked = await self._row(conn, key, lock=True)
            preconditions.require_current(locked["updated_at"])
            if locked["pipeline_id"] != before["pipeline_id"]:
                raise Conflict("the deal changed pipeline meanwhile; retry", reason="CONCURRENT_MOVE")
            return await self._move(conn, locked, pipeline, stage, {}, " ".join(lost_reason.split()))

    async def clone(self, deal_id: str, name: str, stage_id: str, owner_id: str) -> RowMapping:
        source = await self.get(deal_id)
        asked, problems = rules.check({"name": name or f"{source['name']} (copy)"[:200], "stage_id": stage_id,
                                       "owner_id": owner_id})
        if problems:
            raise validation(problems)
        pipeline = await self.pipelines.get(str(source["pipeline_id"]))
        if asked.get("stage_id"):
            stage = pipeline.stage(str(asked["stage_id"]))
            if stage is None:
                raise validation([FieldViolation("stageId", "not a stage of the deal's pipeline", "FOREIGN_STAGE")])
        else:
            current = pipeline.stage(str(source["stage_id"]))
            stage = current if current is not None and current.kind == "open" else pipeline.first_open()
            if stage is None:
                raise validation([FieldViolation("stageId", "the pipeline has no open stage: name a stage", "REQUIRED")])
        values = {k: source[k] for k in ("amount", "currency", "account_id", "contact_id", "expected_close_date",
                                         "forecast_category", "description", "custom_fields")}
        values.update(name=asked["name"], owner_id=asked.get("owner_id"))
        async with self.db.transaction() as conn:
            return await self._insert(conn, values, pipeline, stage, {"clonedFrom": str(source["id"])})

    # --- lists ---------------------------------------------------------------------------
    async def list(self, p: listing.ListParams) -> listing.Page:
        async with self.db.transaction() as conn:
            return await listing.fetch_page(conn, _SELECT, LIST_SPEC, p)

    async def history(self, deal_id: str, p: listing.ListParams) -> listing.Page:
        key = parse_id(deal_id)
        async with self.db.transaction() as conn:
            await self._row(conn, key)
            return await listing.fetch_page(conn, select(history), HISTORY_SPEC, p, [h.deal_id == key])

    async def board(self, pipeline_id: str, per_stage: int, owner_id: str) -> tuple[PipelineInfo, builtins.list[BoardColumn]]:
        """Stages in order with their newest deals, count and per-currency totals: one statement."""
        key = parse_id(pipeline_id, "pipelineId")
        if not 0 <= per_stage <= MAX_PER_STAGE:
            raise InvalidArgument("bad limit", violations=[FieldViolation("limitPerStage", f"must be 1 to {MAX_PER_STAGE}",
                                                                          "OUT_OF_RANGE")])
        owner = parse_id(owner_id, "ownerId") if owner_id else None
        try:
            pipeline = await self.pipelines.get(str(key))
        except DomainError as err:
            if err.violations and err.violations[0].code == "NOT_FOUND":
                raise NotFound("pipeline not found") from None
            raise
        limit = per_stage or 20
        owner_filter = "AND x.owner_id = :owner" if owner else ""
        cols = ", ".join(f"x.{c.key}" for c in COLUMNS)
        stmt = text(f"""
            WITH s AS (SELECT * FROM unnest(CAST(:ids AS uuid[])) WITH ORDINALITY AS s(stage_id, ord)),
            agg AS (SELECT x.stage_id, x.currency, count(*) AS n, sum(x.amount) AS total FROM deals.deals x
                    WHERE x.tenant_id = :t AND x.pipeline_id = :p {owner_filter} GROUP BY x.stage_id, x.currency),
            tot AS (SELECT stage_id, sum(n)::int AS n,
                           jsonb_agg(jsonb_build_object('currency', currency, 'count', n, 'amount', total::text)
                                     ORDER BY currency) AS totals
                    FROM agg GROUP BY stage_id)
            SELECT s.ord AS board_ord, coalesce(tot.n, 0) AS board_count, coalesce(tot.totals, '[]'::jsonb) AS board_totals,
                   top.*
            FROM s LEFT JOIN tot ON tot.stage_id = s.stage_id
            LEFT JOIN LATERAL (SELECT {cols} FROM deals.deals x
                               WHERE x.tenant_id = :t AND x.pipeline_id = :p AND x.stage_id = s.stage_id {owner_filter}
                               ORDER BY x.updated_at DESC, x.id DESC LIMIT :n) top ON true
            ORDER BY s.ord, top.updated_at DESC, top.id DESC""")
        params = {"ids": [uuid.UUID(s.id) for s in pipeline.stages], "t": uuid.UUID(context.tenant_id()), "p": key,
                  "n": limit, "owner": owner}
        async with self.db.transaction() as conn:
            rows = (await conn.execute(stmt, params)).mappings().all()
        columns = [BoardColumn(s, 0, [], []) for s in pipeline.stages]
        for row in rows:
            column = columns[row["board_ord"] - 1]
            column.count, column.totals = row["board_count"], row["board_totals"]
            if row["id"] is not None:
                column.rows.append(row)
        return pipeline, columns

    # --- bulk ----------------------------------------------------------------------------
    async def bulk_update(self, ids: Sequence[str], changes_in: Mapping[str, Any]) -> builtins.list[BulkResult]:
        if not ids or len(ids) > MAX_BULK:
            raise InvalidArgument("bad batch size", violations=[FieldViolation("ids", f"send 1 to {MAX_BULK} ids", "OUT_OF_RANGE")])
        unknown = sorted(set(changes_in) - set(BULK_FIELDS))
        if unknown:
            raise validation([FieldViolation(f"changes.{k}", f"cannot be changed in bulk; allowed: {', '.join(BULK_FIELDS)}",
                                             "UNKNOWN_FIELD") for k in unknown])
        if not changes_in:
            raise validation([FieldViolation("changes", "name at least one field to change", "REQUIRED")])
        values = {rules.snake(k): v for k, v in changes_in.items()}
        clean, problems = rules.check(values, "changes.")
        if "owner_id" in clean and clean["owner_id"] is None:
            problems.append(FieldViolation("changes.ownerId", "a deal needs an owner", "REQUIRED"))
        if "stage_id" in clean and clean["stage_id"] is None:
            problems.append(FieldViolation("changes.stageId", "must be a stage id", "REQUIRED"))
        if problems:
            raise validation(problems)
        await self._check_references(clean)
        results = [BulkResult(i, False, raw) for i, raw in enumerate(ids)]
        keys: dict[int, uuid.UUID] = {}
        for i, raw in enumerate(ids):
            try:
                keys[i] = uuid.UUID(raw)
            except ValueError:
                results[i].errors = [FieldViolation(f"ids[{i}]", "must be a UUID")]
        async with self.db.transaction() as conn:
            found = {r["id"]: r for r in (await conn.execute(_SELECT.where(d.id.in_(list(keys.values()))))).mappings()}
        stage_key = clean.pop("stage_id", None)
        by_pipeline: dict[str, PipelineInfo] = {}
        if stage_key is not None:
            by_pipeline = {p.id: p for p in await self.pipelines.all()}  # one call, whatever the number of deals
        async with self.db.transaction() as conn:
            for i, key in keys.items():
                item = results[i]
                row = found.get(key)
                if row is None:
                    item.errors = [FieldViolation(f"ids[{i}]", "deal not found", "NOT_FOUND")]
                    continue
                try:
                    async with conn.begin_nested():
                        item.row = await self._apply(conn, key, clean, stage_key, by_pipeline, i)
                        item.success = True
                except DomainError as err:
                    item.errors = err.violations or [FieldViolation(f"ids[{i}]", err.message, err.reason)]
                except Exception as exc:
                    mapped = from_database(exc)
                    if mapped is None:
                        raise
                    item.errors = [FieldViolation(f"ids[{i}]", mapped.message, mapped.reason)]
        return results

    async def _apply(self, conn: AsyncConnection, key: uuid.UUID, clean: Mapping[str, Any], stage_key: uuid.UUID | None,
                     by_pipeline: Mapping[str, PipelineInfo], index: int) -> RowMapping:
        locked = await self._row(conn, key, lock=True)
        if stage_key is not None and stage_key != locked["stage_id"]:
            pipeline = by_pipeline.get(str(locked["pipeline_id"]))
            stage = pipeline.stage(str(stage_key)) if pipeline else None
            if pipeline is None or stage is None:
                raise validation([FieldViolation(f"ids[{index}]", "changes.stageId is not a stage of this deal's pipeline",
                                                 "FOREIGN_STAGE")])
            row = await self._move(conn, locked, pipeline, stage, clean, None)
        else:
            values = dict(clean)
            if locked["status"] != "lost":
                values.pop("lost_reason", None)
            row = (await conn.execute(update(deals).where(d.id == key).values(**values, updated_at=text("now()"))
                                      .returning(*COLUMNS))).mappings().one()
        diff = changes(locked, row)
        if diff:
            await emit(conn, SCHEMA, "crm.deals.deal.updated", str(key), {"deal": public(row), "changes": diff})
        return row

    # --- internal rpcs -------------------------------------------------------------------
    async def move_stage_deals(self, from_stage_id: str, to_stage_id: str) -> int:
        """Every deal of one stage to another stage of the same pipeline (before a stage is deleted)."""
        source, target = parse_id(from_stage_id, "fromStageId"), parse_id(to_stage_id, "toStageId")
        if source == target:
            raise validation([FieldViolation("toStageId", "must differ from fromStageId", "SAME_STAGE")])
        async with self.db.transaction() as conn:
            pipeline_id = (await conn.execute(select(d.pipeline_id).where(d.stage_id == source).limit(1))).scalar()
        if pipeline_id is None:
            return 0
        pipeline = await self.pipelines.get(str(pipeline_id), field="toStageId")
        stage = pipeline.stage(str(target))
        if stage is None:
            raise validation([FieldViolation("toStageId", "not a stage of the deals' pipeline", "FOREIGN_STAGE")])
        async with self.db.transaction() as conn:
            locked = (await conn.execute(_SELECT.where(d.stage_id == source).order_by(d.id).with_for_update())).mappings().all()
            for row in locked:
                await self._move(conn, row, pipeline, stage, {}, None)
        return len(locked)

    async def reassign_account(self, from_ids: Sequence[str], to_id: str) -> int:
        """Deals of merged accounts now belong to the surviving account (accounts merge)."""
        target = parse_id(to_id, "toAccountId")
        sources = [parse_id(x, f"fromAccountIds[{i}]") for i, x in enumerate(from_ids)]
        if not sources:
            raise validation([FieldViolation("fromAccountIds", "name at least one account", "REQUIRED")])
        if target in sources:
            raise validation([FieldViolation("toAccountId", "must not be one of fromAccountIds", "SAME_ACCOUNT")])
        async with self.db.transaction() as conn:
            before = {r["id"]: r for r in (await conn.execute(
                _SELECT.where(d.account_id.in_(sources)).with_for_update())).mappings()}
            rows = (await conn.execute(update(deals).where(d.account_id.in_(sources))
                                       .values(account_id=target, updated_at=text("now()")).returning(*COLUMNS))).mappings().all()
            for row in rows:
                await emit(conn, SCHEMA, "crm.deals.deal.updated", str(row["id"]),
                           {"deal": public(row), "changes": changes(before[row["id"]], row), "reason": "account_merge"})
        return len(rows)
