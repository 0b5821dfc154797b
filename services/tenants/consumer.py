"""Usage counted from other services' events, never from their tables.

A durable JetStream consumer (`tenants-usage`) reads record created/deleted/merged/imported
events, file events that carry sizes, user creations, and the kernel's API call counts
(services/kernel/usage.py). Each event is applied in one transaction with its id recorded in
`auth.processed_events` by the kernel's durable consumer (services/kernel/consumers.py), and
acknowledged after commit: a redelivered event finds its id and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.kernel.usage import API_CALLS_COUNTED
from services.tenants import billing

log = logging.getLogger(__name__)

DURABLE = "tenants-usage"
SUBJECTS = ["crm.*.*.created", "crm.*.*.deleted", "crm.*.*.merged", "crm.*.import.completed", API_CALLS_COUNTED]
# The record types that count as CRM records (`<service>.<entity>` of their events).
RECORD_TYPES = frozenset({"contacts.contact", "accounts.account", "leads.lead", "deals.deal",
                          "activities.activity"})
IDENTITY_SERVICES = frozenset({"auth", "users"})
KEEP_CONSUMED_DAYS = 8  # longer than the stream keeps events (7 days): a redelivery always finds its id


def effects(event: dict[str, Any]) -> list[tuple[str, Any]]:
    """What one event changes: ("count", metric, delta), ("calls", day, n) or ("seats",)."""
    kind = str(event.get("type", ""))
    data = event.get("data") or {}
    parts = kind.split(".")
    if kind == API_CALLS_COUNTED:
        return [("calls", (dt.date.fromisoformat(str(data["day"])), int(data["calls"])))]
    if len(parts) != 4 or parts[0] != "crm":
        return []
    _, service, entity, action = parts
    record = f"{service}.{entity}"
    if service in IDENTITY_SERVICES and entity == "user" and action == "created":
        return [("seats", None)]
    if record in RECORD_TYPES and action in ("created", "deleted"):
        return [("count", (f"records.{record}", 1 if action == "created" else -1))]
    if record in RECORD_TYPES and action == "merged":
        return [("count", (f"records.{record}", -len(data.get("mergedIds") or [])))]
    if entity == "import" and action == "completed":
        target = next((r for r in RECORD_TYPES if r.startswith(service + ".")), None)
        if target:
            return [("count", (f"records.{target}", int(data.get("imported") or 0)))]
    if service == "files" and entity == "file" and action in ("created", "deleted"):
        size = int(data.get("sizeBytes") or 0)
        return [("count", ("storage.bytes", size if action == "created" else -size))]
    return []


def accepts(event: dict[str, Any]) -> bool:
    """Only events that change usage reach a transaction."""
    return bool(effects(event))


async def on_event(conn: AsyncConnection, event: dict[str, Any]) -> None:
    """Kernel consumer handler: apply one event's effects (the kernel makes it once per id)."""
    try:
        tenant = uuid.UUID(str(event.get("tenantid", "")))
    except ValueError:
        return
    for what, arg in effects(event):
        await _apply_one(conn, tenant, what, arg)


async def _apply_one(conn: AsyncConnection, tenant: uuid.UUID, what: str, arg: Any) -> None:
    if what == "count":
        metric, delta = arg
        await conn.execute(
            text("INSERT INTO auth.usage_counts (tenant_id, metric, value) VALUES (:t, :m, :d) "
                 "ON CONFLICT (tenant_id, metric) DO UPDATE SET value = auth.usage_counts.value + :d"),
            {"t": tenant, "m": metric, "d": delta})
    elif what == "calls":
        day, calls = arg
        await conn.execute(
            text("INSERT INTO auth.api_calls (tenant_id, day, calls) VALUES (:t, :d, :n) "
                 "ON CONFLICT (tenant_id, day) DO UPDATE SET calls = auth.api_calls.calls + :n"),
            {"t": tenant, "d": day, "n": calls})
    elif what == "seats":
        # A new user may raise the period's peak, on which seats are billed.
        await conn.execute(
            text("INSERT INTO auth.seat_peaks (tenant_id, period_start, seats) "
                 "SELECT :t, :p, count(*) FROM auth.users WHERE active "
                 "ON CONFLICT (tenant_id, period_start) DO UPDATE "
                 "SET seats = GREATEST(auth.seat_peaks.seats, EXCLUDED.seats)"),
            {"t": tenant, "p": billing.period_of(dt.datetime.now(dt.UTC))[0]})
