"""Search obeys tenant and role: another tenant's records are never found (the database keeps
them apart), a type the caller may not read is left out, and `:own`/`:team` read scopes keep
only those owners' records, in every endpoint."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx

from services.devstack import DevStack
from services.kernel.db import asyncpg_dsn
from tests.integration.conftest import mint, sign_up
from tests.integration.search_support import cloudevent, contact, found, ids, post, publish, record
from tests.integration.test_contacts_rest import h
from tests.integration.test_search_rest import word
from tests.polling import until


def _as(stack: DevStack, tenant: dict[str, str], user: str, perms: list[str], **claims: Any) -> dict[str, str]:
    token = mint(stack, tenant_id=tenant["x-tenant-id"], user_id=user, perms=perms, **claims)
    return {"authorization": f"Bearer {token}", "x-tenant-id": tenant["x-tenant-id"]}


def test_another_tenant_finds_nothing(api: httpx.Client, stack: DevStack, tenant: dict[str, str]) -> None:
    name = word()
    mine = contact(api, tenant, firstName="Secret", lastName=name.capitalize(), email=f"s@{name}.com")
    deal = record("deal", name=f"{name} merger", status="open", tags=[name])
    publish(stack, cloudevent(tenant["x-tenant-id"], "deal", "created", deal))
    until(lambda: found(api, tenant, name), lambda v: len(v) == 2)
    other = sign_up(api)
    # The other tenant sends an event about a record with the same id: it lands in its own index.
    publish(stack, cloudevent(other["x-tenant-id"], "deal", "created", {**deal, "name": "Theirs", "tags": []}))
    until(lambda: found(api, other, "theirs"), lambda v: len(v) == 1)
    assert found(api, tenant, name, "deals")[0]["title"] == f"{name} merger"
    assert found(api, other, name) == []
    assert found(api, other, name, "contacts") == [] and found(api, other, name, "deals") == []
    r = post(api, other, "advanced", {"filters": [{"field": "id", "operator": "in", "value": [mine["id"], deal["id"]]}]})
    assert ids(r.json()["data"]) == [deal["id"]]
    assert r.json()["data"][0]["title"] == "Theirs"
    r = post(api, other, "faceted", {"query": name})
    facets = {f["field"]: f["values"] for f in r.json()["data"]["facets"]}
    assert r.json()["data"]["results"] == [] and facets["type"] == [] and facets["tags"] == []
    assert post(api, other, "autocomplete", {"query": name[:6]}).json()["data"] == []
    # Swap two neighbouring letters that differ (swapping equal ones would be no typo at all).
    i = next(k for k in range(2, len(name) - 1) if name[k] != name[k + 1])
    typo = name[:i] + name[i + 1] + name[i] + name[i + 2:]
    # The vocabulary behind did-you-mean is kept up asynchronously: give it a moment on a busy machine.
    assert until(lambda: post(api, tenant, "suggestions", {"query": typo}).json()["data"]["suggestions"], bool), \
        "the owner gets one"
    terms = post(api, other, "suggestions", {"query": typo}).json()["data"]
    assert terms["suggestions"] == [] and terms["terms"][0]["alternatives"] == []
    status = api.get("/v1/search/status", headers=h(other)).json()["data"]
    assert status["documents"] == 1

    async def database() -> tuple[int, int, int, int]:
        # The services' own role, as the search service's transactions set it up.
        conn = await asyncpg.connect(asyncpg_dsn(stack.database_url))
        try:
            async with conn.transaction():
                await conn.execute("SELECT set_config('app.tenant_id', $1, true)", other["x-tenant-id"])
                view = await conn.fetchval("SELECT count(*) FROM search.tenant_documents WHERE id = $1",
                                           uuid.UUID(mine["id"]))
                table = await conn.fetchval("SELECT count(*) FROM search.documents WHERE id = $1", uuid.UUID(mine["id"]))
                words = await conn.fetchval("SELECT count(*) FROM search.terms WHERE term = $1", name)
            async with conn.transaction():
                nobody = await conn.fetchval("SELECT count(*) FROM search.tenant_documents")
            return view, table, words, nobody
        finally:
            await conn.close()

    assert asyncio.run(database()) == (0, 0, 0, 0)


def test_read_scopes_decide_what_each_user_finds(api: httpx.Client, stack: DevStack, tenant: dict[str, str]) -> None:
    name = word()
    u1, u2, u3 = (str(uuid.uuid4()) for _ in range(3))
    contacts = {u: contact(api, tenant, firstName=f"C{i}", lastName=name, ownerId=u)["id"]
                for i, u in enumerate((u1, u2, u3))}
    deals = {u: record("deal", u, name=f"{name} deal", status="open") for u in (u1, u2)}
    publish(stack, *[cloudevent(tenant["x-tenant-id"], "deal", "created", d) for d in deals.values()])
    until(lambda: found(api, tenant, name), lambda v: len(v) == 5)

    own = _as(stack, tenant, u1, ["contacts:read:own", "deals:read"])
    results = found(api, own, name)
    assert sorted(ids(results)) == sorted([contacts[u1], *(d["id"] for d in deals.values())])
    assert ids(found(api, own, name, "contacts")) == [contacts[u1]]
    facets = post(api, own, "faceted", {"query": name, "facets": ["type", "ownerId"]}).json()["data"]["facets"]
    assert {v["value"]: v["count"] for v in facets[0]["values"]} == {"contact": 1, "deal": 2}
    assert {v["value"]: v["count"] for v in facets[1]["values"]} == {u1: 2, u2: 1}
    r = post(api, own, "advanced", {"filters": [{"field": "ownerId", "operator": "eq", "value": u3}]})
    assert r.json()["data"] == []
    assert ids(post(api, own, "autocomplete", {"query": name[:6], "types": ["contact"]}).json()["data"]) == [contacts[u1]]

    team = _as(stack, tenant, u1, ["contacts:read:team"], team=[u1, u2])
    assert sorted(ids(found(api, team, name))) == sorted([contacts[u1], contacts[u2]])
    assert post(api, team, "global", {"query": name, "types": ["deal"]}).json()["data"] == []
    assert api.post("/v1/search/deals", headers=team, json={"query": name}).status_code == 403

    deals_only = _as(stack, tenant, u3, ["deals:read:own"])
    assert found(api, deals_only, name) == []  # u3 owns no deal; contacts are not theirs to read
    assert api.post("/v1/search/contacts", headers=deals_only, json={"query": name}).status_code == 403

    nothing = _as(stack, tenant, u1, [])
    assert found(api, nothing, name) == []
    assert post(api, nothing, "suggestions", {"query": name}).json()["data"]["terms"][0]["known"] is False
    assert api.get("/v1/search/config", headers=nothing).status_code == 200
    for method, path in (("GET", "/v1/search/status"), ("POST", "/v1/search/reindex"), ("PUT", "/v1/search/config")):
        r = api.request(method, path, headers=nothing, json={})
        assert r.status_code == 403, (path, r.text)
        assert r.json()["errors"][0]["code"] == "MISSING_PERMISSION"

    rep = _as(stack, tenant, u2, sorted({"contacts:read", "deals:read", "contacts:write:own"}))
    assert len(found(api, rep, name)) == 5
