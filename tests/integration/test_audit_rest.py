"""The audit trail as a compliance officer uses it, through Envoy: changes, sign-ins and reads of
personal data are recorded once each, the chain detects tampering, purges keep it verifiable."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import asyncpg
import httpx
import nats

from services.devstack import DevStack
from services.kernel.db import asyncpg_dsn
from tests.integration.conftest import mint, sign_up
from tests.integration.test_contacts_rest import h
from tests.polling import until


def _logs(api: httpx.Client, t: dict[str, str], query: str) -> list[dict[str, Any]]:
    r = api.get(f"/v1/audit/logs?{query}", headers=h(t))
    assert r.status_code == 200, r.text
    logs: list[dict[str, Any]] = r.json()["data"]
    return logs


def test_contact_changes_are_recorded_once_with_before_and_after(api: httpx.Client, tenant: dict[str, str]) -> None:
    cid = api.post("/v1/contacts", headers=h(tenant), json={"firstName": "Aud", "title": "Dev"}).json()["data"]["id"]
    api.put(f"/v1/contacts/{cid}?updateMask=title", headers=h(tenant), json={"title": "CTO"})
    api.delete(f"/v1/contacts/{cid}", headers=h(tenant))
    logs = until(lambda: _logs(api, tenant, f"entityId={cid}&sort=sequence"),
                  lambda v: len([x for x in v if x["category"] == "data"]) >= 3)
    data = [x for x in logs if x["category"] == "data"]
    assert [x["action"] for x in data] == ["created", "updated", "deleted"]
    updated = data[1]
    assert {"field": "title", "before": "Dev", "after": "CTO"} in updated["changes"]
    assert updated["actorId"] and updated["actorType"] == "user" and updated["requestId"]
    assert updated["eventType"] == "crm.contacts.contact.updated" and updated["entityType"] == "contact"
    one = api.get(f"/v1/audit/logs/{updated['id']}", headers=h(tenant)).json()["data"]
    assert one["hash"] == updated["hash"] and one["previousHash"]
    other = sign_up(api)
    assert api.get(f"/v1/audit/logs/{updated['id']}", headers=h(other)).status_code == 404
    found = api.post("/v1/audit/logs/search", headers=h(tenant), json={
        "filters": [{"field": "entityId", "operator": "eq", "value": cid},
                    {"field": "action", "operator": "in", "value": ["created", "deleted"]}]}).json()["data"]
    assert sorted(x["action"] for x in found) == ["created", "deleted"]
    report = api.get(f"/v1/audit/reports/changes?entityType=contact&entityId={cid}", headers=h(tenant)).json()["data"]
    assert [x["action"] for x in report["changes"]] == ["created", "updated", "deleted"]


def test_sign_ins_failures_and_reads_reach_the_reports(api: httpx.Client, stack: DevStack) -> None:
    email = f"officer-{uuid.uuid4().hex[:6]}@example.com"
    r = api.post("/v1/auth/register", json={"email": email, "password": "correct-horse-battery",
                                           "firstName": "O", "lastName": "F", "tenantName": "Reg"})
    tenant_id = r.json()["data"]["tenantId"]
    assert api.post("/v1/auth/login", json={"email": email, "password": "wrong-password-123"}).status_code == 401
    token = api.post("/v1/auth/login", json={"email": email, "password": "correct-horse-battery"}).json()["data"]
    t = {"authorization": f"Bearer {token['accessToken']}", "x-tenant-id": tenant_id}
    cid = api.post("/v1/contacts", headers=t, json={"firstName": "Private"}).json()["data"]["id"]
    for _ in range(3):
        assert api.get(f"/v1/contacts/{cid}", headers=t).status_code == 200
    report = until(lambda: api.get("/v1/audit/reports/compliance", headers=t).json()["data"],
                    lambda v: v["signIns"] >= 1 and v["failedSignIns"] >= 1)
    assert report["signIns"] >= 1 and report["failedSignIns"] == 1
    assert report["failedSignInsByUser"][0]["count"] == 1
    access = until(lambda: api.get(f"/v1/audit/reports/data-access?entityId={cid}", headers=t).json()["data"],
                    lambda v: sum(a["count"] for a in v["accesses"]) >= 3)
    read = access["accesses"][0]
    assert read["entityId"] == cid and read["access"] == "read" and read["entityType"] == "contact"
    assert read["count"] == 3  # three reads within a second travel as one event, counted per record
    # A role without audit permissions sees nothing of it.
    ro = {"authorization": f"Bearer {mint(stack, tenant_id=tenant_id, roles=['read_only'])}", "x-tenant-id": tenant_id}
    assert api.get("/v1/audit/logs", headers=ro).status_code == 403


def test_explicit_entries_and_validation(api: httpx.Client, tenant: dict[str, str]) -> None:
    r = api.post("/v1/audit/logs", headers=h(tenant), json={
        "action": "document.handed_over", "entityType": "contract", "entityId": "C-17",
        "changes": [{"field": "holder", "before": "legal", "after": "customer"}], "metadata": {"channel": "post"}})
    assert r.status_code == 201
    entry = r.json()["data"]
    assert int(entry["sequence"]) >= 1 and entry["metadata"] == {"channel": "post"} and entry["source"] == "api"
    r = api.post("/v1/audit/logs", headers=h(tenant), json={"action": "", "entityType": "x"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "action"
    r = api.get("/v1/audit/reports/compliance?from=yesterday", headers=h(tenant))
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "from"


def test_chain_verifies_and_detects_tampering(api: httpx.Client, stack: DevStack, tenant: dict[str, str]) -> None:
    for i in range(3):
        api.post("/v1/audit/logs", headers=h(tenant), json={"action": f"step{i}", "entityType": "probe"})
    verdict = api.get("/v1/audit/verify", headers=h(tenant)).json()["data"]
    assert verdict["valid"] is True and verdict["checked"] >= 3
    victim = _logs(api, tenant, "action=step1")[0]

    async def tamper() -> None:
        # Someone with database access rewrites history behind the application's back.
        conn = await asyncpg.connect(asyncpg_dsn(stack.migration_database_url))
        await conn.execute("SET session_replication_role = replica")  # triggers off
        await conn.execute("UPDATE audit.entries SET actor_id = 'someone-else' WHERE id = $1", uuid.UUID(victim["id"]))
        await conn.close()

    import asyncio

    asyncio.run(tamper())
    verdict = api.get("/v1/audit/verify", headers=h(tenant)).json()["data"]
    assert verdict["valid"] is False and verdict["firstInvalidId"] == victim["id"]


def test_the_application_cannot_rewrite_entries(stack: DevStack, api: httpx.Client, tenant: dict[str, str]) -> None:
    import asyncio

    entry = api.post("/v1/audit/logs", headers=h(tenant), json={"action": "kept", "entityType": "probe"}).json()["data"]

    async def attempt() -> list[str]:
        conn = await asyncpg.connect(asyncpg_dsn(stack.database_url))  # the services' own role
        errors = []
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", tenant["x-tenant-id"])
            for sql in ("UPDATE audit.entries SET action = 'x' WHERE id = $1", "DELETE FROM audit.entries WHERE id = $1"):
                try:
                    async with conn.transaction():
                        await conn.execute(sql, uuid.UUID(entry["id"]))
                except asyncpg.InsufficientPrivilegeError as exc:
                    errors.append(str(exc))
        await conn.close()
        return errors

    assert len(asyncio.run(attempt())) == 2


def test_export_as_a_job_then_download(api: httpx.Client, tenant: dict[str, str]) -> None:
    api.post("/v1/audit/logs", headers=h(tenant), json={"action": "=cmd()", "entityType": "probe"})
    r = api.post("/v1/audit/reports/export", headers=h(tenant), json={"format": "csv"})
    assert r.status_code == 202
    job_id = r.json()["data"]["jobId"]
    job = until(lambda: api.get(f"/v1/audit/reports/export/{job_id}", headers=h(tenant)).json()["data"],
                 lambda v: v["status"] in ("completed", "failed"))
    assert job["status"] == "completed" and job["counts"]["total"] >= 1
    r = api.get(f"/v1/audit/reports/export/{job_id}/download", headers=h(tenant))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "'=cmd()" in r.text and "=cmd()," not in r.text.replace("'=cmd()", "")
    r = api.post("/v1/audit/reports/export", headers=h(tenant), json={"format": "xml"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "format"


def test_retention_bounds_and_purge_keeps_the_chain_verifiable(api: httpx.Client, stack: DevStack,
                                                                tenant: dict[str, str]) -> None:
    policies = {p["category"]: p["retentionDays"] for p in
                api.get("/v1/audit/retention-policies", headers=h(tenant)).json()["data"]["policies"]}
    assert policies["security"] >= 365
    r = api.put("/v1/audit/retention-policies", headers=h(tenant), json={"policies": [{"category": "security",
                                                                                     "retentionDays": 30}]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "policies[0].retentionDays"
    r = api.put("/v1/audit/retention-policies", headers=h(tenant), json={"policies": [{"category": "data",
                                                                                     "retentionDays": 60}]})
    assert r.status_code == 200
    # An old data event (90 days ago) and a fresh one.
    old_id = str(uuid.uuid4())

    async def publish() -> None:
        nc = await nats.connect(stack.nats_url)
        when = (dt.datetime.now(dt.UTC) - dt.timedelta(days=90)).isoformat()
        event = {"specversion": "1.0", "id": str(uuid.uuid4()), "type": "crm.tests.record.updated", "time": when,
                 "tenantid": tenant["x-tenant-id"], "subject": old_id, "source": "crm/tests", "data": {}}
        js = nc.jetstream()
        await js.publish("crm.tests.record.updated", json.dumps(event).encode())
        await js.publish("crm.tests.record.updated", json.dumps(event).encode())  # a replay: recorded once
        await nc.close()

    import asyncio

    asyncio.run(publish())
    assert len(until(lambda: _logs(api, tenant, f"entityId={old_id}"), bool)) == 1
    api.post("/v1/audit/logs", headers=h(tenant), json={"action": "fresh", "entityType": "probe"})
    preview = api.post("/v1/audit/data-purge", headers=h(tenant), json={"dryRun": True})
    assert preview.status_code == 202
    r = api.post("/v1/audit/data-purge", headers=h(tenant), json={})
    job_id = r.json()["data"]["jobId"]
    until(lambda: _logs(api, tenant, "entityType=purge&action=completed"), bool)
    assert _logs(api, tenant, f"entityId={old_id}") == []
    purge = _logs(api, tenant, "entityType=purge&action=completed")[0]
    assert purge["metadata"]["removed"]["data"] == 1 and purge["entityId"] == job_id
    verdict = api.get("/v1/audit/verify", headers=h(tenant)).json()["data"]
    assert verdict["valid"] is True


def test_lineage_of_imported_and_merged_contacts(api: httpx.Client, tenant: dict[str, str]) -> None:
    csv_body = "First Name,Last Name,Email\nLin,Eage,lin@x.com\n"
    job_id = api.post("/v1/contacts/import", headers={**h(tenant), "content-type": "text/csv"},
                      content=csv_body).json()["data"]["jobId"]
    until(lambda: api.get(f"/v1/contacts/import/{job_id}", headers=h(tenant)).json()["data"]["status"],
           lambda s: s == "completed")
    imported = api.get("/v1/contacts?email=lin@x.com", headers=h(tenant)).json()["data"][0]["id"]
    r = api.get(f"/v1/audit/data-lineage?entityType=contact&entityId={imported}", headers=h(tenant))
    assert r.status_code == 200, r.text
    lineage = until(lambda: api.get(f"/v1/audit/data-lineage?entityType=contact&entityId={imported}",
                                     headers=h(tenant)).json()["data"], lambda v: v["origin"] == "import")
    assert lineage["origin"] == "import"
    assert {"entityId": job_id, "relation": "imported_by"}.items() <= lineage["upstream"][0].items()
    dup = api.post("/v1/contacts", headers=h(tenant), json={"firstName": "Lin", "lastName": "Eage",
                                                           "email": "LIN@x.com"}).json()["data"]["id"]
    api.post("/v1/contacts/deduplicate", headers=h(tenant), json={"dryRun": False})
    survivor, gone = (imported, dup) if api.get(f"/v1/contacts/{imported}", headers=h(tenant)).status_code == 200 \
        else (dup, imported)
    merged = until(lambda: api.get(f"/v1/audit/data-lineage?entityType=contact&entityId={gone}",
                                    headers=h(tenant)).json()["data"], lambda v: bool(v["downstream"]))
    assert merged["downstream"][0]["entityId"] == survivor and merged["downstream"][0]["relation"] == "merged_into"
    r = api.get("/v1/audit/data-lineage?entityType=contact", headers=h(tenant))
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "entityId"
