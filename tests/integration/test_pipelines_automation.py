"""Automation end to end: a stage change (an event from the Deals service through NATS) runs the
pipeline's rules; webhooks reach a local server (the test stack allows loopback) and never
private or metadata addresses; idle rules fire from the periodic check; a dry run changes
nothing; a redelivered event runs nothing twice."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import nats
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import DeliverPolicy

from services.devstack import DevStack
from tests.integration.sales import HookServer, h, make_deal, make_pipeline, sql, stage_ids, wait_for

STAGES = [("New", 10, "open"), ("Offer", 60, "open"), ("Won", 100, "won"), ("Lost", 0, "lost")]


def _rule(api: httpx.Client, t: dict[str, str], pipeline_id: str, body: dict[str, Any]) -> dict[str, Any]:
    r = api.post(f"/v1/pipelines/{pipeline_id}/automation", headers=h(t), json=body)
    assert r.status_code == 201, r.text
    made: dict[str, Any] = r.json()["data"]
    return made


def _last_run(api: httpx.Client, t: dict[str, str], pipeline_id: str, rule_id: str) -> dict[str, Any] | None:
    rules = api.get(f"/v1/pipelines/{pipeline_id}/automation", headers=h(t)).json()["data"]
    run = next(r for r in rules if r["id"] == rule_id).get("lastRun")
    return run if run and run["status"] != "pending" else None


async def _collect(stack: DevStack, subject: str, seconds: float, found: list[dict[str, Any]]) -> None:
    nc = await nats.connect(stack.nats_url)
    try:
        sub = await nc.jetstream().subscribe(subject, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                msg = await sub.next_msg(timeout=0.2)
            except NatsTimeout:
                continue
            found.append(json.loads(msg.data))
    finally:
        await nc.close()


def test_a_stage_change_runs_the_rules_effects(api: httpx.Client, stack: DevStack, tenant: dict[str, str]) -> None:
    pipeline = make_pipeline(api, tenant, "Auto", STAGES)
    ids = stage_ids(pipeline)
    new_owner = str(uuid.uuid4())
    with HookServer() as hook:
        rule = _rule(api, tenant, pipeline["id"], {
            "name": "Offer made", "trigger": {"event": "stage_entered", "stageId": ids["Offer"]},
            "actions": [{"setField": {"field": "forecastCategory", "value": "commit"}},
                        {"setField": {"field": "customFields.reviewed", "value": True}},
                        {"assignOwner": {"ownerId": new_owner}},
                        {"createTask": {"subject": "Follow up", "dueInHours": 24}},
                        {"notify": {"message": "An offer went out"}},
                        {"webhook": {"url": hook.url}}]})
        left = _rule(api, tenant, pipeline["id"], {
            "name": "Left new", "trigger": {"event": "stage_left", "stageId": ids["New"]},
            "actions": [{"setField": {"field": "description", "value": "qualified"}}]})
        deal = make_deal(api, tenant, "Automated", pipelineId=pipeline["id"], amount="1500", currency="EUR")
        notified: list[dict[str, Any]] = []

        async def move_and_listen() -> None:
            listener = asyncio.create_task(_collect(stack, "crm.pipelines.automation.notify", 10.0, notified))
            await asyncio.sleep(0.5)
            await asyncio.to_thread(lambda: api.post(f"/v1/deals/{deal['id']}/move-stage", headers=h(tenant),
                                                     json={"stageId": ids["Offer"]}).raise_for_status())
            while not notified and not listener.done():
                await asyncio.sleep(0.1)
            listener.cancel()

        asyncio.run(move_and_listen())

        def changed() -> dict[str, Any] | None:
            got: dict[str, Any] = api.get(f"/v1/deals/{deal['id']}", headers=h(tenant)).json()["data"]
            done = got["ownerId"] == new_owner and got["forecastCategory"] == "commit" and got["description"] == "qualified"
            return got if done else None

        got = wait_for(changed)
        assert got["customFields"] == {"reviewed": True} and got["stageId"] == ids["Offer"]
        wait_for(lambda: hook.received)
        call = hook.received[0]
        assert call["body"]["deal"]["id"] == deal["id"] and call["body"]["rule"]["id"] == rule["id"]
        assert call["headers"]["x-crm-rule-id"] == rule["id"]
        assert call["body"]["trigger"]["toStageId"] == ids["Offer"]
    assert notified and notified[0]["data"]["dealId"] == deal["id"]
    # Actions run in order: the notification goes to the owner the rule has just assigned.
    assert notified[0]["data"]["recipientIds"] == [new_owner] and notified[0]["data"]["message"] == "An offer went out"
    run = wait_for(lambda: _last_run(api, tenant, pipeline["id"], rule["id"]))
    assert [(o["type"], o["status"]) for o in run["outcomes"]] == [
        ("set_field", "done"), ("set_field", "done"), ("assign_owner", "done"), ("create_task", "done"),
        ("notify", "done"), ("webhook", "done")]
    # The task exists in the activities service, linked to the deal.
    tasks = api.get(f"/v1/activities?dealId={deal['id']}&type=task", headers=h(tenant)).json()["data"]
    assert len(tasks) == 1 and tasks[0]["dealId"] == deal["id"]
    assert run["outcomes"][0]["changes"] == {"forecastCategory": {"from": "", "to": "commit"}}
    assert run["status"] == "completed" and run["dealId"] == deal["id"]
    assert wait_for(lambda: _last_run(api, tenant, pipeline["id"], left["id"]))["status"] == "completed"


def test_webhooks_never_reach_private_or_metadata_addresses(api: httpx.Client, tenant: dict[str, str]) -> None:
    pipeline = make_pipeline(api, tenant, "Guarded", STAGES)
    ids = stage_ids(pipeline)
    rule = _rule(api, tenant, pipeline["id"], {
        "name": "Leaky", "trigger": {"event": "stage_entered", "stageId": ids["Won"]},
        "actions": [{"webhook": {"url": "http://169.254.169.254/latest/meta-data/"}},
                    {"webhook": {"url": "http://10.0.0.5:8080/internal"}},
                    {"webhook": {"url": "http://[fd00:ec2::254]/"}}]})
    deal = make_deal(api, tenant, "Won deal", pipelineId=pipeline["id"])
    # The dry run says so ...
    r = api.post(f"/v1/pipelines/{pipeline['id']}/automation/{rule['id']}/test", headers=h(tenant),
                 json={"dealId": deal["id"]})
    assert r.status_code == 200
    assert [o["status"] for o in r.json()["data"]["outcomes"]] == ["refused"] * 3
    # ... and the real run refuses them too.
    api.post(f"/v1/deals/{deal['id']}/move-stage", headers=h(tenant), json={"stageId": ids["Won"]}).raise_for_status()
    run = wait_for(lambda: _last_run(api, tenant, pipeline["id"], rule["id"]))
    assert run["status"] == "failed"
    details = [o["detail"] for o in run["outcomes"]]
    assert "metadata" in details[0] and "private" in details[1] and "metadata" in details[2], details
    assert all(o["status"] == "failed" for o in run["outcomes"])


def test_a_dry_run_changes_nothing(api: httpx.Client, tenant: dict[str, str]) -> None:
    pipeline = make_pipeline(api, tenant, "Dry", STAGES)
    ids = stage_ids(pipeline)
    owner = str(uuid.uuid4())
    with HookServer() as hook:
        # Disabled, so only the dry run acts (a disabled rule can still be tested).
        rule = _rule(api, tenant, pipeline["id"], {
            "name": "Would", "enabled": False, "trigger": {"event": "stage_entered", "stageId": ids["Offer"]},
            "actions": [{"setField": {"field": "amount", "value": "2000"}},
                        {"setField": {"field": "currency", "value": "XXX"}},
                        {"assignOwner": {"ownerId": owner}},
                        {"createTask": {"subject": "Call"}},
                        {"notify": {"message": "hi"}},
                        {"webhook": {"url": hook.url}}]})
        deal = make_deal(api, tenant, "Untouched", pipelineId=pipeline["id"], stageId=ids["Offer"], amount="10",
                         currency="EUR")
        before = api.get(f"/v1/deals/{deal['id']}", headers=h(tenant)).json()["data"]
        hits = len(hook.received)
        r = api.post(f"/v1/pipelines/{pipeline['id']}/automation/{rule['id']}/test", headers=h(tenant),
                     json={"dealId": before["id"]})
        assert r.status_code == 200, r.text
        result = r.json()["data"]
        assert result["dryRun"] is True and result["matched"] is True and "Offer" in result["reason"]
        assert [(o["type"], o["status"]) for o in result["outcomes"]] == [
            ("set_field", "would_apply"), ("set_field", "refused"), ("assign_owner", "would_apply"),
            ("create_task", "would_apply"), ("notify", "would_apply"), ("webhook", "would_apply")]
        assert result["outcomes"][0]["changes"] == {"amount": {"from": before["amount"], "to": "2000.00"}}
        assert "currency" in result["outcomes"][1]["detail"]
        time.sleep(0.5)
        assert len(hook.received) == hits  # no webhook call
    after = api.get(f"/v1/deals/{deal['id']}", headers=h(tenant)).json()["data"]
    assert after == before
    history = api.get(f"/v1/deals/{deal['id']}/history", headers=h(tenant)).json()["data"]
    assert len(history) == 1
    # A deal elsewhere does not match; an unknown deal is a 422 on dealId.
    elsewhere = make_deal(api, tenant, "Elsewhere", pipelineId=pipeline["id"], stageId=ids["New"])
    r = api.post(f"/v1/pipelines/{pipeline['id']}/automation/{rule['id']}/test", headers=h(tenant),
                 json={"dealId": elsewhere["id"]})
    assert r.json()["data"]["matched"] is False
    r = api.post(f"/v1/pipelines/{pipeline['id']}/automation/{rule['id']}/test", headers=h(tenant),
                 json={"dealId": str(uuid.uuid4())})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "dealId"


def test_idle_rules_fire_once_per_stay(api: httpx.Client, stack: DevStack, tenant: dict[str, str]) -> None:
    pipeline = make_pipeline(api, tenant, "Idle", STAGES)
    ids = stage_ids(pipeline)
    stuck = make_deal(api, tenant, "Stuck", pipelineId=pipeline["id"], stageId=ids["Offer"])
    fresh = make_deal(api, tenant, "Fresh", pipelineId=pipeline["id"], stageId=ids["Offer"])
    # Entered two days ago. (Moved back before the rule exists: the check remembers how far it
    # has looked, and real stage entries are never in the past.)
    sql(stack, "UPDATE deals.deals SET stage_entered_at = now() - interval '49 hours' WHERE id = $1", uuid.UUID(stuck["id"]))
    rule = _rule(api, tenant, pipeline["id"], {
        "name": "Stuck offers", "trigger": {"event": "stage_idle", "stageId": ids["Offer"], "idleHours": 48},
        "actions": [{"setField": {"field": "forecastCategory", "value": "omitted"}}]})
    wait_for(lambda: api.get(f"/v1/deals/{stuck['id']}", headers=h(tenant)).json()["data"]["forecastCategory"] == "omitted")
    time.sleep(2.5)  # two more periodic checks
    assert api.get(f"/v1/deals/{fresh['id']}", headers=h(tenant)).json()["data"]["forecastCategory"] == ""
    runs = sql(stack, "SELECT count(*) AS n FROM pipelines.automation_runs WHERE rule_id = $1", uuid.UUID(rule["id"]))
    assert runs[0]["n"] == 1
    # The dry run explains the match.
    r = api.post(f"/v1/pipelines/{pipeline['id']}/automation/{rule['id']}/test", headers=h(tenant),
                 json={"dealId": stuck["id"]})
    assert r.json()["data"]["matched"] is True and "49" in r.json()["data"]["reason"]


def test_a_redelivered_event_runs_nothing_twice(api: httpx.Client, stack: DevStack, tenant: dict[str, str]) -> None:
    pipeline = make_pipeline(api, tenant, "Once", STAGES)
    ids = stage_ids(pipeline)
    with HookServer() as hook:
        _rule(api, tenant, pipeline["id"], {"name": "Hook", "trigger": {"event": "stage_entered", "stageId": ids["Offer"]},
                                            "actions": [{"webhook": {"url": hook.url}}]})
        deal = make_deal(api, tenant, "Once", pipelineId=pipeline["id"])
        events: list[dict[str, Any]] = []

        async def move_and_capture() -> None:
            listener = asyncio.create_task(_collect(stack, "crm.deals.deal.stage_changed", 10.0, events))
            await asyncio.sleep(0.5)
            await asyncio.to_thread(lambda: api.post(f"/v1/deals/{deal['id']}/move-stage", headers=h(tenant),
                                                     json={"stageId": ids["Offer"]}).raise_for_status())
            while not [e for e in events if e["subject"] == deal["id"]] and not listener.done():
                await asyncio.sleep(0.1)
            listener.cancel()

        asyncio.run(move_and_capture())
        wait_for(lambda: hook.received)
        event = next(e for e in events if e["subject"] == deal["id"])

        async def redeliver() -> None:
            # Same event id, new message id: past JetStream's duplicate window, as after a long outage.
            nc = await nats.connect(stack.nats_url)
            await nc.jetstream().publish("crm.deals.deal.stage_changed", json.dumps(event).encode(),
                                         headers={"Nats-Msg-Id": str(uuid.uuid4())})
            await nc.close()

        asyncio.run(redeliver())
        time.sleep(2.0)
        assert len(hook.received) == 1
