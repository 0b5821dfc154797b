"""Contacts and auth through real Envoy, as a REST client sees them."""

from __future__ import annotations

import time
import uuid

import httpx

from tests.integration.conftest import sign_up


def h(t: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in t.items() if k != "refresh"}


def test_create_get_update_delete(api: httpx.Client, tenant: dict[str, str]) -> None:
    r = api.post("/v1/contacts", headers=h(tenant), json={"firstName": "Bob", "email": "BOB@Example.com",
                                                          "phone": "+49 151 1234567", "tenantId": str(uuid.uuid4())})
    assert r.status_code == 201
    body = r.json()
    assert body["success"] is True and body["errors"] == []
    contact = body["data"]
    assert contact["email"] == "bob@example.com" and contact["phone"] == "+491511234567"
    got = api.get(f"/v1/contacts/{contact['id']}", headers=h(tenant)).json()["data"]
    assert got["id"] == contact["id"]
    r = api.put(f"/v1/contacts/{contact['id']}?updateMask=title", headers=h(tenant), json={"title": "CTO"})
    assert r.status_code == 200 and r.json()["data"]["title"] == "CTO" and r.json()["data"]["firstName"] == "Bob"
    assert api.delete(f"/v1/contacts/{contact['id']}", headers=h(tenant)).status_code == 200
    r = api.get(f"/v1/contacts/{contact['id']}", headers=h(tenant))
    assert r.status_code == 404 and r.json()["success"] is False and r.json()["errors"][0]["code"] == "NOT_FOUND"


def test_validation_error_is_422_with_field(api: httpx.Client, tenant: dict[str, str]) -> None:
    r = api.post("/v1/contacts", headers=h(tenant), json={"email": "not-an-email"})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} >= {"email"}


def test_list_pages_sorts_and_filters(api: httpx.Client, tenant: dict[str, str]) -> None:
    items = [{"firstName": f"P{i}", "lastName": "Zed", "email": f"p{i}@ex.com", "tags": ["vip"] if i % 2 else []} for i in range(5)]
    r = api.post("/v1/contacts/bulk", headers=h(tenant), json={"items": items + [{"email": "bad"}]})
    assert r.status_code == 200
    results = r.json()["data"]["results"]
    assert [x["success"] for x in results] == [True] * 5 + [False]
    r = api.get("/v1/contacts?limit=2&sort=firstName", headers=h(tenant))
    page = r.json()
    assert [c["firstName"] for c in page["data"]] == ["P0", "P1"]
    assert page["meta"]["pagination"]["total"] == 5 and page["meta"]["pagination"]["hasNext"] is True
    r = api.get("/v1/contacts?tag=vip", headers=h(tenant))
    assert len(r.json()["data"]) == 2
    r = api.post("/v1/contacts/search", headers=h(tenant),
                 json={"filters": [{"field": "email", "operator": "startsWith", "value": "p3"}]})
    assert [c["email"] for c in r.json()["data"]] == ["p3@ex.com"]
    assert api.get("/v1/contacts?limit=1000", headers=h(tenant)).status_code == 400


def test_other_tenant_cannot_see_or_touch(api: httpx.Client, tenant: dict[str, str]) -> None:
    cid = api.post("/v1/contacts", headers=h(tenant), json={"firstName": "Secret"}).json()["data"]["id"]
    other = sign_up(api)
    assert api.get(f"/v1/contacts/{cid}", headers=h(other)).status_code == 404
    assert api.delete(f"/v1/contacts/{cid}", headers=h(other)).status_code == 404
    mixed = {**h(other), "x-tenant-id": tenant["x-tenant-id"]}
    assert api.get(f"/v1/contacts/{cid}", headers=mixed).status_code == 403


def test_import_then_export(api: httpx.Client, tenant: dict[str, str]) -> None:
    csv_body = "First Name,Email\nCara,cara@x.com\nDan,bad-email\n=EVIL,evil@x.com\n"
    r = api.post("/v1/contacts/import", headers={**h(tenant), "content-type": "text/csv"}, content=csv_body)
    assert r.status_code == 202
    job_id = r.json()["data"]["jobId"]
    for _ in range(100):
        job = api.get(f"/v1/contacts/import/{job_id}", headers=h(tenant)).json()["data"]
        if job["status"] in ("completed", "failed"):
            break
        time.sleep(0.1)
    assert job["status"] == "completed"
    assert job["counts"] == {"total": 3, "succeeded": 2, "failed": 1}
    assert job["errors"][0]["row"] == 2 and job["errors"][0]["field"] == "email"
    r = api.get("/v1/contacts/export?format=csv", headers=h(tenant))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "cara@x.com" in r.text and "'=EVIL" in r.text
    r = api.get("/v1/contacts/export?format=pdf", headers=h(tenant))
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "format"


def test_logout_revokes_tokens(api: httpx.Client) -> None:
    t = sign_up(api)
    assert api.get("/v1/auth/userinfo", headers=h(t)).status_code == 200
    assert api.post("/v1/auth/logout", headers=h(t), json={}).status_code == 200
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and api.get("/v1/auth/userinfo", headers=h(t)).status_code != 401:
        time.sleep(0.05)
    assert api.get("/v1/auth/userinfo", headers=h(t)).status_code == 401
    assert api.post("/v1/auth/token/refresh", json={"refreshToken": t["refresh"]}).status_code == 401


def test_refresh_rotates(api: httpx.Client, tenant: dict[str, str]) -> None:
    r = api.post("/v1/auth/token/refresh", json={"refreshToken": tenant["refresh"]})
    assert r.status_code == 200
    assert api.post("/v1/auth/token/refresh", json={"refreshToken": tenant["refresh"]}).status_code == 401


def test_unknown_route_and_missing_token(api: httpx.Client) -> None:
    r = api.get("/v1/nope")
    assert r.status_code == 404 and r.json()["success"] is False
    r = api.get("/v1/contacts")
    assert r.status_code == 401 and r.json()["success"] is False


def test_relationships_and_dedupe(api: httpx.Client, tenant: dict[str, str]) -> None:
    a = api.post("/v1/contacts", headers=h(tenant), json={"firstName": "Ann", "lastName": "Lee", "email": "ann@x.com"}).json()["data"]["id"]
    b = api.post("/v1/contacts", headers=h(tenant), json={"firstName": "Ben", "email": "ben@x.com"}).json()["data"]["id"]
    dup = api.post("/v1/contacts", headers=h(tenant), json={"firstName": "Ann", "email": "ANN@x.com", "title": "CEO"}).json()["data"]["id"]
    r = api.post(f"/v1/contacts/{dup}/relationships", headers=h(tenant), json={"relatedContactId": b, "type": "colleague"})
    assert r.status_code == 201
    assert api.post(f"/v1/contacts/{dup}/relationships", headers=h(tenant), json={"relatedContactId": b, "type": "colleague"}).status_code == 409
    r = api.post("/v1/contacts/deduplicate", headers=h(tenant), json={"dryRun": True})
    groups = r.json()["data"]["groups"]
    assert [sorted(g["contactIds"]) for g in groups] == [sorted([a, dup])]
    r = api.post("/v1/contacts/deduplicate", headers=h(tenant), json={"dryRun": False})
    assert r.json()["data"]["mergedCount"] == 1
    merged = api.get(f"/v1/contacts/{a}", headers=h(tenant)).json()["data"]
    assert merged["title"] == "CEO"
    rels = api.get(f"/v1/contacts/{a}/relationships", headers=h(tenant)).json()["data"]
    assert [x["relatedContactId"] for x in rels] == [b]
