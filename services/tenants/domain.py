"""The tenants domain: operators' tenant lifecycle, a tenant admin's own settings, usage and billing.

No gRPC here. Two ways in, and they never mix:
- platform work (operators, `platform:` permissions): reads across tenants go through
  `db.transaction(platform=True)` (the read-only `platform_read` policies); changes to one tenant
  run in a transaction scoped to that tenant, so row-level security still binds them to it;
- tenant work (`tenants:` permissions): always the caller's own tenant; any other id is 404.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.auth import identity, passwords
from services.auth.domain import EMAIL_RE, normalize_email
from services.auth.plans import CURRENCY, FEATURES, LIMITS, PLANS, Plan
from services.kernel import context, listing
from services.kernel.authn import RevokedSessions
from services.kernel.db import Database
from services.kernel.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    validation,
)
from services.kernel.events import emit
from services.kernel.settings import Settings
from services.tenants import billing, rules
from services.tenants.tables import SCHEMA, tenant_settings, tenants

# The installation's own tenant, home of the operators. A fixed id, so the operator CLI finds it
# without reading across tenants.
PLATFORM_TENANT_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
STATUSES = ("active", "suspended", "deleted")
MIB = 1024 * 1024

t, s = tenants.c, tenant_settings.c
LIST_SPEC = listing.ListSpec(
    fields={
        "id": listing.Field(t.id, "uuid"),
        "name": listing.Field(t.name, "ci_text", sortable=True),
        "plan": listing.Field(t.plan, "text", sortable=True),
        "status": listing.Field(t.status, "text", sortable=True),
        "createdAt": listing.Field(t.created_at, "time", sortable=True),
        "updatedAt": listing.Field(t.updated_at, "time", sortable=True),
    },
    id_column=t.id,
    search_column=func.lower(t.name),
    default_sort="-createdAt",
)
_TENANT = select(t.id, t.name, t.plan, t.status, t.created_at, t.updated_at,
                 func.coalesce(s.status_reason, "").label("status_reason"), s.suspended_at,
                 s.deleted_at).select_from(tenants.outerjoin(tenant_settings, s.tenant_id == t.id))


def parse_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument("id must be a UUID", violations=[FieldViolation("id", "must be a UUID")]) from None


def plan_of(key: str) -> Plan:
    found = PLANS.get(key)
    if found is None:  # a plan key outside the catalogue would be a data error: fail loudly
        raise FailedPrecondition(f"unknown plan {key!r} on record", reason="UNKNOWN_PLAN")
    return found


def requested_plan(key: str, field: str = "plan") -> Plan:
    found = PLANS.get(key.strip().lower())
    if found is None:
        raise validation([FieldViolation(field, f"unknown plan; one of {', '.join(PLANS)}", "UNKNOWN_PLAN")])
    return found


def public(row: RowMapping) -> dict[str, Any]:
    """A tenant as events carry it."""
    return {"id": str(row["id"]), "name": row["name"], "plan": row["plan"], "status": row["status"]}


@dataclass(frozen=True)
class Usage:
    period_start: dt.datetime
    period_end: dt.datetime
    users: int
    records: int
    records_by_type: dict[str, int]
    storage_bytes: int
    api_calls: int
    api_calls_today: int

    def used(self, limit_key: str) -> int:
        return {"users": self.users, "records": self.records, "storageMb": math.ceil(self.storage_bytes / MIB),
                "apiCallsPerMonth": self.api_calls}[limit_key]


@dataclass(frozen=True)
class PlanChanged:
    tenant: RowMapping
    previous_plan: str
    proration: billing.Line
    invoice: billing.Draft


class TenantsDomain:
    def __init__(self, db: Database, settings: Settings, revoked: RevokedSessions) -> None:
        self.db = db
        self.settings = settings
        self.revoked = revoked

    # --- shared reads ---------------------------------------------------------------------
    @staticmethod
    async def _tenant(conn: AsyncConnection, tenant_id: uuid.UUID, *, lock: bool = False) -> RowMapping:
        stmt = _TENANT.where(t.id == tenant_id)
        row = (await conn.execute(stmt.with_for_update(of=tenants) if lock else stmt)).mappings().first()
        if row is None:
            raise NotFound("tenant not found")
        return row

    @staticmethod
    def _own(tenant_id: str) -> uuid.UUID:
        """The caller's own tenant; another id answers 404, as if it did not exist."""
        key = parse_id(tenant_id)
        if str(key) != context.tenant_id():
            raise NotFound("tenant not found")
        return key

    @staticmethod
    async def _settings(conn: AsyncConnection, tenant_id: uuid.UUID) -> RowMapping | None:
        return (await conn.execute(text("SELECT * FROM auth.tenant_settings WHERE tenant_id = :t"),
                                   {"t": tenant_id})).mappings().first()

    @staticmethod
    async def _touch_settings(conn: AsyncConnection, tenant_id: uuid.UUID) -> None:
        await conn.execute(text("INSERT INTO auth.tenant_settings (tenant_id) VALUES (:t) ON CONFLICT DO NOTHING"),
                           {"t": tenant_id})

    @staticmethod
    async def _seats(conn: AsyncConnection, tenant_id: uuid.UUID, now: dt.datetime) -> int:
        """Active users now; also raises the period's peak, on which seats are billed."""
        seats = int((await conn.execute(text("SELECT count(*) FROM auth.users WHERE active"))).scalar_one())
        await conn.execute(
            text("INSERT INTO auth.seat_peaks (tenant_id, period_start, seats) VALUES (:t, :p, :n) "
                 "ON CONFLICT (tenant_id, period_start) DO UPDATE SET seats = GREATEST(auth.seat_peaks.seats, :n)"),
            {"t": tenant_id, "p": billing.period_of(now)[0], "n": seats},
        )
        return seats

    # --- operators ------------------------------------------------------------------------
    async def create_tenant(self, *, name: str, plan: str, email: str, password: str, first_name: str,
                            last_name: str) -> tuple[RowMapping, RowMapping]:
        email = normalize_email(email)
        problems = []
        if not name.strip() or len(name) > 200:
            problems.append(FieldViolation("name", "must be 1 to 200 characters"))
        if plan and plan.strip().lower() not in PLANS:
            problems.append(FieldViolation("plan", f"unknown plan; one of {', '.join(PLANS)}", "UNKNOWN_PLAN"))
        if not EMAIL_RE.match(email) or len(email) > 254:
            problems.append(FieldViolation("adminEmail", "must be a valid email address"))
        weak = passwords.weakness(password)
        if weak:
            problems.append(FieldViolation("adminPassword", f"password {weak}", "WEAK_PASSWORD"))
        for field, value in (("adminFirstName", first_name), ("adminLastName", last_name)):
            if len(value) > 100:
                problems.append(FieldViolation(field, "must be at most 100 characters", "TOO_LONG"))
        if problems:
            raise validation(problems)
        plan_key = plan.strip().lower() or "standard"
        password_hash = await passwords.hash_password(password)
        tenant_id = uuid.uuid4()
        async with self.db.transaction(tenant_id=str(tenant_id)) as conn:
            user = await identity.create_tenant_with_admin(
                conn, tenant_id=tenant_id, name=name.strip(), plan=plan_key, email=email,
                password_hash=password_hash, first_name=first_name, last_name=last_name,
                event_type="crm.tenants.tenant.created",
            )
            return await self._tenant(conn, tenant_id), user

    async def list_tenants(self, p: listing.ListParams, status: str, plan: str) -> listing.Page:
        problems = []
        if status and status not in STATUSES:
            problems.append(FieldViolation("status", f"must be one of {', '.join(STATUSES)}"))
        if plan and plan not in PLANS:
            problems.append(FieldViolation("plan", f"must be one of {', '.join(PLANS)}"))
        if problems:
            raise InvalidArgument("invalid filter", violations=problems)
        where = [t.status == status] if status else [t.status != "deleted"]
        if plan:
            where.append(t.plan == plan)
        async with self.db.transaction(tenant_id="", platform=True) as conn:
            return await listing.fetch_page(conn, _TENANT, LIST_SPEC, p, where)

    async def get_tenant(self, tenant_id: str) -> RowMapping:
        """Operators read any tenant; a tenant's own users with `tenants:read` read theirs."""
        ctx = context.current()
        key = parse_id(tenant_id)
        if ctx.can("platform:tenants.read"):
            async with self.db.transaction(tenant_id="", platform=True) as conn:
                return await self._tenant(conn, key)
        if not ctx.can("tenants:read"):
            raise PermissionDenied("permission 'tenants:read' required", reason="MISSING_PERMISSION")
        async with self.db.transaction() as conn:
            return await self._tenant(conn, self._own(tenant_id))

    async def update_tenant(self, tenant_id: str, *, name: str, plan: str, status: str, reason: str) -> RowMapping:
        key = parse_id(tenant_id)
        problems = []
        if name and len(name.strip()) > 200:
            problems.append(FieldViolation("name", "must be 1 to 200 characters"))
        if status and status not in ("active", "suspended"):
            problems.append(FieldViolation("status", "must be active or suspended (DELETE removes a tenant)"))
        if len(reason) > 500:
            problems.append(FieldViolation("statusReason", "must be at most 500 characters", "TOO_LONG"))
        if problems:
            raise validation(problems)
        if plan:
            await self.change_plan(str(key), plan, operator=True)
        async with self.db.transaction(tenant_id=str(key)) as conn:
            row = await self._tenant(conn, key, lock=True)
            if row["status"] == "deleted":
                raise FailedPrecondition("the tenant is deleted", reason="TENANT_DELETED")
            if name.strip() and name.strip() != row["name"]:
                await conn.execute(text("UPDATE auth.tenants SET name = :n, updated_at = now() WHERE id = :t"),
                                   {"n": name.strip(), "t": key})
                await emit(conn, SCHEMA, "crm.tenants.tenant.updated", str(key),
                           {"tenant": {**public(row), "name": name.strip()},
                            "changes": {"name": {"from": row["name"], "to": name.strip()}}}, tenant_id=str(key))
            if status and status != row["status"]:
                await self._set_status(conn, row, status, reason)
            elif reason and status == row["status"]:
                await self._touch_settings(conn, key)
                await conn.execute(text("UPDATE auth.tenant_settings SET status_reason = :r WHERE tenant_id = :t"),
                                   {"r": reason, "t": key})
            return await self._tenant(conn, key)

    async def delete_tenant(self, tenant_id: str) -> None:
        """Soft delete: the rows stay (other services purge on `crm.tenants.tenant.deleted`),
        nobody of the tenant can sign in, and every token they hold stops working now."""
        key = parse_id(tenant_id)
        async with self.db.transaction(tenant_id=str(key)) as conn:
            row = await self._tenant(conn, key, lock=True)
            if row["status"] != "deleted":
                await self._set_status(conn, row, "deleted", "")

    async def _set_status(self, conn: AsyncConnection, row: RowMapping, status: str, reason: str) -> None:
        key = row["id"]
        if key == PLATFORM_TENANT_ID:
            raise FailedPrecondition("the platform tenant cannot be suspended or deleted", reason="PLATFORM_TENANT")
        await conn.execute(text("UPDATE auth.tenants SET status = :s, updated_at = now() WHERE id = :t"),
                           {"s": status, "t": key})
        await self._touch_settings(conn, key)
        await conn.execute(
            text("UPDATE auth.tenant_settings SET status_reason = :r, updated_at = now(), "
                 "suspended_at = CASE WHEN :s = 'suspended' THEN now() "
                 "                    WHEN :s = 'active' THEN NULL ELSE suspended_at END, "
                 "deleted_at = CASE WHEN :s = 'deleted' THEN now() ELSE deleted_at END "
                 "WHERE tenant_id = :t"),
            {"r": reason, "s": status, "t": key},
        )
        if status in ("suspended", "deleted"):
            # End every session and access token of the tenant's users, in every service.
            users = (await conn.execute(text("SELECT id FROM auth.users"))).scalars().all()
            before = time.time()
            until = before + self.settings.access_token_ttl_seconds + 60
            for user_id in users:
                await identity.revoke_user_tokens(conn, self.settings, user_id=str(user_id),
                                                  reason=f"tenant_{status}", end_sessions=True)
                self.revoked.add_user(str(user_id), before, until)  # this process: at once
        action = {"active": "reactivated", "suspended": "suspended", "deleted": "deleted"}[status]
        await emit(conn, SCHEMA, f"crm.tenants.tenant.{action}", str(key),
                   {"tenant": {**public(row), "status": status}, "reason": reason}, tenant_id=str(key))

    # --- config ---------------------------------------------------------------------------
    async def get_config(self, tenant_id: str) -> dict[str, Any]:
        async with self.db.transaction() as conn:
            key = self._own(tenant_id)
            return await self._config(conn, key)

    async def _config(self, conn: AsyncConnection, key: uuid.UUID) -> dict[str, Any]:
        row = await self._tenant(conn, key)
        settings = await self._settings(conn, key)
        stored = dict(settings["config"]) if settings else {}
        config = {**rules.CONFIG_DEFAULTS, **stored, "name": row["name"]}
        config["branding"] = dict(stored.get("branding") or {})
        config["updatedAt"] = settings["updated_at"] if settings else row["updated_at"]
        return config

    async def update_config(self, tenant_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        clean, problems = rules.check_config(changes)
        if problems:
            raise validation(problems)
        async with self.db.transaction() as conn:
            key = self._own(tenant_id)
            before = await self._config(conn, key)
            name = clean.pop("name", None)
            stored = {k: v for k, v in before.items() if k in rules.CONFIG_DEFAULTS}
            if "branding" in clean:
                clean["branding"] = {**stored.get("branding", {}), **clean["branding"]}
            stored.update(clean)
            encoded = json.dumps(stored)
            if len(encoded.encode()) > rules.MAX_CONFIG_BYTES:
                raise validation([FieldViolation("config", f"at most {rules.MAX_CONFIG_BYTES} bytes", "TOO_LARGE")])
            await self._touch_settings(conn, key)
            await conn.execute(text("UPDATE auth.tenant_settings SET config = CAST(:c AS jsonb), updated_at = now() "
                                    "WHERE tenant_id = :t"), {"c": encoded, "t": key})
            if name is not None and name != before["name"]:
                await conn.execute(text("UPDATE auth.tenants SET name = :n, updated_at = now() WHERE id = :t"),
                                   {"n": name, "t": key})
            after = await self._config(conn, key)
            diff = {k: {"from": before.get(k), "to": after.get(k)} for k in after
                    if k != "updatedAt" and before.get(k) != after.get(k)}
            if diff:
                await emit(conn, SCHEMA, "crm.tenants.config.changed", str(key), {"changes": diff})
            return after

    # --- features and limits --------------------------------------------------------------
    async def get_features(self, tenant_id: str) -> tuple[Plan, list[dict[str, Any]]]:
        async with self.db.transaction() as conn:
            return await self._features(conn, self._own(tenant_id))

    async def _features(self, conn: AsyncConnection, key: uuid.UUID) -> tuple[Plan, list[dict[str, Any]]]:
        plan = plan_of((await self._tenant(conn, key))["plan"])
        settings = await self._settings(conn, key)
        chosen = dict(settings["features"]) if settings else {}
        return plan, [{"key": k, "description": d, "included": k in plan.features,
                       "enabled": k in plan.features and bool(chosen.get(k, True))} for k, d in FEATURES.items()]

    async def update_features(self, tenant_id: str, changes: Mapping[str, bool]) -> tuple[Plan, list[dict[str, Any]]]:
        async with self.db.transaction() as conn:
            key = self._own(tenant_id)
            row = await self._tenant(conn, key, lock=True)
            plan = plan_of(row["plan"])
            problems = rules.check_features(changes, plan)
            if problems:
                raise validation(problems)
            await self._touch_settings(conn, key)
            await conn.execute(
                text("UPDATE auth.tenant_settings SET features = features || CAST(:f AS jsonb), updated_at = now() "
                     "WHERE tenant_id = :t"), {"f": json.dumps(dict(changes)), "t": key})
            await emit(conn, SCHEMA, "crm.tenants.features.changed", str(key), {"changes": dict(changes)})
            return await self._features(conn, key)

    async def get_limits(self, tenant_id: str) -> tuple[Plan, list[dict[str, Any]]]:
        async with self.db.transaction() as conn:
            key = self._own(tenant_id)
            return await self._limits(conn, key, await self._usage(conn, key))

    async def _limits(self, conn: AsyncConnection, key: uuid.UUID, usage: Usage) -> tuple[Plan, list[dict[str, Any]]]:
        plan = plan_of((await self._tenant(conn, key))["plan"])
        settings = await self._settings(conn, key)
        chosen = dict(settings["limits"]) if settings else {}
        return plan, [{"key": k, "value": min(int(chosen.get(k) or plan.limits[k]), plan.limits[k]),
                       "plan_maximum": plan.limits[k], "used": usage.used(k)} for k in LIMITS]

    async def update_limits(self, tenant_id: str, changes: Mapping[str, int]) -> tuple[Plan, list[dict[str, Any]]]:
        async with self.db.transaction() as conn:
            key = self._own(tenant_id)
            row = await self._tenant(conn, key, lock=True)
            plan = plan_of(row["plan"])
            problems = rules.check_limits(changes, plan)
            usage = await self._usage(conn, key)
            for k, value in changes.items():
                # A cap below what is already used could never be met; API calls may be capped at once.
                if k in LIMITS and k != "apiCallsPerMonth" and 0 < value < usage.used(k):
                    problems.append(FieldViolation(f"limits.{k}", f"below current use of {usage.used(k)}",
                                                   "BELOW_USAGE"))
            if problems:
                raise validation(problems)
            await self._touch_settings(conn, key)
            # 0 removes the tenant's own limit: the plan's maximum applies again.
            await conn.execute(
                text("UPDATE auth.tenant_settings SET limits = (limits || CAST(:set AS jsonb)) - CAST(:drop AS text[]), "
                     "updated_at = now() WHERE tenant_id = :t"),
                {"set": json.dumps({k: v for k, v in changes.items() if v}),
                 "drop": [k for k, v in changes.items() if not v], "t": key})
            await emit(conn, SCHEMA, "crm.tenants.limits.changed", str(key), {"changes": dict(changes)})
            return await self._limits(conn, key, usage)

    # --- usage ----------------------------------------------------------------------------
    async def usage(self, tenant_id: str) -> tuple[Usage, dict[str, int]]:
        async with self.db.transaction() as conn:
            key = self._own(tenant_id)
            usage = await self._usage(conn, key)
            _, limits = await self._limits(conn, key, usage)
            return usage, {lim["key"]: lim["value"] for lim in limits}

    async def _usage(self, conn: AsyncConnection, key: uuid.UUID) -> Usage:
        now = dt.datetime.now(dt.UTC)
        start, end = billing.period_of(now)
        users = await self._seats(conn, key, now)
        counts: dict[str, int] = dict(
            (await conn.execute(text("SELECT metric, value FROM auth.usage_counts"))).tuples().all())
        by_type = {m.removeprefix("records."): int(v) for m, v in counts.items() if m.startswith("records.")}
        calls = (await conn.execute(
            text("SELECT coalesce(sum(calls), 0), coalesce(sum(calls) FILTER (WHERE day = :today), 0) "
                 "FROM auth.api_calls WHERE day >= :s AND day < :e"),
            {"s": start.date(), "e": end.date(), "today": now.date()})).one()
        return Usage(period_start=start, period_end=end, users=users, records=max(0, sum(by_type.values())),
                     records_by_type=by_type, storage_bytes=max(0, int(counts.get("storage.bytes", 0))),
                     api_calls=int(calls[0]), api_calls_today=int(calls[1]))

    # --- billing --------------------------------------------------------------------------
    async def get_billing(self, tenant_id: str) -> dict[str, Any]:
        async with self.db.transaction() as conn:
            return await self._billing(conn, self._own(tenant_id))

    async def _billing(self, conn: AsyncConnection, key: uuid.UUID) -> dict[str, Any]:
        row = await self._tenant(conn, key)
        details = (await conn.execute(text("SELECT * FROM auth.tenant_billing WHERE tenant_id = :t"),
                                      {"t": key})).mappings().first()
        now = dt.datetime.now(dt.UTC)
        seats = await self._seats(conn, key, now)
        draft = await self._draft(conn, key, row, now)
        return {
            "company_name": details["company_name"] if details else "",
            "address": dict(details["address"]) if details else {},
            "tax_id": details["tax_id"] if details else "",
            "billing_email": details["billing_email"] if details else "",
            "complete": details is not None,
            "plan": plan_of(row["plan"]),
            "seats": seats,
            "period_start": draft.period_start,
            "period_end": draft.period_end,
            "current_period_total": billing.money(draft.total),
        }

    async def update_billing(self, tenant_id: str, values: Mapping[str, Any]) -> dict[str, Any]:
        clean, problems = rules.check_billing(values)
        if problems:
            raise validation(problems)
        async with self.db.transaction() as conn:
            key = self._own(tenant_id)
            await self._tenant(conn, key)
            await conn.execute(
                text("INSERT INTO auth.tenant_billing (tenant_id, company_name, address, tax_id, billing_email) "
                     "VALUES (:t, :n, CAST(:a AS jsonb), :x, :e) ON CONFLICT (tenant_id) DO UPDATE SET "
                     "company_name = EXCLUDED.company_name, address = EXCLUDED.address, tax_id = EXCLUDED.tax_id, "
                     "billing_email = EXCLUDED.billing_email, updated_at = now()"),
                {"t": key, "n": clean["company_name"], "a": json.dumps(clean["address"]), "x": clean["tax_id"],
                 "e": clean["billing_email"]})
            await emit(conn, SCHEMA, "crm.tenants.billing.updated", str(key),
                       {"companyName": clean["company_name"], "billingEmail": clean["billing_email"]})
            return await self._billing(conn, key)

    async def _changes(self, conn: AsyncConnection) -> list[tuple[dt.datetime, billing.PlanChange]]:
        rows = (await conn.execute(text("SELECT * FROM auth.plan_changes ORDER BY effective_at"))).mappings().all()
        return [(r["period_start"], billing.PlanChange(r["from_plan"], r["to_plan"], r["seats"], r["effective_at"],
                                                       r["unit_price"], r["amount"])) for r in rows]

    @staticmethod
    def _plan_at(moment: dt.datetime, current: str, changes: list[billing.PlanChange]) -> str:
        """The plan in force at `moment`, replayed from the plan changes."""
        before = [c for c in changes if c.effective_at <= moment]
        if before:
            return before[-1].to_plan
        return changes[0].from_plan if changes else current

    async def _invoice(self, conn: AsyncConnection, key: uuid.UUID, row: RowMapping, start: dt.datetime,
                       end: dt.datetime, seats: int) -> billing.Draft:
        all_changes = [c for _, c in await self._changes(conn)]
        inside = [c for c in all_changes if start <= c.effective_at < end]
        at_start = inside[0].from_plan if inside else self._plan_at(start, row["plan"], all_changes)
        return billing.compute(period_start=start, period_end=end, billing_start=row["created_at"],
                               plan_at_start=plan_of(at_start), seats=seats, changes=inside)

    async def _peak(self, conn: AsyncConnection, start: dt.datetime) -> int | None:
        return (await conn.execute(text("SELECT seats FROM auth.seat_peaks WHERE period_start = :p"),
                                   {"p": start})).scalar_one_or_none()

    async def _draft(self, conn: AsyncConnection, key: uuid.UUID, row: RowMapping, now: dt.datetime) -> billing.Draft:
        start, end = billing.period_of(now)
        seats = max(await self._seats(conn, key, now), await self._peak(conn, start) or 0)
        return await self._invoice(conn, key, row, start, end, seats)

    async def _issue_closed_periods(self, conn: AsyncConnection, key: uuid.UUID, row: RowMapping,
                                    now: dt.datetime) -> None:
        """Issue the invoice of every ended period that has none (once: the unique key holds it)."""
        current, _ = billing.period_of(now)
        start, end = billing.period_of(row["created_at"])
        issued = set((await conn.execute(text("SELECT period_start FROM auth.invoices"))).scalars().all())
        bill_to = await self._bill_to(conn, key)
        while start < current:
            if start not in issued:
                # Seats of an ended period: its recorded peak (the active users now if none was seen).
                seats = await self._peak(conn, start)
                if seats is None:
                    seats = await self._seats(conn, key, now)
                draft = await self._invoice(conn, key, row, start, end, seats)
                await conn.execute(
                    text("INSERT INTO auth.invoices (id, tenant_id, number, period_start, period_end, currency, lines, "
                         "subtotal, tax, total, bill_to) VALUES (:id, :t, :n, :s, :e, :c, CAST(:l AS jsonb), :sub, "
                         ":tax, :tot, :b) ON CONFLICT (tenant_id, period_start) DO NOTHING"),
                    {"id": invoice_id(key, start), "t": key, "n": invoice_number(key, start), "s": start, "e": end,
                     "c": draft.currency, "l": json.dumps([ln.to_json() for ln in draft.lines]),
                     "sub": draft.subtotal, "tax": draft.tax, "tot": draft.total, "b": bill_to})
                await emit(conn, SCHEMA, "crm.tenants.invoice.issued", str(invoice_id(key, start)),
                           {"number": invoice_number(key, start), "periodStart": start.isoformat(),
                            "total": billing.money(draft.total), "currency": draft.currency})
            start, end = end, billing.period_of(end)[1]

    async def _bill_to(self, conn: AsyncConnection, key: uuid.UUID) -> str:
        d = (await conn.execute(text("SELECT * FROM auth.tenant_billing WHERE tenant_id = :t"),
                                {"t": key})).mappings().first()
        if d is None:
            return ""
        a = d["address"]
        parts = [d["company_name"], a.get("line1", ""), a.get("line2", ""),
                 f"{a.get('postalCode', '')} {a.get('city', '')}".strip(), a.get("region", ""), a.get("country", ""),
                 f"Tax id: {d['tax_id']}" if d["tax_id"] else "", d["billing_email"]]
        return "\n".join(p for p in parts if p)

    async def list_invoices(self, tenant_id: str, p: listing.ListParams) -> tuple[list[dict[str, Any]], int]:
        """The current period's draft, then issued invoices, newest first."""
        async with self.db.transaction() as conn:
            key = self._own(tenant_id)
            row = await self._tenant(conn, key)
            now = dt.datetime.now(dt.UTC)
            await self._issue_closed_periods(conn, key, row, now)
            draft = await self._draft(conn, key, row, now)
            total = 1 + int((await conn.execute(text("SELECT count(*) FROM auth.invoices"))).scalar_one())
            first = (p.page - 1) * p.limit
            out: list[dict[str, Any]] = []
            if first == 0:
                out.append(draft_to_invoice(key, draft, await self._bill_to(conn, key)))
            skip = max(0, first - 1)
            take = p.limit - len(out)
            issued = (await conn.execute(
                text("SELECT * FROM auth.invoices ORDER BY period_start DESC LIMIT :n OFFSET :o"),
                {"n": take, "o": skip})).mappings().all()
            for inv in issued:
                out.append({"id": str(inv["id"]), "number": inv["number"], "status": "issued",
                            "currency": inv["currency"], "period_start": inv["period_start"],
                            "period_end": inv["period_end"],
                            "lines": [billing.Line.from_json(x) for x in inv["lines"]],
                            "subtotal": billing.money(inv["subtotal"]), "tax": billing.money(inv["tax"]),
                            "total": billing.money(inv["total"]), "issued_at": inv["issued_at"],
                            "bill_to": inv["bill_to"]})
            return out, total

    # --- plan changes ---------------------------------------------------------------------
    async def upgrade(self, tenant_id: str, plan: str) -> PlanChanged:
        return await self.change_plan(str(self._own(tenant_id)), plan, operator=False)

    async def change_plan(self, tenant_id: str, plan_key: str, *, operator: bool) -> PlanChanged:
        """Move to another plan at once, with a prorated line for the rest of the period.

        Refused (409) when the target plan's maxima are below current use, when the tenant is
        not active, and (for a tenant's own upgrade to a paid plan) without billing details.
        """
        new = requested_plan(plan_key)
        key = parse_id(tenant_id)
        async with self.db.transaction(tenant_id=str(key)) as conn:
            row = await self._tenant(conn, key, lock=True)
            if row["status"] != "active":
                raise FailedPrecondition(f"the tenant is {row['status']}", reason="TENANT_INACTIVE")
            old = plan_of(row["plan"])
            if new.key == old.key:
                raise FailedPrecondition(f"the tenant is already on the {new.name} plan", reason="PLAN_UNCHANGED",
                                         violations=[FieldViolation("plan", "is the current plan", "PLAN_UNCHANGED")])
            usage = await self._usage(conn, key)
            over = [FieldViolation(k, f"{usage.used(k)} in use, the {new.name} plan allows {new.limits[k]}",
                                   "USAGE_EXCEEDS_PLAN")
                    for k in ("users", "records", "storageMb") if usage.used(k) > new.limits[k]]
            if over:
                raise FailedPrecondition(f"current use exceeds the {new.name} plan", reason="USAGE_EXCEEDS_PLAN",
                                         violations=over)
            has_billing = (await conn.execute(text("SELECT 1 FROM auth.tenant_billing WHERE tenant_id = :t"),
                                              {"t": key})).first() is not None
            if not operator and new.price_per_seat > 0 and not has_billing:
                raise FailedPrecondition("set the billing details first (PUT /tenants/{id}/billing)",
                                         reason="BILLING_DETAILS_REQUIRED",
                                         violations=[FieldViolation("billing", "required for a paid plan",
                                                                    "BILLING_DETAILS_REQUIRED")])
            now = dt.datetime.now(dt.UTC)
            line = billing.proration(old, new, usage.users, now)
            await conn.execute(
                text("INSERT INTO auth.plan_changes (id, tenant_id, from_plan, to_plan, seats, effective_at, "
                     "period_start, unit_price, amount, changed_by) VALUES (:id, :t, :f, :to, :n, :at, :p, :u, :a, :by)"),
                {"id": uuid.uuid4(), "t": key, "f": old.key, "to": new.key, "n": usage.users, "at": now,
                 "p": billing.period_of(now)[0], "u": line.unit_price, "a": line.amount,
                 "by": uuid.UUID(context.current().user_id) if context.current().user_id else None})
            await conn.execute(text("UPDATE auth.tenants SET plan = :p, updated_at = now() WHERE id = :t"),
                               {"p": new.key, "t": key})
            # Limits follow the plan: the tenant's own caps above the new maxima fall away.
            settings = await self._settings(conn, key)
            above = [k for k, v in (dict(settings["limits"]) if settings else {}).items()
                     if k in new.limits and int(v) > new.limits[k]]
            if above:
                await conn.execute(
                    text("UPDATE auth.tenant_settings SET limits = limits - CAST(:drop AS text[]), updated_at = now() "
                         "WHERE tenant_id = :t"), {"drop": above, "t": key})
            direction = "upgraded" if new.rank > old.rank else "downgraded"
            await emit(conn, SCHEMA, f"crm.tenants.plan.{direction}", str(key),
                       {"from": old.key, "to": new.key, "seats": usage.users, "tier": new.tier,
                        "proration": billing.money(line.amount), "currency": CURRENCY,
                        "effectiveAt": now.isoformat()}, tenant_id=str(key))
            row = await self._tenant(conn, key)
            draft = await self._draft(conn, key, row, now)
            return PlanChanged(row, old.key, line, draft)


def invoice_id(tenant_id: uuid.UUID, period_start: dt.datetime) -> uuid.UUID:
    """Stable per tenant and period: the draft and the issued invoice share it."""
    return uuid.uuid5(tenant_id, period_start.strftime("%Y-%m"))


def invoice_number(tenant_id: uuid.UUID, period_start: dt.datetime) -> str:
    return f"INV-{period_start:%Y%m}-{tenant_id.hex[:8].upper()}"


def draft_to_invoice(key: uuid.UUID, draft: billing.Draft, bill_to: str) -> dict[str, Any]:
    return {"id": str(invoice_id(key, draft.period_start)), "number": invoice_number(key, draft.period_start),
            "status": "draft", "currency": draft.currency, "period_start": draft.period_start,
            "period_end": draft.period_end, "lines": draft.lines, "subtotal": billing.money(draft.subtotal),
            "tax": billing.money(draft.tax), "total": billing.money(draft.total), "issued_at": None,
            "bill_to": bill_to}


