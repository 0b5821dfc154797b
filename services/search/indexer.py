"""Writing the index: documents from events (one durable consumer on `crm.>`) and from reindex jobs.

Event convention: type `crm.<service>.<entity>.<action>`, `subject` = record id, `tenantid` =
tenant, `data.<entity>` = the whole record with the API's field names. Any event of an indexed
entity that carries its record (created, updated, stage_changed, ...) writes the document;
`deleted` removes it; `merged` removes the merged-away ids (`mergedIds` or `sourceIds`).

Order does not matter: each document keeps the record's `updatedAt` (or, when the event does not
carry it, the event's time) and an older version never overwrites a newer one; a deleted
record leaves a tombstone, so a late or replayed event cannot bring it back. Redeliveries are
dropped before this code by the kernel consumer (one effect per event id).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.search import config as search_config
from services.search.records import BY_EVENT, TYPES, Document, RecordType, document, parse_time, parse_uuid

log = logging.getLogger(__name__)

_UPSERT_COLUMNS = ("tenant_id, type, id, owner_id, title, subtitle, stage, status, tags, data, tsv, created_at, "
                   "updated_at, indexed_at")
_ON_CONFLICT = (
    "ON CONFLICT (tenant_id, type, id) DO UPDATE SET owner_id = EXCLUDED.owner_id, title = EXCLUDED.title, "
    "subtitle = EXCLUDED.subtitle, stage = EXCLUDED.stage, status = EXCLUDED.status, tags = EXCLUDED.tags, "
    "data = EXCLUDED.data, tsv = EXCLUDED.tsv, created_at = coalesce(EXCLUDED.created_at, d.created_at), "
    "updated_at = EXCLUDED.updated_at, indexed_at = EXCLUDED.indexed_at "
    "WHERE d.updated_at <= EXCLUDED.updated_at"
)
# One statement per event, sent straight through asyncpg (prepared once per connection; the
# indexer's hot path): the document unless a tombstone says the record is gone, and the tenant's
# indexing state.
_UPSERT = (
    f"WITH doc AS (INSERT INTO search.documents AS d ({_UPSERT_COLUMNS}) "
    "SELECT $1::uuid, $2::text, $3::uuid, $4::uuid, $5::text, $6::text, $7::text, $8::text, $9::text[], "
    "$10::jsonb, search.weigh($10::jsonb, $11::text[], $12::text[], $13::text[], $14::text[]), $15::timestamptz, "
    "$16::timestamptz, clock_timestamp() "
    "WHERE NOT EXISTS (SELECT 1 FROM search.tombstones t WHERE t.tenant_id = $1::uuid AND t.type = $2::text "
    "AND t.id = $3::uuid) "
    f"{_ON_CONFLICT} RETURNING 1) "
    "INSERT INTO search.index_state AS s (tenant_id, last_event_at, last_event_id, last_applied_at, events_applied) "
    "VALUES ($1::uuid, $17::timestamptz, $18::text, clock_timestamp(), 1) "
    "ON CONFLICT (tenant_id) DO UPDATE SET last_event_at = greatest(s.last_event_at, EXCLUDED.last_event_at), "
    "last_event_id = EXCLUDED.last_event_id, last_applied_at = EXCLUDED.last_applied_at, "
    "events_applied = s.events_applied + 1"
)
_DELETE = text(
    "WITH gone AS (DELETE FROM search.documents WHERE tenant_id = CAST(:tenant AS uuid) AND type = :type "
    "AND id = ANY(:ids) RETURNING id) "
    "INSERT INTO search.tombstones (tenant_id, type, id, updated_at) "
    "SELECT CAST(:tenant AS uuid), :type, i, :at FROM unnest(CAST(:ids AS uuid[])) AS i "
    "ON CONFLICT (tenant_id, type, id) DO UPDATE SET updated_at = greatest(search.tombstones.updated_at, "
    "EXCLUDED.updated_at)"
)
_STATE = text(
    "INSERT INTO search.index_state AS s (tenant_id, last_event_at, last_event_id, last_applied_at, events_applied) "
    "VALUES (CAST(:tenant AS uuid), :at, :event_id, clock_timestamp(), 1) "
    "ON CONFLICT (tenant_id) DO UPDATE SET last_event_at = greatest(s.last_event_at, EXCLUDED.last_event_at), "
    "last_event_id = EXCLUDED.last_event_id, last_applied_at = EXCLUDED.last_applied_at, "
    "events_applied = s.events_applied + 1"
)


_CONFIG_KEY = "search.config"


def weight_arrays(cfg: search_config.Config, record_type: str) -> dict[str, list[str]]:
    """The searched fields of a type by weight, as the `search.weigh()` arguments a..d."""
    by = cfg.fields[record_type]
    return {w.lower(): list(by[w]) for w in search_config.WEIGHTS}


def document_params(tenant_id: str, doc: Document, version: dt.datetime, cfg: search_config.Config) -> dict[str, Any]:
    return {
        "tenant": tenant_id, "type": doc.type, "id": doc.id, "owner": doc.owner_id, "title": doc.title,
        "subtitle": doc.subtitle, "stage": doc.stage, "status": doc.status, "tags": doc.tags,
        "data": json.dumps(doc.data, default=str), "created": doc.created_at, "updated": version,
        **weight_arrays(cfg, doc.type),
    }


async def load_config(conn: AsyncConnection, *, per_transaction: bool = False) -> search_config.Config:
    """The configuration of the transaction's tenant (row-level security picks the row).

    With `per_transaction`, read once per transaction: the consumer applies a run of one
    tenant's events in one transaction."""
    root = conn.sync_connection.get_transaction() if per_transaction and conn.sync_connection else None
    if root is not None:
        held = conn.info.get(_CONFIG_KEY)
        if held is not None and held[0] is root:
            return held[1]
    stored = (await conn.execute(text("SELECT config FROM search.configs"))).scalar_one_or_none()
    cfg = search_config.from_json(stored)
    if root is not None:
        conn.info[_CONFIG_KEY] = (root, cfg)
    return cfg


def event_target(event: dict[str, Any]) -> tuple[RecordType, str] | None:
    """The indexed type and the action of an event, or None when the index ignores it."""
    parts = str(event.get("type", "")).split(".")
    if len(parts) != 4 or parts[0] != "crm":
        return None
    rtype = BY_EVENT.get((parts[1], parts[2]))
    return (rtype, parts[3]) if rtype is not None else None


async def apply_event(conn: AsyncConnection, event: dict[str, Any]) -> None:
    """The consumer's handler: one event's effect on the index, in the consumer's transaction."""
    target = event_target(event)
    tenant = parse_uuid(event.get("tenantid"))
    if target is None or tenant is None:
        return
    rtype, action = target
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    assert isinstance(data, dict)
    record = data.get(rtype.entity)
    at = parse_time(event.get("time")) or dt.datetime.now(dt.UTC)
    subject = str(event.get("subject") or "")
    applied = False
    if action == "deleted":
        key = parse_uuid(record.get("id") if isinstance(record, dict) else None) or parse_uuid(subject)
        if key is not None:
            await remove(conn, str(tenant), rtype.name, [key], at)
            applied = True
    else:
        if action == "merged":
            gone = data.get("mergedIds") or data.get("sourceIds") or []
            keys = [k for k in (parse_uuid(g) for g in gone if isinstance(gone, list)) if k is not None]
            if keys:
                await remove(conn, str(tenant), rtype.name, keys, at)
                applied = True
        if isinstance(record, dict):
            doc = document(rtype, record, subject)
            if doc is not None:
                cfg = await load_config(conn, per_transaction=True)
                w = weight_arrays(cfg, doc.type)
                raw = await conn.get_raw_connection()
                pg = raw.driver_connection
                assert pg is not None
                await pg.execute(_UPSERT, tenant, doc.type, doc.id, doc.owner_id, doc.title, doc.subtitle, doc.stage,
                                 doc.status, doc.tags, json.dumps(doc.data, default=str), w["a"], w["b"], w["c"],
                                 w["d"], doc.created_at, doc.updated_at or at, at, str(event.get("id", "")))
                return
            log.warning("search: %s event %s carries no usable record id", event.get("type"), event.get("id"))
    if applied:
        await conn.execute(_STATE, {"tenant": str(tenant), "at": at, "event_id": str(event.get("id", ""))})


TOMBSTONE_DAYS = 8  # longer than the stream keeps events (7 days): no event outlives its tombstone


async def remove(conn: AsyncConnection, tenant_id: str, record_type: str, ids: Sequence[uuid.UUID],
                 at: dt.datetime) -> None:
    await conn.execute(_DELETE, {"tenant": tenant_id, "type": record_type, "ids": list(ids), "at": at})
    await conn.execute(text(
        "DELETE FROM search.tombstones WHERE tenant_id = CAST(:tenant AS uuid) "
        "AND deleted_at < now() - make_interval(days => :days)"), {"tenant": tenant_id, "days": TOMBSTONE_DAYS})


# --- reindex: stage everything a source lists, then merge it in one statement per step ------

STAGE_TABLE = "reindex_stage"


async def create_stage(conn: AsyncConnection) -> None:
    await conn.execute(text(
        f"CREATE TEMP TABLE {STAGE_TABLE} (LIKE search.documents INCLUDING DEFAULTS EXCLUDING GENERATED) "
        "ON COMMIT DROP"
    ))
    await conn.execute(text(f"ALTER TABLE {STAGE_TABLE} ADD PRIMARY KEY (type, id)"))


async def stage(conn: AsyncConnection, tenant_id: str, docs: Sequence[Document], cfg: search_config.Config) -> None:
    """Stage a page of documents (a later duplicate of a record replaces the earlier one)."""
    if not docs:
        return
    await conn.execute(text(
        f"INSERT INTO {STAGE_TABLE} ({_UPSERT_COLUMNS}) VALUES (CAST(:tenant AS uuid), :type, :id, :owner, :title, "
        ":subtitle, :stage, :status, :tags, CAST(:data AS jsonb), search.weigh(CAST(:data AS jsonb), :a, :b, :c, :d), "
        ":created, :updated, clock_timestamp()) "
        "ON CONFLICT (type, id) DO UPDATE SET data = EXCLUDED.data, tsv = EXCLUDED.tsv, title = EXCLUDED.title, "
        "subtitle = EXCLUDED.subtitle, owner_id = EXCLUDED.owner_id, updated_at = EXCLUDED.updated_at"
    ), [document_params(tenant_id, d, d.updated_at or dt.datetime.now(dt.UTC), cfg) for d in docs])


async def swap(conn: AsyncConnection, tenant_id: str, types: Sequence[str], started: dt.datetime) -> tuple[int, int]:
    """Make the staged documents the index of `types`, in the caller's transaction.

    Staged documents replace older ones (never newer ones an event wrote meanwhile, never a
    record deleted meanwhile); documents the sources no longer list are removed, unless an
    event wrote them after the reindex began. Returns (written, removed).
    """
    written = (await conn.execute(text(
        f"INSERT INTO search.documents AS d ({_UPSERT_COLUMNS}) "
        f"SELECT {_UPSERT_COLUMNS} FROM {STAGE_TABLE} s WHERE NOT EXISTS (SELECT 1 FROM search.tombstones t "
        "WHERE t.tenant_id = s.tenant_id AND t.type = s.type AND t.id = s.id AND t.updated_at >= s.updated_at) "
        f"{_ON_CONFLICT}"
    ))).rowcount
    removed = (await conn.execute(text(
        "DELETE FROM search.documents d WHERE d.tenant_id = CAST(:tenant AS uuid) AND d.type = ANY(:types) "
        "AND d.indexed_at < :started "
        f"AND NOT EXISTS (SELECT 1 FROM {STAGE_TABLE} s WHERE s.type = d.type AND s.id = d.id)"
    ), {"tenant": tenant_id, "types": list(types), "started": started})).rowcount
    return int(written or 0), int(removed or 0)


async def reweigh(conn: AsyncConnection, record_type: str, cfg: search_config.Config) -> int:
    """Recompute the vectors of a type's documents from their stored records (new weights)."""
    result = await conn.execute(text(
        "UPDATE search.documents SET tsv = search.weigh(data, :a, :b, :c, :d) "
        "WHERE tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid AND type = :type"
    ), {"type": record_type, **weight_arrays(cfg, record_type)})
    return int(result.rowcount or 0)


__all__ = ["TYPES", "apply_event", "create_stage", "event_target", "load_config", "remove", "reweigh", "stage",
           "swap"]
