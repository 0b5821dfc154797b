"""Assignment rules and auto-assignment: who owns a lead nobody owns.

Rules apply by priority; the first active rule whose conditions (sources, territories,
countries) match takes the lead and gives it, round robin, to the next of its assignees whose
open leads are below the rule's capacity. Assignees are a team's members (asked of the users
service) or, where that service is not deployed or no team is wanted, user ids listed in the
rule. The rule rows are locked while choosing, so parallel assignments continue one rotation.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.kernel import context, listing
from services.kernel.db import Database
from services.kernel.errors import (
    DomainError,
    FieldViolation,
    InvalidArgument,
    NotFound,
    Unavailable,
    from_database,
    validation,
)
from services.kernel.events import emit
from services.leads import assignment
from services.leads.domain import COLUMNS, SELECT, frozen, parse_id
from services.leads.peers import USERS, Peers
from services.leads.tables import OPEN_STATUSES, SCHEMA, assignment_rules, leads

MAX_ASSIGN = 500
MAX_RULE_USERS = 200
r = assignment_rules.c
c = leads.c


@dataclass
class AssignOutcome:
    index: int
    id: str
    owner_id: str = ""
    rule_id: str = ""
    errors: list[FieldViolation] = field(default_factory=list)


def _string_list(values: Sequence[str], name: str, problems: list[FieldViolation], *, upper: bool = False) -> list[str]:
    out: list[str] = []
    for i, raw in enumerate(values):
        value = " ".join(str(raw).split())
        value = value.upper() if upper else value.lower()
        if not value or len(value) > 100:
            problems.append(FieldViolation(f"{name}[{i}]", "must be 1 to 100 characters"))
        elif upper and (len(value) != 2 or not value.isalpha()):
            problems.append(FieldViolation(f"{name}[{i}]", "must be an ISO 3166-1 alpha-2 code"))
        elif value not in out:
            out.append(value)
    if len(out) > 100:
        problems.append(FieldViolation(name, "at most 100 values", "TOO_MANY"))
    return out


class Routing:
    def __init__(self, db: Database, peers: Peers) -> None:
        self.db, self.peers = db, peers

    # --- rules ---------------------------------------------------------------------------
    async def _check_rule(self, values: Mapping[Any, Any]) -> dict[str, Any]:
        problems: list[FieldViolation] = []
        name = " ".join(str(values.get("name", "")).split())
        if not name or len(name) > 200:
            problems.append(FieldViolation("name", "a rule needs a name of at most 200 characters", "REQUIRED" if not name else "TOO_LONG"))
        priority = int(values.get("priority", 0))
        if not 0 <= priority <= 10_000:
            problems.append(FieldViolation("priority", "must be from 0 to 10000", "OUT_OF_RANGE"))
        capacity = int(values.get("max_open_leads", 0))
        if not 0 <= capacity <= 100_000:
            problems.append(FieldViolation("maxOpenLeads", "must be from 0 (no limit) to 100000", "OUT_OF_RANGE"))
        team_id = None
        if values.get("team_id"):
            try:
                team_id = uuid.UUID(str(values["team_id"]))
            except ValueError:
                problems.append(FieldViolation("teamId", "must be a UUID"))
        users: list[uuid.UUID] = []
        for i, raw in enumerate(values.get("user_ids", [])):
            try:
                user = uuid.UUID(str(raw))
            except ValueError:
                problems.append(FieldViolation(f"userIds[{i}]", "must be a UUID"))
                continue
            if user not in users:
                users.append(user)
        if len(users) > MAX_RULE_USERS:
            problems.append(FieldViolation("userIds", f"at most {MAX_RULE_USERS} users", "TOO_MANY"))
        if not team_id and not users and not any(p.field.startswith(("teamId", "userIds")) for p in problems):
            problems.append(FieldViolation("userIds", "name a team (teamId) or users (userIds) to assign to", "REQUIRED"))
        clean = {
            "name": name, "priority": priority,
            "sources": _string_list(values.get("sources", []), "sources", problems),
            "territories": _string_list(values.get("territories", []), "territories", problems),
            "countries": _string_list(values.get("countries", []), "countries", problems, upper=True),
            "team_id": team_id, "user_ids": users, "max_open_leads": capacity,
        }
        if "active" in values:
            clean["active"] = bool(values["active"])
        if problems:
            raise validation(problems)
        await self._check_assignees(team_id, users)
        return clean

    async def _check_assignees(self, team_id: uuid.UUID | None, users: list[uuid.UUID]) -> None:
        """The team and users must exist in the tenant; without the users service, a team
        cannot be used at all and listed user ids are taken as given."""
        deployed = self.peers.deployed(USERS)
        if team_id and not deployed:
            raise Unavailable("teams come from the users service, which is not deployed: list userIds instead",
                              reason="SERVICE_NOT_DEPLOYED", metadata={"service": USERS})
        if not deployed:
            return
        problems = []
        if team_id:
            try:
                await self.peers.team_members(str(team_id), as_service=False)
            except NotFound:
                problems.append(FieldViolation("teamId", "no such team", "NOT_FOUND"))
        for i, user in enumerate(users):
            if not await self.peers.user_exists(str(user)):
                problems.append(FieldViolation(f"userIds[{i}]", "no such user", "NOT_FOUND"))
        if problems:
            raise validation(problems)

    async def _rule(self, conn: AsyncConnection, rule_id: uuid.UUID) -> RowMapping:
        row = (await conn.execute(select(assignment_rules).where(r.id == rule_id))).mappings().first()
        if row is None:
            raise NotFound("assignment rule not found")
        return row

    async def create_rule(self, values: Mapping[Any, Any]) -> RowMapping:
        clean = await self._check_rule(values)
        async with self.db.transaction() as conn:
            row = (await conn.execute(insert(assignment_rules).values(
                id=uuid.uuid4(), tenant_id=uuid.UUID(context.tenant_id()), **clean).returning(assignment_rules))).mappings().one()
            await emit(conn, SCHEMA, "crm.leads.assignment_rule.created", str(row["id"]), {"rule": _rule_public(row)})
        return row

    async def get_rule(self, rule_id: str) -> RowMapping:
        async with self.db.transaction() as conn:
            return await self._rule(conn, parse_id(rule_id))

    async def list_rules(self, p: listing.ListParams) -> listing.Page:
        spec = listing.ListSpec(fields={"priority": listing.Field(r.priority, "int", sortable=True),
                                        "createdAt": listing.Field(r.created_at, "time", sortable=True)},
                                id_column=r.id, default_sort="priority,createdAt")
        async with self.db.transaction() as conn:
            return await listing.fetch_page(conn, select(assignment_rules), spec, p)

    async def update_rule(self, rule_id: str, values: Mapping[Any, Any]) -> RowMapping:
        key = parse_id(rule_id)
        clean = await self._check_rule(values)
        async with self.db.transaction() as conn:
            await self._rule(conn, key)
            row = (await conn.execute(update(assignment_rules).where(r.id == key)
                                      .values(**clean, updated_at=text("now()")).returning(assignment_rules))).mappings().one()
            await emit(conn, SCHEMA, "crm.leads.assignment_rule.updated", str(key), {"rule": _rule_public(row)})
        return row

    async def delete_rule(self, rule_id: str) -> None:
        key = parse_id(rule_id)
        async with self.db.transaction() as conn:
            row = (await conn.execute(delete(assignment_rules).where(r.id == key).returning(assignment_rules))).mappings().first()
            if row is None:
                raise NotFound("assignment rule not found")
            await emit(conn, SCHEMA, "crm.leads.assignment_rule.deleted", str(key), {"rule": _rule_public(row)})

    # --- assignment ----------------------------------------------------------------------
    async def assign(self, ids: Sequence[str], *, dry_run: bool, reassign: bool,
                     as_service: bool = False) -> builtins.list[AssignOutcome]:
        if len(ids) > MAX_ASSIGN:
            raise InvalidArgument("bad batch size", violations=[FieldViolation("ids", f"send at most {MAX_ASSIGN} ids", "OUT_OF_RANGE")])
        if reassign and not ids:
            raise validation([FieldViolation("reassign", "reassigning needs the lead ids", "REQUIRED")])
        outcomes: list[AssignOutcome] = []
        keys: list[tuple[int, uuid.UUID]] = []
        for index, raw in enumerate(ids):
            try:
                keys.append((index, parse_id(raw, f"ids[{index}]")))
            except DomainError as err:
                outcomes.append(AssignOutcome(index, raw, errors=err.violations))
        async with self.db.transaction() as conn:
            rules = (await conn.execute(select(assignment_rules).where(r.active)
                                        .order_by(r.priority, r.created_at, r.id))).mappings().all()
            if ids:
                found = {row["id"]: row for row in (await conn.execute(
                    SELECT.where(c.id.in_([k for _, k in keys])))).mappings().all()}
                targets = [(i, k, found.get(k)) for i, k in keys]
            else:
                rows = (await conn.execute(SELECT.where(c.owner_id.is_(None), c.status.in_(OPEN_STATUSES))
                                           .order_by(c.created_at, c.id).limit(MAX_ASSIGN))).mappings().all()
                targets = [(i, row["id"], row) for i, row in enumerate(rows)]
        # Team members come from the users service: asked once per rule, outside any transaction.
        candidates: dict[uuid.UUID, list[str]] = {}
        problems: dict[uuid.UUID, FieldViolation] = {}
        for rule in rules:
            if not any(row is not None and assignment.matches(_view(rule), row) for _, _, row in targets):
                continue
            candidates[rule["id"]], problem = await self._assignees(rule, as_service=as_service)
            if problem:
                problems[rule["id"]] = problem
        async with self.db.transaction() as conn:
            locked = {row["id"]: dict(row) for row in (await conn.execute(
                select(assignment_rules).where(r.id.in_(list(candidates))).with_for_update())).mappings().all()}
            everyone = sorted({u for users in candidates.values() for u in users})
            load: dict[str, int] = {}
            if everyone:
                counted = await conn.execute(select(c.owner_id, func.count()).where(
                    c.owner_id.in_([uuid.UUID(u) for u in everyone]), c.status.in_(OPEN_STATUSES)).group_by(c.owner_id))
                load = {str(owner): int(n) for owner, n in counted.all()}
            for index, key, row in targets:
                outcome = AssignOutcome(index, str(key))
                outcomes.append(outcome)
                if row is None:
                    outcome.errors = [FieldViolation(f"ids[{index}]", "lead not found", "NOT_FOUND")]
                    continue
                refusal = frozen(row)
                if refusal is not None:
                    outcome.errors = [FieldViolation(f"ids[{index}]", refusal.message, refusal.reason)]
                    continue
                if row["owner_id"] is not None and not reassign:
                    outcome.errors = [FieldViolation(f"ids[{index}]", "the lead has an owner (use reassign)", "ALREADY_ASSIGNED")]
                    continue
                chosen, why = None, FieldViolation(f"ids[{index}]", "no active rule matches the lead", "NO_MATCHING_RULE")
                for rule in rules:
                    if not assignment.matches(_view(rule), row):
                        continue
                    if rule["id"] in problems:
                        why = FieldViolation(f"ids[{index}]", problems[rule["id"]].message, problems[rule["id"]].code)
                        continue
                    state = locked[rule["id"]]
                    last = str(state["last_assignee"]) if state["last_assignee"] else None
                    pick = assignment.next_assignee(candidates[rule["id"]], last, load, rule["max_open_leads"])
                    if pick is None:
                        why = FieldViolation(f"ids[{index}]", "every assignee of the matching rule is at capacity", "NO_CAPACITY")
                        continue
                    chosen = (rule, pick)
                    break
                if chosen is None:
                    outcome.errors = [why]
                    continue
                rule, pick = chosen
                outcome.owner_id, outcome.rule_id = pick, str(rule["id"])
                locked[rule["id"]]["last_assignee"] = uuid.UUID(pick)
                if row["status"] in OPEN_STATUSES:
                    load[pick] = load.get(pick, 0) + 1
                if row["owner_id"] is not None and str(row["owner_id"]) in load and row["status"] in OPEN_STATUSES:
                    load[str(row["owner_id"])] -= 1
                if dry_run:
                    continue
                try:
                    async with conn.begin_nested():
                        saved = (await conn.execute(update(leads).where(c.id == key)
                                                    .values(owner_id=uuid.UUID(pick), updated_at=text("now()"))
                                                    .returning(*COLUMNS))).mappings().one()
                        await emit(conn, SCHEMA, "crm.leads.lead.assigned", str(key), {
                            "leadId": str(key), "ownerId": pick, "previousOwnerId": str(row["owner_id"] or ""),
                            "ruleId": str(rule["id"]), "by": "rules", "lead": {"id": str(saved["id"])}})
                except DBAPIError as exc:
                    mapped = from_database(exc)
                    if mapped is None:
                        raise
                    outcome.owner_id, outcome.rule_id = "", ""
                    outcome.errors = [FieldViolation(f"ids[{index}]", mapped.message, mapped.reason)]
            if not dry_run:
                for rule_id, state in locked.items():
                    await conn.execute(update(assignment_rules).where(r.id == rule_id)
                                       .values(last_assignee=state["last_assignee"]))
        return sorted(outcomes, key=lambda o: o.index)

    async def _assignees(self, rule: RowMapping, *, as_service: bool) -> tuple[list[str], FieldViolation | None]:
        if rule["team_id"] is None:
            return [str(u) for u in rule["user_ids"]], None
        if not self.peers.deployed(USERS):
            if rule["user_ids"]:
                return [str(u) for u in rule["user_ids"]], None
            return [], FieldViolation("teamId", "the users service is not deployed", "SERVICE_NOT_DEPLOYED")
        try:
            return await self.peers.team_members(str(rule["team_id"]), as_service=as_service), None
        except DomainError as err:
            return [], FieldViolation("teamId", f"team members unavailable: {err.message}", err.reason)


def _view(rule: Mapping[Any, Any]) -> assignment.RuleView:
    return assignment.RuleView(id=str(rule["id"]), sources=tuple(rule["sources"]), territories=tuple(rule["territories"]),
                               countries=tuple(rule["countries"]), max_open_leads=int(rule["max_open_leads"]))


def _rule_public(row: RowMapping) -> dict[str, Any]:
    return {"id": str(row["id"]), "name": row["name"], "priority": row["priority"], "active": row["active"],
            "sources": list(row["sources"]), "territories": list(row["territories"]), "countries": list(row["countries"]),
            "teamId": str(row["team_id"] or ""), "userIds": [str(u) for u in row["user_ids"]],
            "maxOpenLeads": row["max_open_leads"]}
