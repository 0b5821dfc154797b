"""Input the schemathesis sweep (tests/fuzz) found answered 500 or 200: now a clear 4xx naming the field."""

from __future__ import annotations

import httpx

from tests.integration.users_support import h


def _errors(r: httpx.Response, status: int) -> list[dict[str, str]]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is False and body["data"] is None
    errors: list[dict[str, str]] = body["errors"]
    return errors


def test_an_object_where_a_map_holds_scalars_is_400_naming_the_map(api: httpx.Client, tenant: dict[str, str]) -> None:
    # Envoy's transcoder turns these into bytes protobuf refuses; grpc answered UNKNOWN, a 500.
    tid = tenant["x-tenant-id"]
    errors = _errors(api.put(f"/v1/tenants/{tid}/features", headers=h(tenant), json={"features": {"beta": {}}}), 400)
    assert [(e["code"], e["field"]) for e in errors] == [("INVALID_TYPE", "features")]
    errors = _errors(api.put(f"/v1/tenants/{tid}/limits", headers=h(tenant), json={"limits": {"users": {}}}), 400)
    assert [(e["code"], e["field"]) for e in errors] == [("INVALID_TYPE", "limits")]
    # Nothing was changed, and sound values still work.
    r = api.put(f"/v1/tenants/{tid}/limits", headers=h(tenant), json={"limits": {"users": 0}})
    assert r.status_code == 200, r.text


def test_a_nul_character_is_400_naming_the_field(api: httpx.Client, tenant: dict[str, str]) -> None:
    # PostgreSQL cannot store or compare text with NUL: the query failed, a 500.
    errors = _errors(api.post("/v1/contacts", headers=h(tenant), json={"firstName": "A\u0000da"}), 400)
    assert [(e["code"], e["field"]) for e in errors] == [("INVALID_CHARACTER", "firstName")]
    errors = _errors(api.get("/v1/contacts", headers=h(tenant), params={"search": "a\u0000"}), 400)
    assert [(e["code"], e["field"]) for e in errors] == [("INVALID_CHARACTER", "search")]
    errors = _errors(api.get("/v1/contacts/export", headers=h(tenant), params={"lifecycleStage": "\u0000"}), 400)
    assert [(e["code"], e["field"]) for e in errors] == [("INVALID_CHARACTER", "lifecycleStage")]
    assert api.get("/v1/contacts", headers=h(tenant), params={"search": "Ada"}).status_code == 200


def test_an_export_with_a_bad_filter_answers_the_error_not_an_empty_file(api: httpx.Client,
                                                                          tenant: dict[str, str]) -> None:
    # The filter failed once the download had begun: 200 with an empty body.
    r = api.get("/v1/contacts/export", headers=h(tenant), params={"ownerId": "not-a-uuid"})
    assert r.status_code in (400, 422), (r.status_code, r.headers, r.text)
    assert [e["field"] for e in _errors(r, r.status_code)] == ["ownerId"]
    assert r.headers["content-type"] == "application/json" and "content-disposition" not in r.headers
    assert api.post("/v1/contacts", headers=h(tenant), json={"firstName": "Exa"}).status_code == 201
    r = api.get("/v1/contacts/export", headers=h(tenant))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="contacts.csv"'
    assert "Exa" in r.text
    r = api.get("/v1/contacts/export", headers=h(tenant), params={"search": "nobody-matches-this"})
    assert r.status_code == 200 and r.text.count("\n") == 1  # the header row only
