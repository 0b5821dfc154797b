"""The bench's floor answers searches as the search service does: the same statements in the
same order give the same JSON, so what `make bench` sets beside the REST rows is the same work
without the edge, gRPC and the kernel."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bench.floor import Floor
from bench.search import wait_consumers_idle
from services.devstack import DevStack
from services.kernel.db import asyncpg_dsn
from tests.integration.search_support import contact, ids, post, until, user_id
from tests.integration.test_search_rest import word


@pytest.fixture()
async def floor(stack: DevStack) -> AsyncIterator[httpx.AsyncClient]:
    app = Floor(asyncpg_dsn(stack.database_url), pool_size=2)
    await app.open()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://floor") as client:
        yield client
    await app.close()


async def test_the_floor_answers_searches_as_the_service_does(api: httpx.Client, tenant: dict[str, str],
                                                              floor: httpx.AsyncClient, stack: DevStack) -> None:
    stem = word()
    made = [contact(api, tenant, firstName=f"{stem}{i}", lastName="Smith", email=f"{stem}{i}@example.com")["id"]
            for i in range(3)]
    made.append(contact(api, tenant, firstName="Ann", lastName=f"{stem}x", company="Smith Inc")["id"])
    until(lambda: ids(post(api, tenant, "global", {"query": stem}).json()["data"]), lambda v: len(v) == 4)
    # Found is not settled: the index (and its vocabulary) must not change between the two reads.
    await wait_consumers_idle(stack.nats_url, timeout=30, names=("search",))
    headers = {"X-Tenant-ID": tenant["x-tenant-id"], "X-User-ID": user_id(tenant)}
    typo = stem[0] + stem[2] + stem[1] + stem[3:] + "x"  # two letters swapped: found through look-alike words
    for path, body in (
        ("autocomplete", {"query": stem[:5], "limit": 10}),
        ("autocomplete", {"query": f"ann {stem[:3]}", "limit": 2}),
        ("global", {"query": f"{stem}1 smith", "limit": 20}),
        ("global", {"query": "smith", "limit": 2}),
        ("global", {"query": typo, "limit": 20}),
        ("global", {"query": word() + "q", "limit": 20}),
    ):
        service: dict[str, Any] = post(api, tenant, path, body).json()
        r = await floor.post(f"/v1/search/{path}", json=body, headers=headers)
        assert r.status_code == 200
        ours: dict[str, Any] = r.json()
        assert ours["data"] == service["data"], json.dumps({"request": [path, body], "floor": ours["data"],
                                                            "service": service["data"]}, indent=1)
        assert ours["meta"]["pagination"] == service["meta"]["pagination"], (path, body)
    # The cases above found something (the comparison is not between two empty answers).
    assert made[3] in ids(post(api, tenant, "global", {"query": typo}).json()["data"])
    assert len(post(api, tenant, "autocomplete", {"query": stem[:5]}).json()["data"]) == 4


async def test_the_floor_answers_contact_reads_as_the_service_does(api: httpx.Client, tenant: dict[str, str],
                                                                   floor: httpx.AsyncClient) -> None:
    made = [contact(api, tenant, firstName=f"Fl{i}", lastName="Oor", email=f"fl{i}@example.com")["id"] for i in range(3)]
    headers = {"X-Tenant-ID": tenant["x-tenant-id"], "X-User-ID": user_id(tenant)}
    auth = {k: v for k, v in tenant.items() if k != "refresh"}
    got = (await floor.get(f"/v1/contacts/{made[0]}", headers=headers)).json()["data"]
    theirs = api.get(f"/v1/contacts/{made[0]}", headers=auth).json()["data"]
    # The same row (the floor renders empty address and custom fields more tersely).
    assert {k: v for k, v in got.items() if k not in ("address", "customFields")} == {
        k: v for k, v in theirs.items() if k not in ("address", "customFields")}
    for limit in (2, 50):  # a page with a next one (counted) and the last page (not counted)
        service = api.get(f"/v1/contacts?limit={limit}", headers=auth).json()
        ours = (await floor.get(f"/v1/contacts?limit={limit}", headers=headers)).json()
        assert [c["id"] for c in ours["data"]] == [c["id"] for c in service["data"]]
        assert ours["meta"]["pagination"] == {k: v for k, v in service["meta"]["pagination"].items()
                                              if k != "nextPageToken"}
