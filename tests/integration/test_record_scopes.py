"""Record ownership: a sales rep sees every contact but changes only their own; the database
enforces it, so REST and gRPC callers alike are bound."""

from __future__ import annotations

import uuid

import httpx

from services.devstack import DevStack
from tests.integration.conftest import mint
from tests.integration.test_contacts_rest import h


def test_rep_reads_all_but_changes_only_own_contacts(api: httpx.Client, stack: DevStack,
                                                     tenant: dict[str, str]) -> None:
    t = tenant["x-tenant-id"]
    admins = api.post("/v1/contacts", headers=h(tenant), json={"firstName": "Owned", "lastName": "ByAdmin"})
    theirs = admins.json()["data"]["id"]
    rep = {"authorization": f"Bearer {mint(stack, tenant_id=t, roles=['sales_rep'])}", "x-tenant-id": t}
    assert api.get(f"/v1/contacts/{theirs}", headers=rep).status_code == 200
    r = api.put(f"/v1/contacts/{theirs}?updateMask=title", headers=rep, json={"title": "Hijacked"})
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "OUT_OF_SCOPE"
    assert api.delete(f"/v1/contacts/{theirs}", headers=rep).status_code == 403
    assert api.get(f"/v1/contacts/{theirs}", headers=h(tenant)).json()["data"].get("title", "") == ""
    # Their own record: created owned by them, and theirs to change and delete.
    mine = api.post("/v1/contacts", headers=rep, json={"firstName": "Mine"})
    assert mine.status_code == 201
    mine_id = mine.json()["data"]["id"]
    assert api.put(f"/v1/contacts/{mine_id}?updateMask=title", headers=rep, json={"title": "Rep"}).status_code == 200
    # Giving a record away, or creating one for someone else, is outside an `:own` scope.
    r = api.post("/v1/contacts", headers=rep, json={"firstName": "ForAdmin", "ownerId": str(uuid.uuid4())})
    assert r.status_code == 403
    assert api.delete(f"/v1/contacts/{mine_id}", headers=rep).status_code == 200


def test_own_scoped_reader_sees_only_own_records(api: httpx.Client, stack: DevStack, tenant: dict[str, str]) -> None:
    t = tenant["x-tenant-id"]
    api.post("/v1/contacts", headers=h(tenant), json={"firstName": "AdminOnly"})
    me = str(uuid.uuid4())
    own = {"authorization": f"Bearer {mint(stack, tenant_id=t, user_id=me, perms=['contacts:read:own', 'contacts:write:own'])}",
           "x-tenant-id": t}
    api.post("/v1/contacts", headers=own, json={"firstName": "Mine"})
    listed = api.get("/v1/contacts", headers=own).json()
    assert [c["firstName"] for c in listed["data"]] == ["Mine"] and listed["meta"]["pagination"]["total"] == 1
    team = {"authorization": f"Bearer {mint(stack, tenant_id=t, perms=['contacts:read:team'], team=[me])}",
            "x-tenant-id": t}
    assert [c["firstName"] for c in api.get("/v1/contacts", headers=team).json()["data"]] == ["Mine"]
    assert len(api.get("/v1/contacts", headers=h(tenant)).json()["data"]) == 2
