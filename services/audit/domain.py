"""Recording events into the chain, and reading the trail back as lists, reports and lineage.

No gRPC here: plain values in and out.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.audit import chain
from services.audit.mapping import CATEGORIES, Entry, from_event
from services.audit.tables import entries
from services.kernel import context, listing
from services.kernel.db import Database
from services.kernel.errors import FieldViolation, InvalidArgument, NotFound, validation
from services.kernel.jobs import JobResult, JobRunner

EXPORT_KIND = "audit.export"
PURGE_KIND = "audit.purge"
REPORT_ROWS = 1000
LINEAGE_HISTORY = 200
EXPORT_MAX_ROWS = 1_000_000
DEFAULT_PERIOD = dt.timedelta(days=30)
MAX_PERIOD = dt.timedelta(days=3660)
MAX_METADATA_BYTES = 16 * 1024
# Days kept per category, the least a tenant may set, and the most.
DEFAULT_RETENTION = {"security": 730, "admin": 730, "data": 365, "access": 180}
MIN_RETENTION = {"security": 365, "admin": 365, "data": 30, "access": 30}
MAX_RETENTION = 3650

e = entries.c
LIST_SPEC = listing.ListSpec(
    fields={
        "id": listing.Field(e.id, "uuid"),
        "actorId": listing.Field(e.actor_id, "text"),
        "entityType": listing.Field(e.entity_type, "text"),
        "entityId": listing.Field(e.entity_id, "text"),
        "action": listing.Field(e.action, "text"),
        "category": listing.Field(e.category, "text"),
        "eventType": listing.Field(e.event_type, "text"),
        "occurredAt": listing.Field(e.occurred_at, "time", sortable=True),
        "sequence": listing.Field(e.seq, "int", sortable=True),
    },
    id_column=e.id,
    search_column=e.search_text,
    default_sort="-sequence",
)
_SELECT = select(*[col for col in entries.c if col.key != "search_text"])


@dataclass(frozen=True)
class Period:
    start: dt.datetime
    end: dt.datetime


def _when(value: str, name: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidArgument(f"{name} must be an ISO 8601 date or time",
                              violations=[FieldViolation(name, "must be an ISO 8601 date or time")]) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def period(start: str, end: str) -> Period:
    """`from`/`to` of a report: the last 30 days by default, `to` exclusive, at most ten years."""
    now = dt.datetime.now(dt.UTC)
    to = _when(end, "to") if end else now
    frm = _when(start, "from") if start else to - DEFAULT_PERIOD
    if frm >= to:
        raise InvalidArgument("from must be before to", violations=[FieldViolation("from", "must be before to")])
    if to - frm > MAX_PERIOD:
        raise InvalidArgument("period too long", violations=[FieldViolation("from", "at most ten years")])
    return Period(frm, to)


def _json_safe(value: Any) -> Any:
    """What JSONB stores and gives back unchanged (the chain hashes what is read back)."""
    return json.loads(json.dumps(value, default=str).replace("\\u0000", ""))


def _uuid(value: str, name: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"{name} not found") from None


class AuditDomain:
    def __init__(self, db: Database, jobs: JobRunner) -> None:
        self.db = db
        self.jobs = jobs
        jobs.handler(EXPORT_KIND, self._run_export)
        jobs.handler(PURGE_KIND, self._run_purge)

    # --- recording ---------------------------------------------------------------------------
    async def record_event(self, conn: AsyncConnection, event: dict[str, Any]) -> None:
        """Consumer handler: one event, one entry (the consumer makes it once per event id)."""
        if str(event.get("type", "")).startswith("crm.audit.") or not event.get("tenantid"):
            return
        await self.append(conn, str(event["tenantid"]), from_event(event))

    async def append(self, conn: AsyncConnection, tenant_id: str, entry: Entry) -> dict[str, Any]:
        """Link `entry` at the end of the tenant's chain (the head row serialises writers)."""
        tenant = uuid.UUID(tenant_id)
        await conn.execute(text("INSERT INTO audit.chain_heads (tenant_id, seq, hash) VALUES (:t, 0, :g) "
                                "ON CONFLICT DO NOTHING"), {"t": tenant, "g": chain.GENESIS})
        head = (await conn.execute(text("SELECT seq, hash FROM audit.chain_heads WHERE tenant_id = :t FOR UPDATE"),
                                   {"t": tenant})).mappings().one()
        try:
            occurred = dt.datetime.fromisoformat(entry.occurred_at) if entry.occurred_at else dt.datetime.now(dt.UTC)
        except ValueError:
            occurred = dt.datetime.now(dt.UTC)
        if occurred.tzinfo is None:
            occurred = occurred.replace(tzinfo=dt.UTC)
        values = asdict(entry)
        row: dict[str, Any] = {
            **{k: values[k] for k in ("event_id", "actor_id", "actor_type", "action", "entity_type", "entity_id",
                                      "category", "event_type", "source", "request_id", "client_ip", "user_agent")},
            "id": uuid.uuid4(), "tenant_id": tenant, "seq": int(head["seq"]) + 1, "occurred_at": occurred,
            "changes": _json_safe(entry.changes), "related": _json_safe(entry.related),
            "metadata": _json_safe(entry.metadata), "prev_hash": head["hash"],
        }
        row["hash"] = chain.link(head["hash"], row)
        await conn.execute(entries.insert().values(**row))
        await conn.execute(text("UPDATE audit.chain_heads SET seq = :s, hash = :h WHERE tenant_id = :t"),
                           {"s": row["seq"], "h": row["hash"], "t": tenant})
        return row

    async def create(self, *, action: str, entity_type: str, entity_id: str, changes: list[dict[str, Any]],
                     metadata: dict[str, Any]) -> RowMapping:
        """An explicit entry made through the API, by the caller."""
        problems = []
        for name, value in (("action", action), ("entityType", entity_type)):
            if not value.strip():
                problems.append(FieldViolation(name, "is required", "REQUIRED"))
            elif len(value) > 100:
                problems.append(FieldViolation(name, "must be at most 100 characters", "TOO_LONG"))
        if len(entity_id) > 200:
            problems.append(FieldViolation("entityId", "must be at most 200 characters", "TOO_LONG"))
        if len(json.dumps(metadata, default=str)) > MAX_METADATA_BYTES:
            problems.append(FieldViolation("metadata", "must be at most 16 KiB", "TOO_LARGE"))
        if len(changes) > 200:
            problems.append(FieldViolation("changes", "at most 200 changes", "TOO_MANY"))
        if problems:
            raise validation(problems)
        ctx = context.current()
        entry = Entry(
            event_id=f"api:{uuid.uuid4()}", event_type="crm.audit.log.created", occurred_at="",
            actor_id=ctx.user_id, actor_type="user", action=action.strip(), entity_type=entity_type.strip(),
            entity_id=entity_id.strip(), category="data", source="api", changes=changes, related=[],
            request_id=ctx.request_id, client_ip=ctx.client_ip, user_agent=ctx.user_agent[:300], metadata=metadata,
        )
        async with self.db.transaction() as conn:
            row = await self.append(conn, ctx.tenant_id, entry)
            return await self._get(conn, row["id"])

    # --- reading -----------------------------------------------------------------------------
    async def _get(self, conn: AsyncConnection, key: uuid.UUID) -> RowMapping:
        row = (await conn.execute(_SELECT.where(e.id == key))).mappings().first()
        if row is None:
            raise NotFound("audit log not found")
        return row

    async def get(self, entry_id: str) -> RowMapping:
        async with self.db.transaction() as conn:
            return await self._get(conn, _uuid(entry_id))

    async def list_logs(self, p: listing.ListParams) -> listing.Page:
        async with self.db.transaction() as conn:
            return await listing.fetch_page(conn, _SELECT, LIST_SPEC, p, [e.tenant_id == uuid.UUID(context.tenant_id())])

    async def compliance(self, when: Period) -> dict[str, Any]:
        scope = {"t": uuid.UUID(context.tenant_id()), "f": when.start, "to": when.end}
        period_sql = "tenant_id = :t AND occurred_at >= :f AND occurred_at < :to"
        async with self.db.transaction() as conn:
            counts = (await conn.execute(text(
                "SELECT count(*) FILTER (WHERE event_type = 'crm.auth.login.succeeded') AS sign_ins, "
                "count(*) FILTER (WHERE event_type = 'crm.auth.login.failed') AS failed "
                f"FROM audit.entries WHERE {period_sql} AND category = 'security'"), scope)).mappings().one()
            failed_by_user = (await conn.execute(text(
                f"SELECT entity_id AS key, count(*) AS count FROM audit.entries WHERE {period_sql} "
                "AND event_type = 'crm.auth.login.failed' GROUP BY entity_id ORDER BY count(*) DESC LIMIT 100"),
                scope)).mappings().all()
            permission_changes = (await conn.execute(_SELECT.where(
                e.tenant_id == scope["t"], e.occurred_at >= when.start, e.occurred_at < when.end, e.category == "admin",
                e.action.op("~")("role|permission")).order_by(e.seq.desc()).limit(REPORT_ROWS))).mappings().all()
            exports = (await conn.execute(_SELECT.where(
                e.tenant_id == scope["t"], e.occurred_at >= when.start, e.occurred_at < when.end,
                (e.action.like("%export%")) | (e.event_type.like("crm.access.%.exported")),
            ).order_by(e.seq.desc()).limit(REPORT_ROWS))).mappings().all()
            deletions = (await conn.execute(text(
                f"SELECT entity_type AS key, count(*) AS count FROM audit.entries WHERE {period_sql} "
                "AND action = 'deleted' GROUP BY entity_type ORDER BY entity_type"), scope)).mappings().all()
            security = (await conn.execute(text(
                f"SELECT event_type AS key, count(*) AS count FROM audit.entries WHERE {period_sql} "
                "AND category = 'security' GROUP BY event_type ORDER BY event_type"), scope)).mappings().all()
        return {"sign_ins": counts["sign_ins"], "failed": counts["failed"], "failed_by_user": failed_by_user,
                "permission_changes": permission_changes, "exports": exports, "deletions": deletions,
                "security": security}

    async def data_access(self, when: Period, entity_type: str, entity_id: str, actor_id: str) -> Sequence[RowMapping]:
        where = ["e.tenant_id = :t", "e.category = 'access'", "e.occurred_at >= :f", "e.occurred_at < :to"]
        args: dict[str, Any] = {"t": uuid.UUID(context.tenant_id()), "f": when.start, "to": when.end}
        if entity_type:
            where.append("e.entity_type = :et")
            args["et"] = entity_type
        if entity_id:
            where.append("(e.metadata -> 'entityIds') ? :eid AND x.id = :eid")
            args["eid"] = entity_id
        if actor_id:
            where.append("e.actor_id = :a")
            args["a"] = actor_id
        sql = (
            "SELECT e.actor_id, e.entity_type, coalesce(x.id, '') AS entity_id, e.action AS access, "
            # An access event gathers a second of one actor's reads: counts per record id.
            "sum(coalesce((e.metadata -> 'counts' ->> x.id)::int, 1)) AS count, max(e.occurred_at) AS last_at "
            "FROM audit.entries e "
            "LEFT JOIN LATERAL jsonb_array_elements_text(e.metadata -> 'entityIds') AS x(id) ON true "
            f"WHERE {' AND '.join(where)} GROUP BY 1, 2, 3, 4 ORDER BY last_at DESC LIMIT {REPORT_ROWS}"
        )
        async with self.db.transaction() as conn:
            return (await conn.execute(text(sql), args)).mappings().all()

    async def changes(self, when: Period, entity_type: str, entity_id: str, actor_id: str) -> Sequence[RowMapping]:
        clauses = [e.tenant_id == uuid.UUID(context.tenant_id()), e.occurred_at >= when.start,
                   e.occurred_at < when.end, e.category.in_(("data", "admin"))]
        if entity_type:
            clauses.append(e.entity_type == entity_type)
        if entity_id:
            clauses.append(e.entity_id == entity_id)
        if actor_id:
            clauses.append(e.actor_id == actor_id)
        async with self.db.transaction() as conn:
            return (await conn.execute(_SELECT.where(*clauses).order_by(e.seq).limit(REPORT_ROWS))).mappings().all()

    async def lineage(self, entity_type: str, entity_id: str) -> dict[str, Any]:
        if not entity_type or not entity_id:
            raise InvalidArgument("entityType and entityId are required", violations=[
                FieldViolation(n, "is required", "REQUIRED") for n, v in (("entityType", entity_type),
                                                                        ("entityId", entity_id)) if not v])
        tenant = uuid.UUID(context.tenant_id())
        async with self.db.transaction() as conn:
            history = (await conn.execute(_SELECT.where(e.tenant_id == tenant, e.entity_type == entity_type,
                                                        e.entity_id == entity_id)
                                          .order_by(e.seq).limit(LINEAGE_HISTORY))).mappings().all()
            mentions = (await conn.execute(_SELECT.where(
                e.tenant_id == tenant, e.related.contains([{"entity_id": entity_id}]),
                e.entity_id != entity_id).order_by(e.seq).limit(LINEAGE_HISTORY))).mappings().all()
        upstream: list[dict[str, Any]] = []
        downstream: list[dict[str, Any]] = []
        for row in history:  # what this record's own entries say it came from or turned into
            for rel in row["related"]:
                if rel.get("entity_id") == entity_id:
                    continue
                item = {"entity_type": rel.get("entity_type", ""), "entity_id": rel.get("entity_id", ""),
                        "at": row["occurred_at"], "audit_log_id": str(row["id"])}
                if rel.get("relation") == "merged_from":
                    upstream.append({**item, "relation": "merged_from"})
                elif rel.get("relation") == "converted_to":
                    downstream.append({**item, "relation": "converted_to"})
        for row in mentions:  # what other records' entries say about this one
            for rel in row["related"]:
                if rel.get("entity_id") != entity_id:
                    continue
                item = {"entity_type": row["entity_type"], "entity_id": row["entity_id"], "at": row["occurred_at"],
                        "audit_log_id": str(row["id"])}
                relation = rel.get("relation")
                if relation == "converted_to":
                    upstream.append({**item, "relation": "converted_from"})
                elif relation == "created_by_import":
                    upstream.append({**item, "relation": "imported_by"})
                elif relation == "merged_from":
                    downstream.append({**item, "relation": "merged_into"})
        created = next((r for r in history if r["action"] in ("created", "captured")), None)
        relations = {u["relation"] for u in upstream}
        if "converted_from" in relations:
            origin = "lead_conversion"
        elif "imported_by" in relations:
            origin = "import"
        elif created is not None and "integration" in created["source"]:
            origin = "integration"
        elif created is not None and created["action"] == "captured":
            origin = "web_form" if created["metadata"].get("channel", "web_form") == "web_form" else "capture"
        elif created is not None:
            origin = "api"
        elif "merged_from" in relations:
            origin = "merge"
        else:
            origin = "unknown"
        return {"origin": origin, "created": created, "upstream": upstream, "downstream": downstream,
                "history": history}

    # --- retention and purge -------------------------------------------------------------------
    async def retention(self) -> dict[str, int]:
        async with self.db.transaction() as conn:
            return await self._retention(conn)

    @staticmethod
    async def _retention(conn: AsyncConnection) -> dict[str, int]:
        rows = (await conn.execute(text("SELECT category, retention_days FROM audit.retention_policies"))).all()
        return {**DEFAULT_RETENTION, **{r[0]: int(r[1]) for r in rows}}

    async def set_retention(self, policies: Sequence[tuple[str, int]]) -> dict[str, int]:
        problems = []
        seen = set()
        for i, (category, days) in enumerate(policies):
            if category not in CATEGORIES:
                problems.append(FieldViolation(f"policies[{i}].category", f"must be one of {', '.join(CATEGORIES)}"))
            elif category in seen:
                problems.append(FieldViolation(f"policies[{i}].category", "named twice", "DUPLICATE"))
            elif not MIN_RETENTION[category] <= days <= MAX_RETENTION:
                problems.append(FieldViolation(f"policies[{i}].retentionDays",
                                               f"must be between {MIN_RETENTION[category]} and {MAX_RETENTION}",
                                               "OUT_OF_RANGE"))
            seen.add(category)
        if problems:
            raise validation(problems)
        ctx = context.current()
        async with self.db.transaction() as conn:
            before = await self._retention(conn)
            for category, days in policies:
                await conn.execute(text(
                    "INSERT INTO audit.retention_policies (tenant_id, category, retention_days) VALUES (:t, :c, :d) "
                    "ON CONFLICT (tenant_id, category) DO UPDATE SET retention_days = :d, updated_at = now()"),
                    {"t": uuid.UUID(ctx.tenant_id), "c": category, "d": days})
            after = await self._retention(conn)
            changed = [{"field": c, "before": before[c], "after": after[c]} for c in CATEGORIES if before[c] != after[c]]
            if changed:
                await self.append(conn, ctx.tenant_id, self._own_entry("retention_policy", "updated", "", changed, {}))
            return after

    @staticmethod
    def _own_entry(entity: str, action: str, entity_id: str, changes: list[dict[str, Any]],
                   metadata: dict[str, Any]) -> Entry:
        ctx = context.current()
        return Entry(event_id=f"audit:{uuid.uuid4()}", event_type=f"crm.audit.{entity}.{action}", occurred_at="",
                     actor_id=ctx.user_id, actor_type="user" if ctx.user_id else "system", action=action,
                     entity_type=entity, entity_id=entity_id, category="admin", source="crm/audit", changes=changes,
                     related=[], request_id=ctx.request_id, client_ip=ctx.client_ip, user_agent=ctx.user_agent[:300],
                     metadata=metadata)

    async def start_purge(self, dry_run: bool) -> RowMapping:
        async with self.db.transaction() as conn:
            job = await self.jobs.create(conn, PURGE_KIND, params={"dryRun": dry_run})
        self.jobs.start(job["id"], context.tenant_id())
        return job

    async def _run_purge(self, job: RowMapping, conn: AsyncConnection) -> JobResult:
        """Entries past their category's retention go; a tombstone keeps each one's link."""
        dry_run = bool(job["params"].get("dryRun"))
        tenant = uuid.UUID(str(job["tenant_id"]))
        policy = await self._retention(conn)
        now = dt.datetime.now(dt.UTC)
        counts: dict[str, int] = {}
        if not dry_run:
            await conn.execute(text("SELECT set_config('app.audit_purge', 'on', true)"))
        for category, days in policy.items():
            cutoff = now - dt.timedelta(days=days)
            args = {"t": tenant, "c": category, "cut": cutoff}
            old = "tenant_id = :t AND category = :c AND occurred_at < :cut"
            if dry_run:
                counts[category] = int((await conn.execute(text(f"SELECT count(*) FROM audit.entries WHERE {old}"),
                                                           args)).scalar_one())
                continue
            await conn.execute(text(f"INSERT INTO audit.tombstones (tenant_id, seq, hash, category) "
                                    f"SELECT tenant_id, seq, hash, category FROM audit.entries WHERE {old}"), args)
            counts[category] = (await conn.execute(text(f"DELETE FROM audit.entries WHERE {old}"), args)).rowcount
        await conn.execute(text("SELECT set_config('app.audit_purge', 'off', true)"))
        total = sum(counts.values())
        await self.append(conn, str(tenant), self._own_entry(
            "purge", "previewed" if dry_run else "completed", str(job["id"]), [],
            {"dryRun": dry_run, "removed": counts, "jobId": str(job["id"])}))
        return JobResult(total=total, succeeded=total)

    async def get_job(self, job_id: str, kind: str) -> RowMapping:
        async with self.db.transaction() as conn:
            return await self.jobs.get(conn, job_id, kind)

    # --- export --------------------------------------------------------------------------------
    async def start_export(self, fmt: str, when: Period, filters: list[listing.Condition]) -> RowMapping:
        fmt = (fmt or "csv").lower()
        if fmt not in ("csv", "json"):
            raise InvalidArgument("format must be csv or json", violations=[FieldViolation("format", "use csv or json")])
        for cond in filters:  # refuse bad filters now, not in the job
            listing.condition_clause(LIST_SPEC, cond)
        params = {"format": fmt, "from": when.start.isoformat(), "to": when.end.isoformat(),
                  "filters": [{"field": c.field, "operator": c.operator, "value": c.value, "path": c.path}
                              for c in filters]}
        ctx = context.current()
        async with self.db.transaction() as conn:
            job = await self.jobs.create(conn, EXPORT_KIND, params=params)
            await self.append(conn, ctx.tenant_id, self._own_entry(
                "export", "requested", str(job["id"]), [], {"format": fmt, "jobId": str(job["id"])}))
        self.jobs.start(job["id"], context.tenant_id())
        return job

    async def _run_export(self, job: RowMapping, conn: AsyncConnection) -> JobResult:
        params = job["params"]
        clauses = [e.tenant_id == job["tenant_id"], e.occurred_at >= dt.datetime.fromisoformat(params["from"]),
                   e.occurred_at < dt.datetime.fromisoformat(params["to"])]
        clauses += [listing.condition_clause(LIST_SPEC, listing.Condition(**f)) for f in params["filters"]]
        out = io.StringIO()
        writer = csv.writer(out)
        columns = ["id", "sequence", "occurredAt", "actorId", "actorType", "category", "eventType", "action",
                   "entityType", "entityId", "changes", "related", "requestId", "clientIp", "userAgent", "metadata",
                   "previousHash", "hash"]
        if params["format"] == "csv":
            writer.writerow(columns)
        count = 0
        result = await conn.stream(_SELECT.where(*clauses).order_by(e.seq).limit(EXPORT_MAX_ROWS))
        async for row in result.mappings():
            record = public_row(row)
            if params["format"] == "csv":
                writer.writerow([_cell(record[c]) for c in columns])
            else:
                out.write(json.dumps(record, default=str) + "\n")
            count += 1
        ctype = "text/csv; charset=utf-8" if params["format"] == "csv" else "application/x-ndjson"
        await conn.execute(text("INSERT INTO audit.export_files (job_id, tenant_id, content_type, data) "
                                "VALUES (:j, :t, :c, :d)"),
                           {"j": job["id"], "t": job["tenant_id"], "c": ctype, "d": out.getvalue().encode()})
        return JobResult(total=count, succeeded=count)

    async def download(self, job_id: str) -> tuple[str, bytes]:
        async with self.db.transaction() as conn:
            job = await self.jobs.get(conn, job_id, EXPORT_KIND)
            if job["status"] != "completed":
                raise NotFound("the export has not completed")
            row = (await conn.execute(text("SELECT content_type, data FROM audit.export_files WHERE job_id = :j"),
                                      {"j": job["id"]})).first()
            if row is None:
                raise NotFound("export file not found")
            ctx = context.current()
            await self.append(conn, ctx.tenant_id, self._own_entry(
                "export", "downloaded", str(job["id"]), [], {"jobId": str(job["id"]), "bytes": len(row[1])}))
            return str(row[0]), bytes(row[1])

    # --- verification --------------------------------------------------------------------------
    async def verify(self) -> tuple[bool, int, str, int]:
        """Walk the chain from the start: (valid, checked, first bad id, first bad sequence)."""
        tenant = uuid.UUID(context.tenant_id())
        checked = 0
        prev = chain.GENESIS
        expected = 1
        async with self.db.transaction() as conn:
            tombs = {int(r[0]): str(r[1]) for r in await conn.execute(
                text("SELECT seq, hash FROM audit.tombstones WHERE tenant_id = :t"), {"t": tenant})}
            head = (await conn.execute(text("SELECT seq, hash FROM audit.chain_heads WHERE tenant_id = :t"),
                                       {"t": tenant})).first()
            result = await conn.stream(_SELECT.where(e.tenant_id == tenant).order_by(e.seq))
            async for row in result.mappings():
                seq = int(row["seq"])
                while expected < seq and expected in tombs:  # purged entries keep their link
                    prev = tombs[expected]
                    expected += 1
                if seq != expected or row["prev_hash"] != prev or chain.link(prev, row) != row["hash"]:
                    return False, checked, str(row["id"]), seq
                prev = row["hash"]
                expected += 1
                checked += 1
            while expected in tombs:
                prev = tombs[expected]
                expected += 1
        if head is not None and (int(head[0]) != expected - 1 or str(head[1]) != prev):
            return False, checked, "", expected  # entries missing at the end of the chain
        return True, checked, "", 0


def public_row(row: Mapping[Any, Any]) -> dict[str, Any]:
    """An entry with the API's field names (exports)."""
    return {
        "id": str(row["id"]), "sequence": row["seq"], "occurredAt": row["occurred_at"].isoformat(),
        "actorId": row["actor_id"], "actorType": row["actor_type"], "category": row["category"],
        "eventType": row["event_type"], "action": row["action"], "entityType": row["entity_type"],
        "entityId": row["entity_id"], "changes": row["changes"], "related": row["related"],
        "requestId": row["request_id"], "clientIp": row["client_ip"], "userAgent": row["user_agent"],
        "metadata": row["metadata"], "previousHash": row["prev_hash"], "hash": row["hash"],
    }


def _cell(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    out = json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
    return "'" + out if out[:1] in ("=", "+", "-", "@", "\t", "\r") else out
