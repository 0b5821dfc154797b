"""Public web forms: their keys, and captures that arrive without a login.

A form key names one form of one tenant; the unauthenticated capture finds its tenant through
`form_index` (the only lookup made without a tenant) and then works inside that tenant under
row-level security like any rpc. Each form limits submissions per client address per minute
(counted in PostgreSQL, so every replica sees one count) and drops submissions that fill its
honeypot field while answering them like any other.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.engine import RowMapping

from services.kernel import context, listing
from services.kernel.db import Database
from services.kernel.errors import FieldViolation, InvalidArgument, NotFound, ResourceExhausted, validation
from services.kernel.events import emit
from services.leads import capture
from services.leads.domain import LeadsDomain, anonymous_in, parse_id
from services.leads.routing import Routing
from services.leads.tables import SCHEMA, form_index, forms

log = logging.getLogger(__name__)

KEY_PREFIX = "lf_"
MAX_SUBMISSION_BYTES = 32 * 1024
f = forms.c


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)


def _check_form(values: Mapping[str, Any]) -> dict[str, Any]:
    problems = []
    name = " ".join(str(values.get("name", "")).split())
    if not name or len(name) > 200:
        problems.append(FieldViolation("name", "a form needs a name of at most 200 characters", "REQUIRED" if not name else "TOO_LONG"))
    source = str(values.get("source") or "web-form").strip().lower()
    if len(source) > 100:
        problems.append(FieldViolation("source", "must be at most 100 characters", "TOO_LONG"))
    honeypot = str(values.get("honeypot_field") or "_gotcha").strip()
    if len(honeypot) > 100:
        problems.append(FieldViolation("honeypotField", "must be at most 100 characters", "TOO_LONG"))
    limit = int(values.get("rate_limit_per_minute") or 10)
    if not 1 <= limit <= 1000:
        problems.append(FieldViolation("rateLimitPerMinute", "must be from 1 to 1000", "OUT_OF_RANGE"))
    owner = None
    if values.get("owner_id"):
        try:
            owner = uuid.UUID(str(values["owner_id"]))
        except ValueError:
            problems.append(FieldViolation("ownerId", "must be a UUID"))
    if problems:
        raise validation(problems)
    clean = {"name": name, "source": source, "honeypot_field": honeypot, "rate_limit_per_minute": limit, "owner_id": owner}
    if "active" in values:
        clean["active"] = bool(values["active"])
    return clean


def _public(row: RowMapping) -> dict[str, Any]:
    return {"id": str(row["id"]), "name": row["name"], "source": row["source"], "active": row["active"],
            "ownerId": str(row["owner_id"] or ""), "rateLimitPerMinute": row["rate_limit_per_minute"]}


class Forms:
    def __init__(self, db: Database, domain: LeadsDomain, routing: Routing) -> None:
        self.db, self.domain, self.routing = db, domain, routing

    # --- management ----------------------------------------------------------------------
    async def create(self, values: Mapping[str, Any]) -> RowMapping:
        clean = _check_form(values)
        ctx = context.current()
        form_id, key, tenant = uuid.uuid4(), new_key(), uuid.UUID(context.tenant_id())
        async with self.db.transaction() as conn:
            row = (await conn.execute(insert(forms).values(
                id=form_id, tenant_id=tenant, key=key, created_by=uuid.UUID(ctx.user_id) if ctx.user_id else None, **clean)
                .returning(forms))).mappings().one()
            await conn.execute(insert(form_index).values(key=key, tenant_id=tenant, form_id=form_id))
            await emit(conn, SCHEMA, "crm.leads.form.created", str(form_id), {"form": _public(row)})
        return row

    async def _get(self, conn: Any, form_id: uuid.UUID) -> RowMapping:
        row = (await conn.execute(select(forms).where(f.id == form_id))).mappings().first()
        if row is None:
            raise NotFound("form not found")
        return row

    async def get(self, form_id: str) -> RowMapping:
        async with self.db.transaction() as conn:
            return await self._get(conn, parse_id(form_id))

    async def list(self, p: listing.ListParams) -> listing.Page:
        spec = listing.ListSpec(fields={"createdAt": listing.Field(f.created_at, "time", sortable=True)}, id_column=f.id)
        async with self.db.transaction() as conn:
            return await listing.fetch_page(conn, select(forms), spec, p)

    async def update(self, form_id: str, values: Mapping[str, Any]) -> RowMapping:
        key = parse_id(form_id)
        clean = _check_form(values)
        async with self.db.transaction() as conn:
            await self._get(conn, key)
            row = (await conn.execute(update(forms).where(f.id == key).values(**clean, updated_at=text("now()"))
                                      .returning(forms))).mappings().one()
            await emit(conn, SCHEMA, "crm.leads.form.updated", str(key), {"form": _public(row)})
        return row

    async def delete(self, form_id: str) -> None:
        key = parse_id(form_id)
        async with self.db.transaction() as conn:
            row = (await conn.execute(delete(forms).where(f.id == key).returning(forms))).mappings().first()
            if row is None:
                raise NotFound("form not found")
            await emit(conn, SCHEMA, "crm.leads.form.deleted", str(key), {"form": _public(row)})

    async def rotate(self, form_id: str) -> RowMapping:
        key = parse_id(form_id)
        fresh = new_key()
        async with self.db.transaction() as conn:
            old = await self._get(conn, key)
            row = (await conn.execute(update(forms).where(f.id == key).values(key=fresh, updated_at=text("now()"))
                                      .returning(forms))).mappings().one()
            await conn.execute(delete(form_index).where(form_index.c.key == old["key"]))
            await conn.execute(insert(form_index).values(key=fresh, tenant_id=row["tenant_id"], form_id=key))
            await emit(conn, SCHEMA, "crm.leads.form.key_rotated", str(key), {"form": _public(row)})
        return row

    # --- public capture ------------------------------------------------------------------
    async def submit(self, form_key: str, fields: Mapping[str, Any], page_url: str) -> str:
        """Take a submission; returns the receipt id (the lead's id, or a fresh one when dropped)."""
        if not form_key or len(form_key) > 100:
            raise InvalidArgument("formKey is required", violations=[FieldViolation("formKey", "send the form's key", "REQUIRED")])
        if len(json.dumps(fields, default=str)) > MAX_SUBMISSION_BYTES or len(page_url) > 2000:
            raise InvalidArgument("the submission is too large", reason="PAYLOAD_TOO_LARGE", violations=[
                FieldViolation("fields", f"at most {MAX_SUBMISSION_BYTES // 1024} KiB of fields", "TOO_LARGE")])
        async with self.db.transaction(tenant_id="") as conn:
            found = (await conn.execute(select(form_index.c.tenant_id, form_index.c.form_id)
                                        .where(form_index.c.key == form_key))).first()
        if found is None:
            raise NotFound("no such form", reason="FORM_NOT_FOUND")
        tenant_id, form_id = str(found.tenant_id), found.form_id
        token = context.bind(anonymous_in(tenant_id))
        try:
            return await self._submit(form_id, fields, page_url)
        finally:
            context.reset(token)

    async def _submit(self, form_id: uuid.UUID, fields: Mapping[str, Any], page_url: str) -> str:
        client = context.current().client_ip or "unknown"
        async with self.db.transaction() as conn:  # committed on its own: refused submissions count too
            form = (await conn.execute(select(forms).where(f.id == form_id, f.active))).mappings().first()
            if form is None:
                raise NotFound("no such form", reason="FORM_NOT_FOUND")
            hits = (await conn.execute(text(
                "INSERT INTO leads.form_hits (tenant_id, form_id, client, window_start, hits) "
                "VALUES (:t, :f, :c, date_trunc('minute', now()), 1) "
                "ON CONFLICT (form_id, client, window_start) DO UPDATE SET hits = leads.form_hits.hits + 1 "
                "RETURNING hits, 60 - extract(second FROM now())::int AS retry"),
                {"t": form["tenant_id"], "f": form_id, "c": client[:100]})).one()
        if hits.hits > form["rate_limit_per_minute"]:
            raise ResourceExhausted(f"too many submissions from this address; try again in {max(1, hits.retry)} seconds",
                                    reason="FORM_RATE_LIMITED", metadata={"retryAfterSeconds": str(max(1, hits.retry))})
        try:
            values, trapped = capture.form_fields(fields, form["honeypot_field"])
        except capture.CaptureError as exc:
            raise validation([FieldViolation(exc.field, exc.message, exc.code)]) from None
        if trapped:
            log.info("form %s: honeypot filled, submission dropped", form_id)
            return str(uuid.uuid4())
        values["owner_id"] = str(form["owner_id"] or "")
        facts = {"channel": "web-form", "formId": str(form_id), "formName": form["name"], "pageUrl": page_url[:2000]}
        lead = await self.domain.capture(capture.Captured(values=values, capture=facts), source=form["source"], prefix="fields.")
        async with self.db.transaction() as conn:
            await conn.execute(update(forms).where(f.id == form_id).values(submission_count=f.submission_count + 1))
        if lead["owner_id"] is None:
            try:
                await self.routing.assign([str(lead["id"])], dry_run=False, reassign=False, as_service=True)
            except Exception:  # assignment is a courtesy here: the lead is kept unowned
                log.warning("form %s: auto-assignment failed", form_id, exc_info=True)
        return str(lead["id"])
