"""Rate limits on the whole stack: the auth service's tokens carry the tier, the edge counts each
user's calls per class in the stack's rate-limit service (limits of the stack: conftest)."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx

from services.devstack import DevStack
from tests.integration.conftest import sign_up


def h(t: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in t.items() if k != "refresh"}


def budget(resp: httpx.Response) -> tuple[str, int]:
    return resp.headers["x-ratelimit-limit"], int(resp.headers["x-ratelimit-remaining"])


async def _set_plan(url: str, tenant: str, plan: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("UPDATE auth.tenants SET plan = $1 WHERE id = $2", plan, uuid.UUID(tenant))
    finally:
        await conn.close()


def test_each_user_has_a_budget_of_their_tier_and_one_for_bulk_calls(api: httpx.Client) -> None:
    ann, bob = sign_up(api), sign_up(api)
    first = api.get("/v1/contacts", headers=h(ann))
    assert first.status_code == 200, first.text
    limit, left = budget(first)
    assert limit == '100000, 100000;w=3600;name="standard"'  # a new tenant's plan is standard
    assert budget(api.get("/v1/contacts", headers=h(ann)))[1] == left - 1
    assert budget(api.get("/v1/contacts", headers=h(bob)))[1] == left  # bob counts apart
    bulk = api.post("/v1/contacts/bulk", headers=h(ann), json={"items": [{"firstName": "Cy"}]})
    assert bulk.status_code == 200, bulk.text
    assert budget(bulk) == ('50000, 50000;w=3600;name="bulk"', 49999)
    assert budget(api.get("/v1/contacts", headers=h(ann)))[1] == left - 2  # bulk calls count apart


def test_a_premium_plan_gets_the_premium_tier(api: httpx.Client, stack: DevStack) -> None:
    admin = sign_up(api)
    asyncio.run(_set_plan(stack.migration_database_url, admin["x-tenant-id"], "professional"))
    me = api.get("/v1/auth/userinfo", headers=h(admin))
    assert budget(me)[0].endswith('name="standard"')  # the old token still says standard
    r = api.post("/v1/auth/token/refresh", json={"refreshToken": admin["refresh"]})
    assert r.status_code == 200, r.text
    token = {"authorization": f"Bearer {r.json()['data']['accessToken']}", "x-tenant-id": admin["x-tenant-id"]}
    resp = api.get("/v1/contacts", headers=token)
    assert resp.status_code == 200, resp.text
    assert budget(resp)[0] == '200000, 200000;w=3600;name="premium"'
