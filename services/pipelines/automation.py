"""Automation: rules run when deals enter or leave stages, or sit in one too long.

Triggers come from the Deals service's events (a durable JetStream consumer on
`crm.deals.deal.created` and `crm.deals.deal.stage_changed`) and from a periodic check for idle
deals. Each (trigger occurrence, rule) becomes one row in `automation_runs` whose unique key is
derived from the event id (or, for idle rules, from the deal's stay in the stage), claimed in
the same transaction as the consumed event: a redelivered event runs nothing twice. The run's
actions happen after that commit; a process that dies in between leaves the run queued, and the
periodic loop picks it up again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from crm.deals.v1 import deal_pb2
from google.protobuf import json_format, struct_pb2
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.kernel import context
from services.kernel.consumers import FollowUp
from services.kernel.db import Database
from services.kernel.errors import DomainError, NotFound, ValidationFailed, validation
from services.kernel.errors import FieldViolation as FV
from services.kernel.events import emit
from services.pipelines import rules as r
from services.pipelines import webhooks
from services.pipelines.peers import ActivitiesPeer, DealsPeer
from services.pipelines.tables import SCHEMA, idle_rules, rules, run_queue, runs

log = logging.getLogger(__name__)

CONSUMER = "pipelines-automation"
SUBJECTS = ["crm.deals.deal.created", "crm.deals.deal.stage_changed"]
NOTIFY_EVENT = "crm.pipelines.automation.notify"
CLAIM = dt.timedelta(minutes=5)
IDLE_BATCH = 100
# Deal fields automation may set: API name -> field of crm.deals.v1.Deal.
DEAL_FIELDS = {"name": "name", "amount": "amount", "currency": "currency", "expectedCloseDate": "expected_close_date",
               "forecastCategory": "forecast_category", "lostReason": "lost_reason", "description": "description"}


@dataclass(frozen=True)
class AutomationSettings:
    allow_loopback_webhooks: bool = False
    webhook_timeout: float = 5.0
    idle_check_seconds: float = 300.0


def _scalar(value: Any) -> str:
    """A JSON value as the text of a string deal field (amounts keep their decimal digits)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(decimal.Decimal(repr(value)))
    return str(value)


def _violations(err: DomainError) -> str:
    return "; ".join(f"{v.field}: {v.message}" for v in err.violations) or err.message


class Automation:
    def __init__(self, db: Database, deals: DealsPeer, activities: ActivitiesPeer, settings: AutomationSettings) -> None:
        self.db = db
        self.deals = deals
        self.activities = activities
        self.settings = settings

    # --- triggers ------------------------------------------------------------------------
    async def on_event(self, conn: AsyncConnection, event: Mapping[str, Any]) -> FollowUp | None:
        """Consumer handler: find the rules the event fires and record their runs in the consumer's
        transaction; the runs execute once it has committed."""
        if event.get("type") not in SUBJECTS:
            return None
        data = event.get("data") or {}
        deal = data.get("deal") or {}
        if event.get("type") == "crm.deals.deal.created":
            occurrences = [("stage_entered", deal.get("pipelineId", ""), deal.get("stageId", ""))]
        else:
            occurrences = [("stage_left", data.get("fromPipelineId") or data.get("pipelineId", ""), data.get("fromStageId", "")),
                           ("stage_entered", data.get("pipelineId", ""), data.get("toStageId", ""))]
        occurrences = [o for o in occurrences if o[1] and o[2]]
        if not deal.get("id") or not occurrences:
            return None
        trigger_data = {"eventId": event.get("id"), "eventType": event.get("type"), "fromStageId": data.get("fromStageId", ""),
                        "toStageId": data.get("toStageId", deal.get("stageId", "")), "pipelineId": data.get("pipelineId", "")}
        started: list[uuid.UUID] = []
        pipeline_ids = []
        for o in occurrences:
            try:
                pipeline_ids.append(uuid.UUID(o[1]))
            except ValueError:
                continue
        candidates = (await conn.execute(select(rules).where(rules.c.pipeline_id.in_(pipeline_ids), rules.c.enabled)
                                         .order_by(rules.c.created_at))).mappings().all()
        for rule in candidates:
            for kind, pipeline_id, stage_id in occurrences:
                if str(rule["pipeline_id"]) == pipeline_id and r.trigger_matches(rule["trigger"], kind, stage_id):
                    run_id = await self._claim(conn, rule, deal["id"], f"{event['id']}:{rule['id']}:{kind}",
                                               {**trigger_data, "trigger": kind}, str(event["id"]))
                    if run_id:
                        started.append(run_id)
        if not started:
            return None

        async def run_them() -> None:
            for run_id in started:
                await self.execute(run_id)

        return run_them

    @staticmethod
    async def _claim(conn: Any, rule: Mapping[Any, Any], deal_id: str, key: str, trigger_data: dict[str, Any],
                     event_id: str) -> uuid.UUID | None:
        """Record a pending run once per key; None when it was recorded before."""
        run_id = uuid.uuid4()
        row = (await conn.execute(text(
            "INSERT INTO pipelines.automation_runs (id, tenant_id, rule_id, deal_id, event_id, dedupe_key, trigger_data) "
            "VALUES (:id, :t, :rule, :deal, :event, :key, CAST(:data AS jsonb)) "
            "ON CONFLICT (tenant_id, dedupe_key) DO NOTHING RETURNING id"),
            {"id": run_id, "t": rule["tenant_id"], "rule": rule["id"], "deal": uuid.UUID(deal_id), "event": event_id,
             "key": key, "data": json.dumps(trigger_data)})).first()
        if row is None:
            return None
        await conn.execute(insert(run_queue).values(run_id=run_id, tenant_id=rule["tenant_id"],
                                                    claimed_until=dt.datetime.now(dt.UTC) + CLAIM))
        return run_id

    async def check_idle(self) -> None:
        """Fire idle rules for deals that entered their stage more than `idleHours` ago."""
        async with self.db.transaction(tenant_id="") as conn:
            watched = (await conn.execute(select(idle_rules))).mappings().all()
        for item in watched:
            token = context.bind(context.RequestContext(tenant_id=str(item["tenant_id"]), request_id=str(uuid.uuid4())))
            try:
                await self._check_idle_rule(item)
            except Exception:
                log.warning("idle check of rule %s failed", item["rule_id"], exc_info=True)
            finally:
                context.reset(token)

    async def _check_idle_rule(self, item: Mapping[Any, Any]) -> None:
        before = dt.datetime.now(dt.UTC) - dt.timedelta(hours=item["idle_hours"])
        after = item["checked_until"]
        found = await self.deals.idle_in(str(item["stage_id"]), before, limit=IDLE_BATCH, after=after)
        started: list[uuid.UUID] = []
        async with self.db.transaction() as conn:
            rule = (await conn.execute(select(rules).where(rules.c.id == item["rule_id"], rules.c.enabled))).mappings().first()
            if rule is None:
                return
            for deal in found:
                entered = deal.stage_entered_at.ToDatetime(dt.UTC)
                run_id = await self._claim(conn, rule, deal.id, f"idle:{rule['id']}:{deal.id}:{entered.isoformat()}",
                                           {"trigger": "stage_idle", "stageId": deal.stage_id, "enteredAt": entered.isoformat(),
                                            "idleHours": item["idle_hours"]}, "")
                if run_id:
                    started.append(run_id)
            # Next time, only deals that entered after the last one seen here (or, when this
            # batch was not full, everything up to the cut-off has been seen).
            mark = found[-1].stage_entered_at.ToDatetime(dt.UTC) if len(found) == IDLE_BATCH else before
            await conn.execute(update(idle_rules).where(idle_rules.c.rule_id == rule["id"]).values(checked_until=mark))
        for run_id in started:
            await self.execute(run_id)

    async def resume_pending(self) -> None:
        """Run the queued runs nobody is working on (their process stopped mid-run)."""
        async with self.db.transaction(tenant_id="") as conn:
            stale = (await conn.execute(text(
                "UPDATE pipelines.run_queue SET claimed_until = now() + interval '5 minutes' WHERE run_id IN "
                "(SELECT run_id FROM pipelines.run_queue WHERE claimed_until < now() LIMIT 50 FOR UPDATE SKIP LOCKED) "
                "RETURNING run_id, tenant_id"))).all()
        for run_id, tenant_id in stale:
            token = context.bind(context.RequestContext(tenant_id=str(tenant_id), request_id=str(uuid.uuid4())))
            try:
                await self.execute(run_id)
            except Exception:
                log.warning("resuming automation run %s failed", run_id, exc_info=True)
            finally:
                context.reset(token)

    async def periodic(self) -> None:
        """Background loop: idle rules, abandoned runs, and old event claims."""
        while True:
            await asyncio.sleep(self.settings.idle_check_seconds)
            await self.check_idle()
            await self.resume_pending()

    # --- running -------------------------------------------------------------------------
    async def execute(self, run_id: uuid.UUID) -> None:
        async with self.db.transaction() as conn:
            run = (await conn.execute(select(runs).where(runs.c.id == run_id))).mappings().first()
            rule = (await conn.execute(select(rules).where(rules.c.id == run["rule_id"]))).mappings().first() if run else None
        if run is None or rule is None or run["status"] != "pending":
            await self._finish(run_id, None, [])
            return
        outcomes: list[dict[str, Any]] = []
        try:
            deal = await self.deals.get(str(run["deal_id"]), for_caller=False)
        except NotFound:
            outcomes = [{"type": a["type"], "status": "skipped", "detail": "the deal no longer exists"} for a in rule["actions"]]
        else:
            for action in rule["actions"]:
                outcome, deal = await self.perform(action, deal, rule, run, dry_run=False)
                outcomes.append(outcome)
        await self._finish(run_id, "failed" if any(o["status"] == "failed" for o in outcomes) else "completed", outcomes)

    async def _finish(self, run_id: uuid.UUID, status: str | None, outcomes: list[dict[str, Any]]) -> None:
        async with self.db.transaction() as conn:
            if status is not None:
                row = (await conn.execute(update(runs).where(runs.c.id == run_id).values(
                    status=status, outcomes=outcomes, finished_at=text("now()")).returning(runs))).mappings().one()
                await emit(conn, SCHEMA, "crm.pipelines.automation.run_finished", str(run_id),
                           {"runId": str(run_id), "ruleId": str(row["rule_id"]), "dealId": str(row["deal_id"]),
                            "status": status, "outcomes": outcomes})
            await conn.execute(delete(run_queue).where(run_queue.c.run_id == run_id))

    async def perform(self, action: Mapping[str, Any], deal: deal_pb2.Deal, rule: Mapping[Any, Any],
                      run: Mapping[Any, Any] | None, *, dry_run: bool) -> tuple[dict[str, Any], deal_pb2.Deal]:
        """Do one action (or, `dry_run`, say what it would do); returns the outcome and the deal after it."""
        kind = action["type"]
        done, skipped = ("would_apply", "would_skip") if dry_run else ("done", "skipped")
        failed = "refused" if dry_run else "failed"
        try:
            if kind in ("set_field", "assign_owner"):
                return await self._change_deal(action, deal, dry_run=dry_run, done=done, failed=failed)
            if kind == "create_task":
                why = self.activities.unavailable()
                if why:
                    return {"type": kind, "status": skipped, "detail": f"no task: {why}"}, deal
                owner = action.get("assignee_id") or deal.owner_id
                due = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=action["due_in_hours"])) if action.get("due_in_hours") else None
                if dry_run:
                    return {"type": kind, "status": done, "detail": f"would create task {action['subject']!r} for {owner}"}, deal
                task_id = await self.activities.create_task(subject=action["subject"], body=action.get("body", ""),
                                                            due_at=due, owner_id=owner, deal=deal)
                return {"type": kind, "status": done, "detail": f"created task {task_id}"}, deal
            if kind == "notify":
                recipients = list(action.get("recipient_ids") or []) or [deal.owner_id]
                if dry_run:
                    return {"type": kind, "status": done,
                            "detail": f"would emit {NOTIFY_EVENT} to {', '.join(recipients)}"}, deal
                async with self.db.transaction() as conn:
                    await emit(conn, SCHEMA, NOTIFY_EVENT, deal.id, {
                        "ruleId": str(rule["id"]), "ruleName": rule["name"], "pipelineId": str(rule["pipeline_id"]),
                        "runId": str(run["id"]) if run else "", "dealId": deal.id, "dealName": deal.name,
                        "message": action["message"], "recipientIds": recipients})
                return {"type": kind, "status": done, "detail": f"notified {', '.join(recipients)}"}, deal
            if kind == "webhook":
                return await self._webhook(action, deal, rule, run, dry_run=dry_run, done=done, failed=failed), deal
        except DomainError as err:
            return {"type": kind, "status": failed, "detail": _violations(err)}, deal
        return {"type": kind, "status": skipped, "detail": "unknown action"}, deal

    async def _change_deal(self, action: Mapping[str, Any], deal: deal_pb2.Deal, *, dry_run: bool, done: str,
                           failed: str) -> tuple[dict[str, Any], deal_pb2.Deal]:
        kind = action["type"]
        change = deal_pb2.Deal()
        if kind == "assign_owner":
            old: Any
            api_name, path, old, new = "ownerId", "owner_id", deal.owner_id, action["owner_id"]
            change.owner_id = new
        elif action["field"].startswith(r.CUSTOM_FIELD_PREFIX):
            key = action["field"][len(r.CUSTOM_FIELD_PREFIX):]
            custom = json_format.MessageToDict(deal.custom_fields)
            api_name, path, old, new = action["field"], "custom_fields", custom.get(key), action.get("value")
            custom[key] = new
            change.custom_fields.update(custom)
        else:
            api_name, path = action["field"], DEAL_FIELDS[action["field"]]
            old, new = getattr(deal, path), _scalar(action.get("value"))
            setattr(change, path, new)
        try:
            after = await self.deals.update(deal.id, change, [path], validate_only=dry_run)
        except ValidationFailed as err:
            return {"type": kind, "status": failed, "detail": _violations(err)}, deal
        if api_name != "ownerId" and not api_name.startswith(r.CUSTOM_FIELD_PREFIX):
            new = getattr(after, path)  # as the deal stores it ("1500" -> "1500.00")
        verb = "would set" if dry_run else "set"
        changes = {api_name: {"from": old, "to": new}}
        return {"type": kind, "status": done, "detail": f"{verb} {api_name} to {new!r}", "changes": changes}, after

    async def _webhook(self, action: Mapping[str, Any], deal: deal_pb2.Deal, rule: Mapping[Any, Any],
                       run: Mapping[Any, Any] | None, *, dry_run: bool, done: str, failed: str) -> dict[str, Any]:
        url = action["url"]
        allow = self.settings.allow_loopback_webhooks
        if dry_run:
            try:
                await webhooks.vet(url, allow_loopback=allow)
            except webhooks.WebhookRefused as refused:
                return {"type": "webhook", "status": failed, "detail": f"refused: {refused.reason}"}
            return {"type": "webhook", "status": done, "detail": f"would POST to {url}"}
        payload = {
            "type": "crm.pipelines.automation.webhook",
            "runId": str(run["id"]) if run else "",
            "rule": {"id": str(rule["id"]), "name": rule["name"], "pipelineId": str(rule["pipeline_id"])},
            "trigger": run["trigger_data"] if run else {},
            "deal": json_format.MessageToDict(deal),
        }
        try:
            delivery = await webhooks.post_json(url, payload, allow_loopback=allow, timeout=self.settings.webhook_timeout,
                                                headers={"x-crm-rule-id": str(rule["id"]),
                                                         "x-crm-run-id": str(run["id"]) if run else ""})
        except webhooks.WebhookRefused as refused:
            return {"type": "webhook", "status": failed, "detail": f"refused: {refused.reason}"}
        except httpx.HTTPError as exc:
            return {"type": "webhook", "status": failed, "detail": f"POST {url} failed: {type(exc).__name__}"}
        status = done if delivery.ok else failed
        return {"type": "webhook", "status": status, "detail": f"POST {url} answered {delivery.status_code}"}

    # --- dry run -------------------------------------------------------------------------
    async def test(self, rule: RowMapping, deal_id: str, stage_names: Mapping[str, str]) -> tuple[bool, str, list[dict[str, Any]]]:
        """Whether `rule` fires for the deal as it is now, and what each action would do."""
        try:
            uuid.UUID(deal_id)
        except ValueError:
            raise validation([FV("dealId", "must be a deal id", "REQUIRED" if not deal_id else "INVALID")]) from None
        try:
            deal = await self.deals.get(deal_id, for_caller=True)
        except NotFound:
            raise validation([FV("dealId", "no such deal", "NOT_FOUND")]) from None
        matched, reason = _evaluate(rule, deal, stage_names)
        outcomes = []
        for action in rule["actions"]:
            outcome, deal = await self.perform(action, deal, rule, None, dry_run=True)
            outcomes.append(outcome)
        return matched, reason, outcomes


def _evaluate(rule: Mapping[Any, Any], deal: deal_pb2.Deal, stage_names: Mapping[str, str]) -> tuple[bool, str]:
    trigger = rule["trigger"]
    event, stage = trigger["event"], trigger.get("stage_id", "")
    where = stage_names.get(deal.stage_id, deal.stage_id)
    if deal.pipeline_id != str(rule["pipeline_id"]):
        return False, "the deal is in another pipeline"
    if stage and deal.stage_id != stage:
        return False, f"the deal is in {where}, the rule watches {stage_names.get(stage, stage)}"
    if event == "stage_entered":
        return True, f"the deal is in {where}: entering it fires the rule"
    if event == "stage_left":
        return True, f"the deal is in {where}: leaving it fires the rule"
    entered = deal.stage_entered_at.ToDatetime(dt.UTC)
    hours = (dt.datetime.now(dt.UTC) - entered).total_seconds() / 3600
    if hours >= trigger["idle_hours"]:
        return True, f"the deal has been in {where} for {hours:.1f} hours (limit {trigger['idle_hours']})"
    return False, f"the deal has been in {where} for {hours:.1f} hours, under the limit of {trigger['idle_hours']}"


def outcome_struct(changes: Mapping[Any, Any] | None) -> struct_pb2.Struct | None:
    if not changes:
        return None
    out = struct_pb2.Struct()
    out.update(dict(changes))
    return out
