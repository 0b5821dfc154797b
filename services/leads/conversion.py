"""Converting a lead into a contact, an account and a deal: a saga across three services.

No transaction spans services, so the conversion is made all or nothing by steps and their undo:

1. Reserve: in one local transaction the lead moves to `converting` with a new conversion id and
   a row in `conversions` (the saga log) records the options and the previous status. A second
   conversion of the same lead, in parallel or later, finds the lead reserved and gets 409.
2. Steps, in order: the account (verified when `accountId` is given, else created from the
   lead's company when there is one), the contact (linked to the account), the deal (linked to
   both). Each created id is written to the saga log as soon as the call returns.
3. Success: one transaction marks the lead `converted` with the three ids and `convertedAt`,
   closes the saga and emits `crm.leads.lead.converted`.
   Failure: compensation deletes what the log names (deal, contact, then the account if the
   conversion created it), puts the lead back to its previous status and emits
   `crm.leads.lead.conversion_failed`; the caller gets the failing step's error.

Crashes: `conversion_queue` lists unfinished sagas whatever their tenant; the recovery pass (at
start and every `CRM_LEADS_RECOVERY_SECONDS`, 30) compensates those running longer than
`CRM_LEADS_CONVERSION_TIMEOUT` (seconds, 120) and retries compensations that could not finish (a peer down).
A record whose id never reached the log (a crash between the callee's commit and the log write)
is found from the callee's `created` event: each step's call carries the sub-request id
`<request id>.leadconv.<conversion>.<step>`, and a durable consumer of those events records the
id on a running saga or deletes the record of one that is already over.

Permissions: the steps run as the caller (their token is forwarded, so contacts, accounts and
deals authorize the user and own the records by the lead's owner); undoing runs as this service
with only the delete permissions, so a caller allowed to create but not delete is still cleaned
up after.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import datetime as dt
import json
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from crm.contacts.v1 import contact_pb2
from sqlalchemy import cast, delete, func, insert, literal, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.kernel import context
from services.kernel.db import Database
from services.kernel.errors import (
    DomainError,
    FailedPrecondition,
    FieldViolation,
    NotFound,
    PermissionDenied,
    Unavailable,
    ValidationFailed,
    validation,
)
from services.kernel.events import emit
from services.leads import enrich
from services.leads.domain import COLUMNS, LeadsDomain, check_batch, parse_id, public
from services.leads.peers import (
    ACCOUNTS,
    CONTACTS,
    DEALS,
    STEP_REQUEST_RE,
    DealDraft,
    Peers,
    contact_custom_fields,
    step_metadata,
)
from services.leads.rules import check_amount
from services.leads.tables import SCHEMA, conversion_queue, conversions, leads

log = logging.getLogger(__name__)

MAX_BULK_CONVERT = 50
# A live saga takes a few seconds (three calls of at most 10 s each); one older than this died.
DEFAULT_TIMEOUT_SECONDS = 120.0
DEFAULT_RECOVERY_SECONDS = 30.0
# One pass owns a compensation this long (at most the saga timeout: a process killed while
# undoing must not hold the lead longer than one that died running the steps).
LEASE = dt.timedelta(seconds=60)
# Where a callee's field names land in the ConvertLead request (deal.stage_id -> stageId).
_DEAL_FIELDS = {"stageId": "stageId", "stage_id": "stageId", "pipelineId": "pipelineId", "pipeline_id": "pipelineId",
                "amount": "amount", "currency": "currency", "name": "dealName", "accountId": "accountId",
                "account_id": "accountId"}
cv = conversions.c


@dataclass(frozen=True)
class Options:
    create_deal: bool = False
    pipeline_id: str = ""
    stage_id: str = ""
    deal_name: str = ""
    account_id: str = ""
    amount: str = ""
    currency: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"createDeal": self.create_deal, "pipelineId": self.pipeline_id, "stageId": self.stage_id,
                "dealName": self.deal_name, "accountId": self.account_id, "amount": self.amount, "currency": self.currency}


@dataclass(frozen=True)
class Outcome:
    conversion_id: str
    contact_id: str
    account_id: str
    deal_id: str
    account_created: bool
    lead: RowMapping


class TakenOver(Exception):
    """The recovery pass took this saga over (it ran past the timeout): stop and undo."""


def check_options(o: Options, prefix: str = "") -> Options:
    """Field problems of the options (422), normalized options otherwise."""
    problems: list[FieldViolation] = []
    for name, value in (("pipelineId", o.pipeline_id), ("stageId", o.stage_id), ("accountId", o.account_id)):
        if value:
            try:
                uuid.UUID(value)
            except ValueError:
                problems.append(FieldViolation(f"{prefix}{name}", "must be a UUID"))
    if o.create_deal and not o.pipeline_id:
        problems.append(FieldViolation(f"{prefix}pipelineId", "a deal needs a pipeline", "REQUIRED"))
    if not o.create_deal:
        for name, value in (("pipelineId", o.pipeline_id), ("stageId", o.stage_id), ("dealName", o.deal_name),
                            ("amount", o.amount)):
            if value:
                problems.append(FieldViolation(f"{prefix}{name}", "only with createDeal", "UNEXPECTED"))
    if len(o.deal_name) > 200:
        problems.append(FieldViolation(f"{prefix}dealName", "must be at most 200 characters", "TOO_LONG"))
    amount = o.amount
    if o.amount:
        amount = check_amount(o.amount) or ""
        if not amount:
            problems.append(FieldViolation(f"{prefix}amount", "must be a decimal string with at most 2 decimals (\"1250.00\")"))
    currency = o.currency.strip().upper()
    if currency and (len(currency) != 3 or not currency.isalpha()):
        problems.append(FieldViolation(f"{prefix}currency", "must be an ISO 4217 code (EUR, USD ...)"))
    if amount and not currency:
        problems.append(FieldViolation(f"{prefix}currency", "an amount needs its currency", "REQUIRED"))
    if problems:
        raise validation(problems)
    return Options(o.create_deal, o.pipeline_id, o.stage_id, " ".join(o.deal_name.split()), o.account_id, amount, currency)


def _peer_failure(step: str, err: DomainError) -> DomainError:
    """A failing step's error in the terms of the ConvertLead request."""
    if isinstance(err, Unavailable | PermissionDenied):
        return err
    if step == "account_check" and isinstance(err, NotFound):
        return validation([FieldViolation("accountId", "no such account", "NOT_FOUND")])
    if step == "deal":
        fields = [FieldViolation(_DEAL_FIELDS.get(v.field.removeprefix("deal."), f"deal.{v.field}"), v.message, v.code)
                  for v in err.violations]
        if isinstance(err, NotFound | ValidationFailed) or fields:
            return validation(fields or [FieldViolation("pipelineId", err.message, err.reason)],
                              f"the deal could not be created: {err.message}")
    prefix = {"contact": "contact", "account": "account"}.get(step, step)
    fields = [FieldViolation(f"{prefix}.{v.field}", v.message, v.code) for v in err.violations]
    if isinstance(err, ValidationFailed | NotFound) or fields:
        return validation(fields or [FieldViolation(prefix, err.message, err.reason)],
                          f"the {prefix} could not be created: {err.message}")
    return err


class Conversions:
    def __init__(self, db: Database, domain: LeadsDomain, peers: Peers) -> None:
        self.db, self.domain, self.peers = db, domain, peers
        self.timeout = dt.timedelta(seconds=float(os.environ.get("CRM_LEADS_CONVERSION_TIMEOUT", DEFAULT_TIMEOUT_SECONDS)))
        self.recovery_seconds = float(os.environ.get("CRM_LEADS_RECOVERY_SECONDS", DEFAULT_RECOVERY_SECONDS))
        self.lease = min(LEASE, self.timeout)

    # --- the saga ------------------------------------------------------------------------
    async def convert(self, lead_id: str, options: Options, *, prefix: str = "") -> Outcome:
        key = parse_id(lead_id)
        o = check_options(options, prefix)
        async with self.db.transaction() as conn:
            lead = await self.domain.fetch(conn, key)
        self._refuse_state(lead)
        plan_account = "verify" if o.account_id else ("create" if lead["company"] else "")
        self._preflight(plan_account, o.create_deal)
        conversion_id = await self._reserve(key, o)
        try:
            return await self._run(conversion_id, key, o, plan_account)
        except TakenOver:
            raise Unavailable("the conversion took too long and was undone; try again", reason="CONVERSION_TIMED_OUT") from None
        except DomainError as err:
            await self._fail(conversion_id, err)
            raise
        except BaseException as exc:  # includes cancellation: undo, then let it propagate
            await self._fail(conversion_id, exc)
            raise

    @staticmethod
    def _refuse_state(lead: RowMapping) -> None:
        if lead["status"] == "converted":
            raise FailedPrecondition("the lead was converted already", reason="LEAD_ALREADY_CONVERTED",
                                     metadata={"contactId": str(lead["converted_contact_id"] or "")})
        if lead["status"] == "converting":
            raise FailedPrecondition("the lead is being converted", reason="CONVERSION_IN_PROGRESS")
        if lead["status"] == "unqualified":
            raise FailedPrecondition("an unqualified lead cannot be converted; qualify it first", reason="LEAD_UNQUALIFIED")

    def _preflight(self, plan_account: str, create_deal: bool) -> None:
        """Refuse before anything is created: services missing, or permissions the steps need."""
        needed = [(CONTACTS, "contacts:write")]
        if plan_account == "create":
            needed.append((ACCOUNTS, "accounts:write"))
        elif plan_account == "verify":
            needed.append((ACCOUNTS, "accounts:read"))
        if create_deal:
            needed.append((DEALS, "deals:write"))
        for service, _ in needed:
            if not self.peers.deployed(service):
                name = service.split(".")[1]
                raise Unavailable(f"the {name} service is not deployed, so this conversion cannot run",
                                  reason="SERVICE_NOT_DEPLOYED", metadata={"service": service})
        caller = context.current()
        missing = [perm for _, perm in needed if not caller.can(perm)]
        if missing:
            raise PermissionDenied(f"converting this lead needs {', '.join(missing)}", reason="MISSING_PERMISSION")

    async def _reserve(self, key: uuid.UUID, o: Options) -> uuid.UUID:
        """Move the lead to `converting` and open the saga log, in one local transaction. The
        row lock makes a parallel conversion wait here and then see the reservation (409)."""
        conversion_id = uuid.uuid4()
        ctx = context.current()
        async with self.db.transaction() as conn:
            lead = await self.domain.fetch(conn, key, lock=True)
            self._refuse_state(lead)
            await conn.execute(update(leads).where(leads.c.id == key)
                               .values(status="converting", conversion_id=conversion_id, updated_at=text("now()")))
            tenant = uuid.UUID(context.tenant_id())
            await conn.execute(insert(conversions).values(
                id=conversion_id, tenant_id=tenant, lead_id=key, state="running", previous_status=lead["status"],
                options=o.as_json(), started_by=uuid.UUID(ctx.user_id) if ctx.user_id else None))
            await conn.execute(insert(conversion_queue).values(conversion_id=conversion_id, tenant_id=tenant))
        return conversion_id

    async def _record(self, conversion_id: uuid.UUID, **ids: Any) -> None:
        """Write a step's result to the saga log, unless recovery took the saga over meanwhile."""
        async with self.db.transaction() as conn:
            done = (await conn.execute(update(conversions).where(cv.id == conversion_id, cv.state == "running")
                                       .values(**ids).returning(cv.id))).first()
        if done is None:
            raise TakenOver()

    async def _step(self, step: str, call: Any) -> Any:
        try:
            return await call
        except DomainError as err:
            raise _peer_failure(step, err) from None

    async def _run(self, conversion_id: uuid.UUID, key: uuid.UUID, o: Options, plan_account: str) -> Outcome:
        async with self.db.transaction() as conn:
            lead = await self.domain.fetch(conn, key)
        owner = str(lead["owner_id"] or "")
        account_id = ""
        if plan_account == "verify":
            account_id = await self._step("account_check", self.peers.get_account(o.account_id))
        elif plan_account == "create":
            domain = _account_domain(lead)
            account_id = await self._step("account", self.peers.create_account(
                lead["company"], domain, owner, step_metadata(conversion_id, "account")))
            await self._record(conversion_id, account_id=uuid.UUID(account_id), account_created=True)
        if account_id and plan_account == "verify":
            await self._record(conversion_id, account_id=uuid.UUID(account_id))
        contact = contact_pb2.Contact(
            first_name=lead["first_name"], last_name=lead["last_name"], email=lead["email"], phone=lead["phone"],
            title=lead["title"], company=lead["company"], account_id=account_id, owner_id=owner,
            lifecycle_stage="opportunity" if o.create_deal else "lead", source=f"lead:{lead['source']}"[:100],
            tags=list(lead["tags"]), custom_fields=contact_custom_fields(key, conversion_id))
        contact_id = await self._step("contact", self.peers.create_contact(contact, step_metadata(conversion_id, "contact")))
        await self._record(conversion_id, contact_id=uuid.UUID(contact_id))
        deal_id = ""
        if o.create_deal:
            name = o.deal_name or f"{lead['company'] or (lead['first_name'] + ' ' + lead['last_name']).strip() or lead['email']} deal"
            draft = DealDraft(name=name[:200], pipeline_id=o.pipeline_id, stage_id=o.stage_id, amount=o.amount,
                              currency=o.currency, account_id=account_id, contact_id=contact_id, owner_id=owner)
            deal_id = await self._step("deal", self.peers.create_deal(draft, step_metadata(conversion_id, "deal")))
            await self._record(conversion_id, deal_id=uuid.UUID(deal_id))
        return await self._complete(conversion_id, key, contact_id, account_id, deal_id, plan_account == "create")

    async def _complete(self, conversion_id: uuid.UUID, key: uuid.UUID, contact_id: str, account_id: str, deal_id: str,
                        account_created: bool) -> Outcome:
        async with self.db.transaction() as conn:
            closed = (await conn.execute(update(conversions).where(cv.id == conversion_id, cv.state == "running")
                                         .values(state="completed", finished_at=text("now()")).returning(cv.id))).first()
            if closed is None:
                raise TakenOver()
            row = (await conn.execute(
                update(leads).where(leads.c.id == key, leads.c.conversion_id == conversion_id)
                .values(status="converted", converted_contact_id=uuid.UUID(contact_id),
                        converted_account_id=uuid.UUID(account_id) if account_id else None,
                        converted_deal_id=uuid.UUID(deal_id) if deal_id else None, converted_at=text("now()"),
                        updated_at=text("now()"))
                .returning(*COLUMNS))).mappings().one()
            await conn.execute(delete(conversion_queue).where(conversion_queue.c.conversion_id == conversion_id))
            # `contactId`/`accountId`/`dealId` are the lineage the audit trail links the lead to.
            await emit(conn, SCHEMA, "crm.leads.lead.converted", str(key), {
                "leadId": str(key), "conversionId": str(conversion_id), "contactId": contact_id,
                "accountId": account_id, "dealId": deal_id, "accountCreated": account_created,
                "related": {"contactId": contact_id, "accountId": account_id, "dealId": deal_id},
                "lead": public(row)})
        return Outcome(str(conversion_id), contact_id, account_id, deal_id, account_created, row)

    async def _fail(self, conversion_id: uuid.UUID, exc: BaseException) -> None:
        failure = {"reason": getattr(exc, "reason", type(exc).__name__), "message": getattr(exc, "message", "")[:500]}
        async with self.db.transaction() as conn:
            await conn.execute(update(conversions).where(cv.id == conversion_id, cv.state == "running")
                               .values(state="compensating", failure=failure, lease_until=func.now() + self.lease))
        try:
            await asyncio.shield(self.compensate(conversion_id, context.tenant_id()))
        except Exception:
            # A peer is down: the recovery pass finishes the undo later (its next pass, not
            # after the lease: nobody holds it now); the lead stays reserved until then.
            log.warning("conversion %s: compensation incomplete, recovery will retry", conversion_id, exc_info=True)
            with contextlib.suppress(Exception):
                async with self.db.transaction() as conn:
                    await conn.execute(update(conversions).where(cv.id == conversion_id, cv.state == "compensating")
                                       .values(lease_until=None))

    # --- compensation --------------------------------------------------------------------
    async def compensate(self, conversion_id: uuid.UUID, tenant_id: str) -> None:
        """Undo every recorded step of a saga in `compensating` state, then release the lead."""
        while True:
            async with self.db.transaction(tenant_id=tenant_id) as conn:
                saga = (await conn.execute(select(conversions).where(cv.id == conversion_id))).mappings().first()
            if saga is None or saga["state"] != "compensating":
                return
            if saga["deal_id"] and not saga["deal_undone"]:
                await self.peers.delete_deal(str(saga["deal_id"]))
                await self._mark(tenant_id, conversion_id, deal_undone=True)
            if saga["contact_id"] and not saga["contact_undone"]:
                await self.peers.delete_contact(str(saga["contact_id"]))
                await self._mark(tenant_id, conversion_id, contact_undone=True)
            if saga["account_id"] and saga["account_created"] and not saga["account_undone"]:
                await self.peers.delete_account(str(saga["account_id"]))
                await self._mark(tenant_id, conversion_id, account_undone=True)
            if await self._release(conversion_id, tenant_id):
                return

    async def _mark(self, tenant_id: str, conversion_id: uuid.UUID, **flags: bool) -> None:
        async with self.db.transaction(tenant_id=tenant_id) as conn:
            await conn.execute(update(conversions).where(cv.id == conversion_id).values(**flags))

    async def _release(self, conversion_id: uuid.UUID, tenant_id: str) -> bool:
        """Close the saga if nothing is left to undo (a step recorded meanwhile loops again)."""
        async with self.db.transaction(tenant_id=tenant_id) as conn:
            saga = (await conn.execute(select(conversions).where(cv.id == conversion_id).with_for_update())).mappings().one()
            if saga["state"] != "compensating":
                return True  # another pass released it
            pending = ((saga["deal_id"] and not saga["deal_undone"]) or (saga["contact_id"] and not saga["contact_undone"])
                       or (saga["account_id"] and saga["account_created"] and not saga["account_undone"]))
            if pending:
                return False
            await conn.execute(update(conversions).where(cv.id == conversion_id)
                               .values(state="compensated", finished_at=text("now()"), lease_until=None))
            row = (await conn.execute(
                update(leads).where(leads.c.id == saga["lead_id"], leads.c.conversion_id == conversion_id,
                                    leads.c.status == "converting")
                .values(status=saga["previous_status"], conversion_id=None, updated_at=text("now()"))
                .returning(*COLUMNS))).mappings().first()
            await conn.execute(delete(conversion_queue).where(conversion_queue.c.conversion_id == conversion_id))
            await emit(conn, SCHEMA, "crm.leads.lead.conversion_failed", str(saga["lead_id"]), {
                "leadId": str(saga["lead_id"]), "conversionId": str(conversion_id), "failure": saga["failure"] or {},
                "undone": {"contactId": str(saga["contact_id"] or ""), "dealId": str(saga["deal_id"] or ""),
                           "accountId": str(saga["account_id"] or "") if saga["account_created"] else ""},
                "lead": public(row) if row is not None else None}, tenant_id=tenant_id)
        return True

    # --- recovery ------------------------------------------------------------------------
    async def recover_once(self) -> int:
        """Compensate sagas that ran past the timeout or whose undo was interrupted. Returns how
        many it finished."""
        async with self.db.transaction(tenant_id="") as conn:
            queued = (await conn.execute(select(conversion_queue.c.conversion_id, conversion_queue.c.tenant_id)
                                         .order_by(conversion_queue.c.started_at).limit(200))).all()
        finished = 0
        for conversion_id, tenant in queued:
            tenant_id = str(tenant)
            token = context.bind(context.RequestContext(tenant_id=tenant_id, request_id=f"recovery.{conversion_id}"))
            try:
                if not await self._claim(conversion_id, tenant_id):
                    continue
                await self.compensate(conversion_id, tenant_id)
                finished += 1
                log.info("conversion %s recovered: its steps were undone and the lead released", conversion_id)
            except Exception:
                log.warning("conversion %s: recovery failed, will retry", conversion_id, exc_info=True)
            finally:
                context.reset(token)
        return finished

    async def _claim(self, conversion_id: uuid.UUID, tenant_id: str) -> bool:
        """Take a saga that ran past the timeout, or an undo nobody holds, for one pass."""
        timed_out = {"reason": "CONVERSION_TIMED_OUT", "message": "found unfinished by the recovery pass"}
        async with self.db.transaction(tenant_id=tenant_id) as conn:
            claimed = (await conn.execute(
                update(conversions).where(
                    cv.id == conversion_id,
                    ((cv.state == "running") & (cv.started_at < func.now() - self.timeout))
                    | ((cv.state == "compensating") & (cv.lease_until.is_(None) | (cv.lease_until < func.now()))))
                .values(state="compensating", lease_until=func.now() + self.lease,
                        failure=func.coalesce(cv.failure, cast(literal(json.dumps(timed_out)), JSONB)))
                .returning(cv.id))).first()
        return claimed is not None

    async def recovery_loop(self) -> None:
        """Background work: recover at start, then periodically; prune old processed events."""
        while True:
            try:
                await self.recover_once()
                async with self.db.transaction(tenant_id="") as conn:
                    # The stream keeps events 7 days; older ids cannot come back.
                    await conn.execute(text("DELETE FROM leads.processed_events WHERE processed_at < now() - interval '8 days'"))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("conversion recovery pass failed", exc_info=True)
            await asyncio.sleep(self.recovery_seconds)

    # --- orphans found from the callee's events ------------------------------------------
    @staticmethod
    def made_by_a_step(event: dict[str, Any]) -> bool:
        """Whether a conversion step made the record (its request id says so): every other
        created event is acknowledged without a transaction."""
        return STEP_REQUEST_RE.search(str(event.get("requestid") or "")) is not None

    async def on_created(self, conn: AsyncConnection, event: dict[str, Any]) -> None:
        """A contact, account or deal was created: if a conversion step made it, make sure the
        saga knows it (running) or that it does not outlive the saga (over and not kept)."""
        match = STEP_REQUEST_RE.search(str(event.get("requestid") or ""))
        record_id = str(event.get("subject") or "")
        if match is None or not record_id:
            return
        conversion_id, step = uuid.UUID(match.group(1)), match.group(2)
        try:
            record = uuid.UUID(record_id)
        except ValueError:
            return
        saga = (await conn.execute(select(conversions).where(cv.id == conversion_id).with_for_update())).mappings().first()
        if saga is None:
            return  # not this service's saga (or its reservation never committed): nothing to tie it to
        column = f"{step}_id"
        if saga["state"] in ("running", "compensating"):
            if saga[column] is None:
                values: dict[str, Any] = {column: record}
                if step == "account":
                    values["account_created"] = True
                await conn.execute(update(conversions).where(cv.id == conversion_id).values(**values))
            return
        kept = saga["state"] == "completed" and saga[column] == record
        undone = saga["state"] == "compensated" and saga[column] == record and saga[f"{step}_undone"]
        if not kept and not undone:
            log.info("conversion %s: deleting orphaned %s %s", conversion_id, step, record)
            await {"contact": self.peers.delete_contact, "account": self.peers.delete_account,
                   "deal": self.peers.delete_deal}[step](str(record))

    # --- bulk ----------------------------------------------------------------------------
    async def bulk_convert(self, ids: Sequence[str], options: Options) -> builtins.list[tuple[int, str, Outcome | None, DomainError | None]]:
        check_batch(ids, MAX_BULK_CONVERT)
        check_options(options)
        results: list[tuple[int, str, Outcome | None, DomainError | None]] = []
        for index, raw in enumerate(ids):
            try:
                results.append((index, raw, await self.convert(raw, options), None))
            except DomainError as err:
                results.append((index, raw, None, err))
        return results


def _account_domain(lead: RowMapping) -> str:
    """The new account's web domain: the lead's web site, else its company email domain."""
    site = str(lead["website"] or "")
    if site:
        host = site.split("://", 1)[-1].split("/", 1)[0]
        return enrich.registrable_domain(host.removeprefix("www.")) or host
    email = str(lead["email"] or "")
    if "@" in email and not enrich.is_free_mail(email.rsplit("@", 1)[1]):
        return enrich.registrable_domain(email.rsplit("@", 1)[1])
    return ""
