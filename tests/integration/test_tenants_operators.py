"""Operators (made by the CLI) create, list, read, update, suspend and delete tenants through Envoy."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import nats
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from services.devstack import DevStack
from tests.integration.conftest import sign_up
from tests.integration.tenants_support import (
    BILLING,
    PASSWORD,
    claims,
    create_tenant,
    h,
    login,
    new_operator,
    run_operator_cli,
)


@pytest.fixture(scope="module")
def operator(stack: DevStack, api: httpx.Client) -> dict[str, str]:
    return new_operator(stack, api)


def test_cli_makes_an_operator_who_logs_in_normally(stack: DevStack, api: httpx.Client,
                                                     operator: dict[str, str]) -> None:
    token = claims(operator)
    assert token["roles"] == ["platform_operator"] and token["perms"] == ["platform:*"]
    r = api.get(f"/v1/tenants/{operator['x-tenant-id']}", headers=h(operator))
    assert r.status_code == 200 and r.json()["data"]["platform"] is True
    # A second operator joins the same platform tenant; the same address twice is refused.
    email = f"ops2-{uuid.uuid4().hex[:6]}@platform.example"
    first = run_operator_cli(stack, "create", "--email", email, "--password", PASSWORD)
    assert first.returncode == 0, first.stderr
    again = run_operator_cli(stack, "create", "--email", email, "--password", PASSWORD)
    assert again.returncode == 1 and "already" in again.stderr
    weak = run_operator_cli(stack, "create", "--email", "x@y.example", "--password", "short")
    assert weak.returncode == 2 and "--password" in weak.stderr


def test_sign_up_never_makes_an_operator(api: httpx.Client, tenant: dict[str, str]) -> None:
    assert "platform:*" not in claims(tenant)["perms"]
    r = api.post("/v1/auth/register", json={"email": f"x-{uuid.uuid4().hex[:6]}@e.example", "password": PASSWORD,
                                           "tenantName": "Sneaky", "roles": ["platform_operator"]})
    assert r.status_code == 201
    assert r.json()["data"]["user"]["roles"] == ["admin"]


def test_operator_creates_lists_reads_and_updates(api: httpx.Client, operator: dict[str, str]) -> None:
    created, admin_email = create_tenant(api, operator, name="Initech", plan="professional")
    tenant = created["tenant"]
    assert tenant["name"] == "Initech" and tenant["plan"] == "professional" and tenant["status"] == "active"
    assert tenant["tier"] == "premium" and created["admin"]["roles"] == ["admin"]
    # The first admin signs in like a signed-up one, into the new tenant.
    admin = login(api, admin_email)
    assert admin["x-tenant-id"] == tenant["id"] and claims(admin)["tier"] == "premium"

    r = api.get(f"/v1/tenants/{tenant['id']}", headers=h(operator))
    assert r.status_code == 200 and r.json()["data"]["name"] == "Initech"
    r = api.get("/v1/tenants?search=initech&limit=100", headers=h(operator))
    assert r.status_code == 200
    assert tenant["id"] in [x["id"] for x in r.json()["data"]]
    assert r.json()["meta"]["pagination"]["total"] >= 1
    r = api.get("/v1/tenants?plan=professional&sort=-createdAt&limit=100", headers=h(operator))
    assert all(x["plan"] == "professional" for x in r.json()["data"])

    r = api.put(f"/v1/tenants/{tenant['id']}", headers=h(operator), json={"name": "Initech AG"})
    assert r.status_code == 200 and r.json()["data"]["name"] == "Initech AG"
    assert r.json()["data"]["plan"] == "professional"


def test_operator_input_is_validated(api: httpx.Client, operator: dict[str, str]) -> None:
    r = api.post("/v1/tenants", headers=h(operator), json={"name": "", "plan": "gold", "adminEmail": "nope",
                                                           "adminPassword": "x"})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} >= {"name", "plan", "adminEmail", "adminPassword"}
    assert api.get(f"/v1/tenants/{uuid.uuid4()}", headers=h(operator)).status_code == 404
    assert api.get("/v1/tenants/not-a-uuid", headers=h(operator)).status_code == 400
    assert api.get("/v1/tenants?status=gone", headers=h(operator)).status_code == 400
    r = api.put(f"/v1/tenants/{operator['x-tenant-id']}", headers=h(operator), json={"status": "suspended"})
    assert r.status_code == 409 and r.json()["errors"][0]["code"] == "PLATFORM_TENANT"


def test_suspend_ends_tokens_and_logins_then_reactivate(api: httpx.Client, operator: dict[str, str]) -> None:
    created, admin_email = create_tenant(api, operator)
    tid = created["tenant"]["id"]
    admin = login(api, admin_email)
    assert api.get("/v1/contacts", headers=h(admin)).status_code == 200

    r = api.put(f"/v1/tenants/{tid}", headers=h(operator), json={"status": "suspended", "statusReason": "unpaid"})
    assert r.status_code == 200
    body = r.json()["data"]
    assert body["status"] == "suspended" and body["statusReason"] == "unpaid" and body["suspendedAt"]
    assert api.get("/v1/contacts", headers=h(admin)).status_code == 401
    assert api.post("/v1/auth/token/refresh", json={"refreshToken": admin["refresh"]}).status_code == 401
    r = api.post("/v1/auth/login", json={"email": admin_email, "password": PASSWORD})
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "TENANT_INACTIVE"
    # Suspended tenants are still listed (deleted ones are not, unless asked for).
    r = api.get("/v1/tenants?status=suspended&limit=100", headers=h(operator))
    assert tid in [x["id"] for x in r.json()["data"]]

    r = api.put(f"/v1/tenants/{tid}", headers=h(operator), json={"status": "active"})
    assert r.status_code == 200 and r.json()["data"]["status"] == "active"
    # Tokens carry whole-second `iat`s: one issued in the second of the suspension counts as
    # issued before it (refused, the safe side), so sign in again a second later.
    time.sleep(1.1)
    admin = login(api, admin_email)
    assert api.get("/v1/contacts", headers=h(admin)).status_code == 200


def test_delete_is_soft_and_final(api: httpx.Client, operator: dict[str, str]) -> None:
    created, admin_email = create_tenant(api, operator, name="Doomed")
    tid = created["tenant"]["id"]
    admin = login(api, admin_email)
    assert api.delete(f"/v1/tenants/{tid}", headers=h(operator)).status_code == 200
    # Every token of the tenant stops working, in every service, and nobody signs in again.
    deadline = time.monotonic() + 10
    while api.get("/v1/contacts", headers=h(admin)).status_code != 401 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert api.get("/v1/contacts", headers=h(admin)).status_code == 401
    assert api.post("/v1/auth/login", json={"email": admin_email, "password": PASSWORD}).status_code == 403
    r = api.get(f"/v1/tenants/{tid}", headers=h(operator))
    assert r.status_code == 200 and r.json()["data"]["status"] == "deleted" and r.json()["data"]["deletedAt"]
    listed = [x["id"] for x in api.get("/v1/tenants?limit=100", headers=h(operator)).json()["data"]]
    assert tid not in listed
    deleted = api.get("/v1/tenants?status=deleted&limit=100", headers=h(operator)).json()["data"]
    assert tid in [x["id"] for x in deleted]
    r = api.put(f"/v1/tenants/{tid}", headers=h(operator), json={"status": "active"})
    assert r.status_code == 409


def test_tenant_admin_with_star_cannot_act_as_operator(api: httpx.Client, tenant: dict[str, str],
                                                        operator: dict[str, str]) -> None:
    assert "*" in claims(tenant)["perms"]
    assert api.get("/v1/tenants", headers=h(tenant)).status_code == 403
    r = api.post("/v1/tenants", headers=h(tenant), json={"name": "X", "adminEmail": "a@b.example",
                                                         "adminPassword": PASSWORD})
    assert r.status_code == 403
    own = tenant["x-tenant-id"]
    assert api.put(f"/v1/tenants/{own}", headers=h(tenant), json={"plan": "enterprise"}).status_code == 403
    assert api.delete(f"/v1/tenants/{own}", headers=h(tenant)).status_code == 403
    # Its own tenant it may read; the operator's platform tenant, or any other, is not found.
    r = api.get(f"/v1/tenants/{own}", headers=h(tenant))
    assert r.status_code == 200 and r.json()["data"]["id"] == own and r.json()["data"]["platform"] is False
    assert api.get(f"/v1/tenants/{operator['x-tenant-id']}", headers=h(tenant)).status_code == 404
    other = sign_up(api)
    assert api.get(f"/v1/tenants/{other['x-tenant-id']}", headers=h(tenant)).status_code == 404


async def _events_about(stack: DevStack, tenant_id: str, wanted: int, timeout: float = 15.0) -> list[str]:
    """Types of the `crm.tenants.>` events that carry `tenant_id`, read back from JetStream."""
    nc = await nats.connect(stack.nats_url)
    found: list[str] = []
    try:
        sub = await nc.jetstream().subscribe("crm.tenants.>", ordered_consumer=True,
                                             config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL))
        deadline = asyncio.get_running_loop().time() + timeout
        while len(found) < wanted and asyncio.get_running_loop().time() < deadline:
            try:
                msg = await sub.next_msg(timeout=1)
            except TimeoutError:
                continue
            event = json.loads(msg.data)
            if event["tenantid"] == tenant_id:
                found.append(event["type"])
    finally:
        await nc.close()
    return found


async def test_every_change_is_announced(stack: DevStack, api: httpx.Client, operator: dict[str, str]) -> None:
    created, email = create_tenant(api, operator)
    tid = created["tenant"]["id"]
    admin = login(api, email)
    assert api.put(f"/v1/tenants/{tid}/config", headers=h(admin), json={"timezone": "Asia/Tokyo"}).status_code == 200
    assert api.put(f"/v1/tenants/{tid}/features", headers=h(admin),
                   json={"features": {"workflows": False}}).status_code == 200
    assert api.put(f"/v1/tenants/{tid}/limits", headers=h(admin), json={"limits": {"users": 9}}).status_code == 200
    assert api.put(f"/v1/tenants/{tid}/billing", headers=h(admin), json=BILLING).status_code == 200
    assert api.post(f"/v1/tenants/{tid}/billing/upgrade", headers=h(admin), json={"plan": "professional"}).status_code == 200
    assert api.put(f"/v1/tenants/{tid}", headers=h(operator), json={"name": "Renamed"}).status_code == 200
    assert api.put(f"/v1/tenants/{tid}", headers=h(operator), json={"status": "suspended"}).status_code == 200
    assert api.put(f"/v1/tenants/{tid}", headers=h(operator), json={"status": "active"}).status_code == 200
    assert api.delete(f"/v1/tenants/{tid}", headers=h(operator)).status_code == 200
    expected = ["crm.tenants.tenant.created", "crm.tenants.config.changed", "crm.tenants.features.changed",
                "crm.tenants.limits.changed", "crm.tenants.billing.updated", "crm.tenants.plan.upgraded",
                "crm.tenants.tenant.updated", "crm.tenants.tenant.suspended", "crm.tenants.tenant.reactivated",
                "crm.tenants.tenant.deleted"]
    assert await _events_about(stack, tid, len(expected)) == expected
