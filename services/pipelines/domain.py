"""The pipelines domain: pipelines, their ordered stages and automation rules. No gRPC here.

Stage order lives in `position` (0..n-1 over active stages). A stage being deleted is archived
first (its position made negative): the Deals service then refuses moves into it while its
deals move to the stage the caller named, and only then is the row deleted.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.kernel import context, listing, preconditions
from services.kernel.db import Database
from services.kernel.errors import (
    AlreadyExists,
    Conflict,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    validation,
)
from services.kernel.events import emit
from services.pipelines import rules as r
from services.pipelines.peers import DealsPeer
from services.pipelines.tables import SCHEMA, idle_rules, pipelines, rules, runs, stages

p_ = pipelines.c
s_ = stages.c
LIST_SPEC = listing.ListSpec(
    fields={
        "name": listing.Field(p_.name, "text", sortable=True),
        "createdAt": listing.Field(p_.created_at, "time", sortable=True),
        "updatedAt": listing.Field(p_.updated_at, "time", sortable=True),
    },
    id_column=p_.id,
    search_column=p_.search_text,
    default_sort="createdAt",
)
_PIPELINE = select(*[col for col in pipelines.c if col.key != "search_text"])


def _conflict(exc: IntegrityError) -> DomainError:
    """The caller-facing meaning of a unique index that refused a write (a concurrent change
    the checks before it could not see)."""
    text_ = str(exc.orig)
    if "uq_pipelines_name" in text_:
        return AlreadyExists("a pipeline with this name exists", reason="DUPLICATE_NAME",
                             violations=[FieldViolation("name", "a pipeline with this name exists", "DUPLICATE")])
    if "uq_stages_name" in text_:
        return AlreadyExists("a stage with this name exists in the pipeline", reason="DUPLICATE_NAME",
                             violations=[FieldViolation("name", "stage names must be unique in a pipeline", "DUPLICATE")])
    return Conflict("the pipeline changed meanwhile; read it again and retry", reason="CONCURRENT_CHANGE")


def parse_id(value: str, name: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument(f"{name} must be a UUID", violations=[FieldViolation(name, "must be a UUID")]) from None


@dataclass
class PipelineView:
    """A pipeline row with its active stages in order."""

    row: RowMapping
    stages: builtins.list[RowMapping]

    def public(self) -> dict[str, Any]:
        return {"id": str(self.row["id"]), "name": self.row["name"], "description": self.row["description"],
                "isDefault": self.row["is_default"],
                "stages": [stage_public(s, i) for i, s in enumerate(self.stages)]}


def stage_public(row: Mapping[Any, Any], position: int | None = None) -> dict[str, Any]:
    return {"id": str(row["id"]), "name": row["name"], "probability": row["probability"], "kind": row["kind"],
            "position": row["position"] if position is None else position}


def rule_public(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {"id": str(row["id"]), "pipelineId": str(row["pipeline_id"]), "name": row["name"],
            "enabled": row["enabled"], "trigger": row["trigger"], "actions": row["actions"]}


class PipelinesDomain:
    def __init__(self, db: Database, deals: DealsPeer) -> None:
        self.db = db
        self.deals = deals

    # --- reading -------------------------------------------------------------------------
    async def _row(self, conn: AsyncConnection, key: uuid.UUID, *, lock: bool = False) -> RowMapping:
        stmt = _PIPELINE.where(p_.id == key)
        row = (await conn.execute(stmt.with_for_update() if lock else stmt)).mappings().first()
        if row is None:
            raise NotFound("pipeline not found")
        return row

    @staticmethod
    async def _stages(conn: AsyncConnection, pipeline_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[RowMapping]]:
        """Active stages of several pipelines in one query, each list in order."""
        found: dict[uuid.UUID, list[RowMapping]] = {k: [] for k in pipeline_ids}
        if pipeline_ids:
            rows = (await conn.execute(select(stages).where(s_.pipeline_id.in_(list(pipeline_ids)), s_.archived_at.is_(None))
                                       .order_by(s_.pipeline_id, s_.position))).mappings().all()
            for row in rows:
                found[row["pipeline_id"]].append(row)
        return found

    async def _view(self, conn: AsyncConnection, key: uuid.UUID, *, lock: bool = False) -> PipelineView:
        row = await self._row(conn, key, lock=lock)
        return PipelineView(row, (await self._stages(conn, [key]))[key])

    async def get(self, pipeline_id: str) -> PipelineView:
        async with self.db.transaction() as conn:
            return await self._view(conn, parse_id(pipeline_id))

    async def list(self, p: listing.ListParams) -> tuple[listing.Page, dict[uuid.UUID, list[RowMapping]]]:
        async with self.db.transaction() as conn:
            await self._ensure_default(conn)
            page = await listing.fetch_page(conn, _PIPELINE, LIST_SPEC, p)
            return page, await self._stages(conn, [row._mapping["id"] for row in page.rows])

    async def _ensure_default(self, conn: AsyncConnection) -> None:
        """A new tenant's first list creates its default pipeline (once: deleting it later does
        not bring it back). Pipelines the tenant made before listing count as its setup."""
        tenant = uuid.UUID(context.tenant_id())
        first = (await conn.execute(text(
            "INSERT INTO pipelines.tenant_setup (tenant_id) VALUES (:t) ON CONFLICT DO NOTHING RETURNING tenant_id"
        ), {"t": tenant})).first()
        if first is None:
            return
        if (await conn.execute(select(p_.id).limit(1))).first() is not None:
            return
        await self._insert(conn, {"name": r.DEFAULT_PIPELINE_NAME, "description": "", "is_default": True},
                           [dict(s) for s in r.STANDARD_STAGES], created_by=None)

    # --- pipelines -----------------------------------------------------------------------
    async def _insert(self, conn: AsyncConnection, values: Mapping[Any, Any], stage_values: builtins.list[dict[str, Any]],
                      *, created_by: uuid.UUID | None) -> PipelineView:
        tenant = uuid.UUID(context.tenant_id())
        has_default = (await conn.execute(select(p_.id).where(p_.is_default))).first() is not None
        make_default = bool(values.get("is_default")) or not has_default
        if make_default and has_default:
            await conn.execute(update(pipelines).where(p_.is_default).values(is_default=False, updated_at=text("now()")))
        key = uuid.uuid4()
        try:
            async with conn.begin_nested():
                row = (await conn.execute(insert(pipelines).values(
                    id=key, tenant_id=tenant, name=values["name"], description=values.get("description", ""),
                    is_default=make_default, created_by=created_by).returning(*_PIPELINE.selected_columns))).mappings().one()
        except IntegrityError as exc:
            raise _conflict(exc) from None
        stage_rows = (await conn.execute(insert(stages).returning(stages, sort_by_parameter_order=True), [
            {"id": uuid.uuid4(), "tenant_id": tenant, "pipeline_id": key, "name": s["name"], "probability": s["probability"],
             "kind": s["kind"], "position": i} for i, s in enumerate(stage_values)
        ])).mappings().all()
        view = PipelineView(row, list(stage_rows))
        await emit(conn, SCHEMA, "crm.pipelines.pipeline.created", str(key), {"pipeline": view.public()})
        return view

    async def create(self, values: Mapping[Any, Any], stage_values: builtins.list[Mapping[str, Any]] | None) -> PipelineView:
        clean, problems = r.check_pipeline({"name": values.get("name", ""), "description": values.get("description", "")})
        checked: builtins.list[dict[str, Any]] = []
        if stage_values:
            for i, raw in enumerate(stage_values):
                stage, stage_problems = r.check_stage({**raw, "position": None}, f"stages[{i}].")
                problems += stage_problems
                checked.append(stage)
            problems += r.check_stage_set(checked)
        else:
            checked = [dict(s) for s in r.STANDARD_STAGES]
        if problems:
            raise validation(problems)
        ctx = context.current()
        async with self.db.transaction() as conn:
            return await self._insert(conn, {**clean, "is_default": values.get("is_default", False)}, checked,
                                      created_by=uuid.UUID(ctx.user_id) if ctx.user_id else None)

    async def update(self, pipeline_id: str, values: Mapping[Any, Any], mask: set[str] | None,
                     sent_stages: builtins.list[Mapping[str, Any]]) -> PipelineView:
        key = parse_id(pipeline_id)
        allowed = {"name", "description", "is_default", "stages"}
        if mask is not None:
            unknown = mask - allowed
            if unknown:
                raise InvalidArgument("unknown field in updateMask", violations=[
                    FieldViolation("updateMask", f"not a writable field: {n}") for n in sorted(unknown)])
        wanted = {k: v for k, v in values.items() if mask is None or k in mask}
        clean, problems = r.check_pipeline({k: v for k, v in wanted.items() if k in ("name", "description")})
        if problems:
            raise validation(problems)
        async with self.db.transaction() as conn:
            before = await self._view(conn, key, lock=True)
            preconditions.require_current(before.row["updated_at"])
            if sent_stages and (mask is None or "stages" in mask) and not _same_stages(before.stages, sent_stages):
                raise validation([FieldViolation("stages", "stages change through the stage endpoints "
                                                 "(add, update, delete, reorder)", "READ_ONLY")])
            if wanted.get("is_default") and not before.row["is_default"]:
                await conn.execute(update(pipelines).where(p_.is_default).values(is_default=False, updated_at=text("now()")))
                clean["is_default"] = True
            try:
                async with conn.begin_nested():
                    row = (await conn.execute(update(pipelines).where(p_.id == key).values(**clean, updated_at=text("now()"))
                                              .returning(*_PIPELINE.selected_columns))).mappings().one()
            except IntegrityError as exc:
                raise _conflict(exc) from None
            view = PipelineView(row, before.stages)
            await emit(conn, SCHEMA, "crm.pipelines.pipeline.updated", str(key), {"pipeline": view.public()})
        return view

    async def delete(self, pipeline_id: str) -> None:
        key = parse_id(pipeline_id)
        async with self.db.transaction() as conn:
            preconditions.require_current((await self._row(conn, key))["updated_at"])  # early, before asking deals
        if self.deals.deployed():
            count = await self.deals.count(pipeline_id=str(key))
            if count:
                raise FailedPrecondition(f"the pipeline still has {count} deal(s): move or delete them first",
                                         reason="PIPELINE_HAS_DEALS")
        async with self.db.transaction() as conn:
            before = await self._view(conn, key, lock=True)
            preconditions.require_current(before.row["updated_at"])
            rule_ids = select(rules.c.id).where(rules.c.pipeline_id == key)
            await conn.execute(delete(idle_rules).where(idle_rules.c.rule_id.in_(rule_ids)))
            await conn.execute(delete(pipelines).where(p_.id == key))
            if before.row["is_default"]:
                # The default moves to the oldest remaining pipeline, so deals always have a home.
                await conn.execute(text(
                    "UPDATE pipelines.pipelines SET is_default = true, updated_at = now() WHERE id = "
                    "(SELECT id FROM pipelines.pipelines ORDER BY created_at, id LIMIT 1)"))
            await emit(conn, SCHEMA, "crm.pipelines.pipeline.deleted", str(key), {"pipeline": before.public()})

    # --- stages --------------------------------------------------------------------------
    @staticmethod
    async def _write_order(conn: AsyncConnection, ordered: Sequence[uuid.UUID]) -> None:
        """Positions 0..n-1 in this order (the unique position constraint is checked at commit)."""
        await conn.execute(text(
            "UPDATE pipelines.stages s SET position = o.pos - 1, updated_at = now() "
            "FROM unnest(CAST(:ids AS uuid[])) WITH ORDINALITY AS o(id, pos) "
            "WHERE s.id = o.id AND s.position IS DISTINCT FROM o.pos - 1"), {"ids": list(ordered)})

    async def _stage(self, conn: AsyncConnection, pipeline_key: uuid.UUID, stage_key: uuid.UUID,
                     *, archived_too: bool = False) -> RowMapping:
        stmt = select(stages).where(s_.id == stage_key, s_.pipeline_id == pipeline_key)
        if not archived_too:
            stmt = stmt.where(s_.archived_at.is_(None))
        row = (await conn.execute(stmt.with_for_update())).mappings().first()
        if row is None:
            raise NotFound("stage not found")
        return row

    async def create_stage(self, pipeline_id: str, values: Mapping[Any, Any]) -> tuple[RowMapping, int]:
        key = parse_id(pipeline_id)
        clean, problems = r.check_stage(values)
        if problems:
            raise validation(problems)
        async with self.db.transaction() as conn:
            view = await self._view(conn, key, lock=True)
            problems = r.check_stage_set([*view.stages, clean])
            if problems:
                raise validation([FieldViolation("name" if p.code == "DUPLICATE" else "stages", p.message, p.code)
                                  for p in problems])
            order = [s["id"] for s in view.stages]
            index = min(clean.get("position", len(order)), len(order))
            new_id = uuid.uuid4()
            try:
                async with conn.begin_nested():
                    row = (await conn.execute(insert(stages).values(
                        id=new_id, tenant_id=uuid.UUID(context.tenant_id()), pipeline_id=key, name=clean["name"],
                        probability=clean["probability"], kind=clean["kind"], position=len(order))
                        .returning(stages))).mappings().one()
            except IntegrityError as exc:
                raise _conflict(exc) from None
            order.insert(index, new_id)
            await self._write_order(conn, order)
            await self._touch(conn, key)
            await emit(conn, SCHEMA, "crm.pipelines.stage.created", str(new_id),
                       {"pipelineId": str(key), "stage": stage_public(row, index)})
        return row, index

    async def update_stage(self, pipeline_id: str, stage_id: str, values: Mapping[Any, Any]) -> tuple[RowMapping, int]:
        key, skey = parse_id(pipeline_id), parse_id(stage_id, "stageId")
        clean, problems = r.check_stage(values, partial=True)
        if problems:
            raise validation(problems)
        async with self.db.transaction() as conn:
            view = await self._view(conn, key, lock=True)
            before = await self._stage(conn, key, skey)
            # A deal's status follows its stage's kind; changing it under deals would leave them wrong.
            kind_changes = "kind" in clean and clean["kind"] != before["kind"]
            if kind_changes and self.deals.deployed() and await self.deals.count(stage_id=str(skey)):
                raise FailedPrecondition("the stage has deals: its kind cannot change; move them first",
                                         reason="STAGE_HAS_DEALS")
            merged = [({**s, **clean} if s["id"] == skey else s) for s in view.stages]
            set_problems = [p for p in r.check_stage_set(merged) if p.code != "DUPLICATE"]
            if any(p.code == "DUPLICATE" for p in r.check_stage_set(merged)):
                set_problems.append(FieldViolation("name", "stage names must be unique in a pipeline", "DUPLICATE"))
            if set_problems:
                raise validation(set_problems)
            fields = {k: v for k, v in clean.items() if k in ("name", "probability", "kind")}
            try:
                async with conn.begin_nested():
                    row = (await conn.execute(update(stages).where(s_.id == skey).values(**fields, updated_at=text("now()"))
                                              .returning(stages))).mappings().one()
            except IntegrityError as exc:
                raise _conflict(exc) from None
            order = [s["id"] for s in view.stages]
            index = order.index(skey)
            if "position" in clean:
                order.remove(skey)
                index = min(clean["position"], len(order))
                order.insert(index, skey)
                await self._write_order(conn, order)
            await self._touch(conn, key)
            await emit(conn, SCHEMA, "crm.pipelines.stage.updated", str(skey),
                       {"pipelineId": str(key), "stage": stage_public(row, index)})
        return row, index

    async def delete_stage(self, pipeline_id: str, stage_id: str, move_to: str) -> tuple[int, PipelineView]:
        key, skey = parse_id(pipeline_id), parse_id(stage_id, "stageId")
        target: uuid.UUID | None = None
        if move_to:
            try:
                target = uuid.UUID(move_to)
            except ValueError:
                raise validation([FieldViolation("moveDealsTo", "must be a stage id of this pipeline")]) from None
        # 1. Archive: from now on the Deals service refuses moves into the stage.
        async with self.db.transaction() as conn:
            view = await self._view(conn, key, lock=True)
            stage = await self._stage(conn, key, skey, archived_too=True)
            if stage["archived_at"] is None:
                rest = [s for s in view.stages if s["id"] != skey]
                if not rest:
                    raise FailedPrecondition("a pipeline keeps at least one stage", reason="LAST_STAGE")
                if not any(s["kind"] == "open" for s in rest):
                    raise FailedPrecondition("a pipeline keeps at least one open stage", reason="OPEN_STAGE_REQUIRED")
            if target is not None and (target == skey or target not in {s["id"] for s in view.stages}):
                raise validation([FieldViolation("moveDealsTo", "must be another stage of this pipeline", "UNKNOWN_STAGE")])
            if stage["archived_at"] is None:
                await conn.execute(update(stages).where(s_.id == skey).values(
                    archived_at=text("now()"), position=-1 - stage["position"]))
                await self._touch(conn, key)  # the stage is gone from the pipeline's answer
        # 2. Move the stage's deals (or refuse when some remain and no target was named).
        moved = 0
        try:
            if self.deals.deployed():
                if target is not None:
                    moved = await self.deals.move_stage_deals(str(skey), str(target))
                else:
                    remaining = await self.deals.count(stage_id=str(skey))
                    if remaining:
                        raise FailedPrecondition(
                            f"the stage has {remaining} deal(s): name a stage to move them to (moveDealsTo)",
                            reason="STAGE_HAS_DEALS")
        except Exception:
            await self._restore(key, skey)
            raise
        # 3. Delete it; rules watching it stop (disabled, kept for the record).
        async with self.db.transaction() as conn:
            await conn.execute(delete(stages).where(s_.id == skey))
            view = await self._view(conn, key, lock=True)
            await self._write_order(conn, [s["id"] for s in view.stages])
            watching = rules.c.trigger["stage_id"].astext == str(skey)
            stopped = (await conn.execute(update(rules).where(rules.c.pipeline_id == key, watching)
                                          .values(enabled=False, updated_at=text("now()")).returning(rules.c.id))).scalars().all()
            if stopped:
                await conn.execute(delete(idle_rules).where(idle_rules.c.rule_id.in_(stopped)))
            await self._touch(conn, key)
            view = await self._view(conn, key)
            await emit(conn, SCHEMA, "crm.pipelines.stage.deleted", str(skey),
                       {"pipelineId": str(key), "stageId": str(skey), "movedTo": str(target or ""), "movedDeals": moved,
                        "disabledRuleIds": [str(x) for x in stopped]})
        return moved, view

    async def _restore(self, key: uuid.UUID, skey: uuid.UUID) -> None:
        """Undo an archive whose deletion could not go ahead: the stage returns to its place."""
        async with self.db.transaction() as conn:
            row = (await conn.execute(select(stages).where(s_.id == skey).with_for_update())).mappings().first()
            if row is None or row["archived_at"] is None:
                return
            view = await self._view(conn, key, lock=True)
            order = [s["id"] for s in view.stages]
            order.insert(min(-1 - row["position"], len(order)), skey)
            await conn.execute(update(stages).where(s_.id == skey).values(archived_at=None, position=len(order) + 1000))
            await self._write_order(conn, order)
            await self._touch(conn, key)

    async def reorder(self, pipeline_id: str, stage_ids: Sequence[str]) -> PipelineView:
        key = parse_id(pipeline_id)
        async with self.db.transaction() as conn:
            view = await self._view(conn, key, lock=True)
            current = [str(s["id"]) for s in view.stages]
            normalized = []
            for raw in stage_ids:
                try:
                    normalized.append(str(uuid.UUID(raw)))
                except ValueError:
                    normalized.append(raw)
            problems = r.reorder_problems(current, normalized)
            if problems:
                raise validation(problems)
            await self._write_order(conn, [uuid.UUID(x) for x in normalized])
            await self._touch(conn, key)
            view = await self._view(conn, key)
            await emit(conn, SCHEMA, "crm.pipelines.stages.reordered", str(key), {"pipeline": view.public()})
        return view

    @staticmethod
    async def _touch(conn: AsyncConnection, key: uuid.UUID) -> None:
        await conn.execute(update(pipelines).where(p_.id == key).values(updated_at=text("now()")))

    # --- automation rules ----------------------------------------------------------------
    async def _rule(self, conn: AsyncConnection, key: uuid.UUID, rule_key: uuid.UUID, *, lock: bool = False) -> RowMapping:
        stmt = select(rules).where(rules.c.id == rule_key, rules.c.pipeline_id == key)
        row = (await conn.execute(stmt.with_for_update() if lock else stmt)).mappings().first()
        if row is None:
            raise NotFound("automation rule not found")
        return row

    async def get_rule(self, pipeline_id: str, rule_id: str) -> RowMapping:
        async with self.db.transaction() as conn:
            return await self._rule(conn, parse_id(pipeline_id), parse_id(rule_id, "ruleId"))

    @staticmethod
    async def _index_idle(conn: AsyncConnection, row: Mapping[Any, Any]) -> None:
        """Keep the cross-tenant list of idle rules in step with the rule."""
        await conn.execute(delete(idle_rules).where(idle_rules.c.rule_id == row["id"]))
        trigger = row["trigger"]
        if row["enabled"] and trigger.get("event") == "stage_idle":
            await conn.execute(insert(idle_rules).values(rule_id=row["id"], tenant_id=row["tenant_id"],
                                                         stage_id=uuid.UUID(trigger["stage_id"]),
                                                         idle_hours=trigger["idle_hours"]))

    async def create_rule(self, pipeline_id: str, values: Mapping[Any, Any]) -> RowMapping:
        key = parse_id(pipeline_id)
        ctx = context.current()
        async with self.db.transaction() as conn:
            view = await self._view(conn, key)
            clean, problems = r.check_rule(values, {str(s["id"]) for s in view.stages})
            if problems:
                raise validation(problems)
            row = (await conn.execute(insert(rules).values(
                id=uuid.uuid4(), tenant_id=uuid.UUID(ctx.tenant_id), pipeline_id=key, **clean,
                created_by=uuid.UUID(ctx.user_id) if ctx.user_id else None).returning(rules))).mappings().one()
            await self._index_idle(conn, row)
            await emit(conn, SCHEMA, "crm.pipelines.automation_rule.created", str(row["id"]), {"rule": rule_public(row)})
        return row

    async def update_rule(self, pipeline_id: str, rule_id: str, values: Mapping[Any, Any]) -> RowMapping:
        key, rkey = parse_id(pipeline_id), parse_id(rule_id, "ruleId")
        async with self.db.transaction() as conn:
            view = await self._view(conn, key)
            await self._rule(conn, key, rkey, lock=True)
            clean, problems = r.check_rule(values, {str(s["id"]) for s in view.stages})
            if problems:
                raise validation(problems)
            row = (await conn.execute(update(rules).where(rules.c.id == rkey).values(**clean, updated_at=text("now()"))
                                      .returning(rules))).mappings().one()
            await self._index_idle(conn, row)
            await emit(conn, SCHEMA, "crm.pipelines.automation_rule.updated", str(rkey), {"rule": rule_public(row)})
        return row

    async def delete_rule(self, pipeline_id: str, rule_id: str) -> None:
        key, rkey = parse_id(pipeline_id), parse_id(rule_id, "ruleId")
        async with self.db.transaction() as conn:
            row = await self._rule(conn, key, rkey, lock=True)
            await conn.execute(delete(idle_rules).where(idle_rules.c.rule_id == rkey))
            await conn.execute(delete(rules).where(rules.c.id == rkey))
            await emit(conn, SCHEMA, "crm.pipelines.automation_rule.deleted", str(rkey), {"rule": rule_public(row)})

    async def list_rules(self, pipeline_id: str, p: listing.ListParams) -> tuple[listing.Page, dict[uuid.UUID, RowMapping]]:
        """A page of rules and each one's latest run (one query for all of them)."""
        key = parse_id(pipeline_id)
        spec = listing.ListSpec(fields={"createdAt": listing.Field(rules.c.created_at, "time", sortable=True)},
                                id_column=rules.c.id, default_sort="createdAt")
        async with self.db.transaction() as conn:
            await self._row(conn, key)
            page = await listing.fetch_page(conn, select(rules), spec, p, [rules.c.pipeline_id == key])
            ids = [row._mapping["id"] for row in page.rows]
            last: dict[uuid.UUID, RowMapping] = {}
            if ids:
                found = (await conn.execute(select(runs).where(runs.c.rule_id.in_(ids)).distinct(runs.c.rule_id)
                                            .order_by(runs.c.rule_id, runs.c.started_at.desc()))).mappings().all()
                last = {row["rule_id"]: row for row in found}
            return page, last

    async def last_run(self, rule_key: uuid.UUID) -> RowMapping | None:
        async with self.db.transaction() as conn:
            return (await conn.execute(select(runs).where(runs.c.rule_id == rule_key).order_by(runs.c.started_at.desc())
                                       .limit(1))).mappings().first()


def _same_stages(current: Sequence[Mapping[Any, Any]], sent: Sequence[Mapping[Any, Any]]) -> bool:
    """Whether stages sent back with a pipeline update are the ones it has (read, then written)."""
    if len(current) != len(sent):
        return False
    for i, (have, got) in enumerate(zip(current, sent, strict=True)):
        if str(have["id"]) != got.get("id") or have["name"] != got.get("name"):
            return False
        if got.get("probability") is not None and got["probability"] != have["probability"]:
            return False
        if got.get("kind") and got["kind"] != have["kind"]:
            return False
        if got.get("position") is not None and got["position"] != i:
            return False
    return True
