"""The rest of the Contacts surface through real Envoy: the endpoints and route pairs the first
walk-through does not reach, and what a careless or hostile client sends."""

from __future__ import annotations

import io
import uuid

import httpx
from openpyxl import Workbook, load_workbook

from tests.integration.conftest import sign_up
from tests.integration.test_contacts_rest import h
from tests.polling import until


def _create(api: httpx.Client, t: dict[str, str], **fields: object) -> str:
    r = api.post("/v1/contacts", headers=h(t), json=fields)
    assert r.status_code == 201, r.text
    return str(r.json()["data"]["id"])


def _wait_job(api: httpx.Client, t: dict[str, str], job_id: str) -> dict[str, object]:
    job: dict[str, object] = until(lambda: api.get(f"/v1/contacts/import/{job_id}", headers=h(t)).json()["data"],
                                   lambda j: j["status"] in ("completed", "failed"), timeout=10)
    assert job["status"] in ("completed", "failed"), f"import job did not finish: {job}"
    return job


def test_bulk_delete_is_not_single_delete(api: httpx.Client, tenant: dict[str, str]) -> None:
    a, b = _create(api, tenant, firstName="A"), _create(api, tenant, firstName="B")
    missing = str(uuid.uuid4())
    r = api.request("DELETE", "/v1/contacts/bulk", headers=h(tenant), json={"ids": [a, missing, b]})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [x["success"] for x in data["results"]] == [True, False, True]
    assert data["succeeded"] == 2 and data["failed"] == 1
    assert api.get(f"/v1/contacts/{a}", headers=h(tenant)).status_code == 404
    # `bulk` is not an id: a single delete of it is a bad id, not a bulk delete.
    r = api.request("DELETE", "/v1/contacts/bulk", headers=h(tenant), json={"ids": ["not-a-uuid"]})
    assert r.json()["data"]["results"][0]["success"] is False


def test_bulk_limit_is_enforced(api: httpx.Client, tenant: dict[str, str]) -> None:
    r = api.post("/v1/contacts/bulk", headers=h(tenant), json={"items": [{"firstName": "x"}] * 501})
    assert r.status_code in (400, 422) and r.json()["errors"][0]["field"] == "items"
    assert api.get("/v1/contacts", headers=h(tenant)).json()["meta"]["pagination"]["total"] == 0


def test_import_job_route_is_not_get_contact(api: httpx.Client, tenant: dict[str, str]) -> None:
    r = api.get(f"/v1/contacts/import/{uuid.uuid4()}", headers=h(tenant))
    assert r.status_code == 404 and "job" in r.json()["errors"][0]["message"].lower()
    r = api.get("/v1/contacts/validate", headers=h(tenant))  # only POST exists
    assert r.status_code in (400, 404, 405)


def test_relationship_update_and_delete(api: httpx.Client, tenant: dict[str, str]) -> None:
    a, b = _create(api, tenant, firstName="A"), _create(api, tenant, firstName="B")
    rel = api.post(f"/v1/contacts/{a}/relationships", headers=h(tenant),
                   json={"relatedContactId": b, "type": "colleague"}).json()["data"]
    r = api.put(f"/v1/contacts/{a}/relationships/{rel['id']}", headers=h(tenant),
                json={"relatedContactId": b, "type": "manager", "notes": "reports to B"})
    assert r.status_code == 200 and r.json()["data"]["type"] == "manager"
    r = api.put(f"/v1/contacts/{a}/relationships/{rel['id']}", headers=h(tenant),
                json={"relatedContactId": b, "type": "archenemy"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "type"
    assert api.delete(f"/v1/contacts/{a}/relationships/{rel['id']}", headers=h(tenant)).status_code == 200
    assert api.get(f"/v1/contacts/{a}/relationships", headers=h(tenant)).json()["data"] == []
    assert api.delete(f"/v1/contacts/{a}/relationships/{rel['id']}", headers=h(tenant)).status_code == 404


def test_relationship_to_another_tenants_contact_is_refused(api: httpx.Client, tenant: dict[str, str]) -> None:
    other = sign_up(api)
    theirs = _create(api, other, firstName="Theirs")
    mine = _create(api, tenant, firstName="Mine")
    r = api.post(f"/v1/contacts/{mine}/relationships", headers=h(tenant),
                 json={"relatedContactId": theirs, "type": "colleague"})
    assert r.status_code in (404, 422)
    assert api.get(f"/v1/contacts/{mine}/relationships", headers=h(tenant)).json()["data"] == []


def test_validate_reports_fields_and_saves_nothing(api: httpx.Client, tenant: dict[str, str]) -> None:
    _create(api, tenant, firstName="Eve", email="eve@x.com")
    r = api.post("/v1/contacts/validate", headers=h(tenant), json={"email": "nope", "phone": "12"})
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["valid"] is False and {e["field"] for e in data["errors"]} >= {"email"}
    r = api.post("/v1/contacts/validate", headers=h(tenant), json={"firstName": "Eve", "email": "EVE@x.com"})
    data = r.json()["data"]
    assert data["valid"] is True and data["normalized"]["email"] == "eve@x.com"
    assert len(data["possibleDuplicateIds"]) == 1
    assert api.get("/v1/contacts", headers=h(tenant)).json()["meta"]["pagination"]["total"] == 1


def test_mass_assignment_of_id_and_tenant_is_ignored(api: httpx.Client, tenant: dict[str, str]) -> None:
    forced_id = str(uuid.uuid4())
    other = sign_up(api)
    r = api.post("/v1/contacts", headers=h(tenant),
                 json={"id": forced_id, "tenantId": other["x-tenant-id"], "firstName": "M", "createdBy": forced_id})
    assert r.status_code == 201
    made = r.json()["data"]
    assert made["id"] != forced_id and made.get("createdBy") != forced_id
    assert api.get(f"/v1/contacts/{made['id']}", headers=h(other)).status_code == 404
    r = api.put(f"/v1/contacts/{made['id']}", headers=h(tenant), json={"id": forced_id, "firstName": "N"})
    assert r.status_code == 200 and r.json()["data"]["id"] == made["id"]


def test_malformed_json_and_bad_ids(api: httpx.Client, tenant: dict[str, str]) -> None:
    r = api.post("/v1/contacts", headers={**h(tenant), "content-type": "application/json"}, content=b'{"firstName": ')
    assert r.status_code == 400 and r.json()["success"] is False
    r = api.get("/v1/contacts/not-a-uuid", headers=h(tenant))
    assert r.status_code in (400, 404) and r.json()["success"] is False
    r = api.get("/v1/contacts?page=-1", headers=h(tenant))
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "page"


def test_oversized_body_is_refused_in_the_envelope(api: httpx.Client, tenant: dict[str, str]) -> None:
    r = api.post("/v1/contacts", headers=h(tenant), json={"firstName": "x" * (2 * 1024 * 1024)})
    assert r.status_code == 413 and r.json()["success"] is False


def test_xlsx_import_as_multipart_and_xlsx_export(api: httpx.Client, tenant: dict[str, str]) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["First Name", "Last Name", "Email"])
    ws.append(["Xia", "Lo", "xia@x.com"])
    ws.append(["Yan", "Mo", "broken"])
    buf = io.BytesIO()
    wb.save(buf)
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    r = api.post("/v1/contacts/import", headers=h(tenant), files={"file": ("people.xlsx", buf.getvalue(), xlsx)})
    assert r.status_code == 202, r.text
    job = _wait_job(api, tenant, r.json()["data"]["jobId"])
    assert job["counts"] == {"total": 2, "succeeded": 1, "failed": 1}
    r = api.get("/v1/contacts/export?format=xlsx", headers=h(tenant))
    assert r.status_code == 200 and r.headers["content-type"].startswith(xlsx)
    rows = list(load_workbook(io.BytesIO(r.content)).active.iter_rows(values_only=True))
    assert any("xia@x.com" in row for row in rows)


def test_import_of_a_non_spreadsheet_is_refused(api: httpx.Client, tenant: dict[str, str]) -> None:
    r = api.post("/v1/contacts/import", headers={**h(tenant), "content-type": "image/png"}, content=b"\x89PNG....")
    assert r.status_code in (400, 415, 422) and r.json()["success"] is False


def test_sub_lists_answer_from_their_services(api: httpx.Client, tenant: dict[str, str]) -> None:
    # Activities and deals are deployed: a contact's sub-lists come from them (their own tests
    # cover the contents; test_deals_grpc.py covers the not-deployed answer, contacts hosted alone).
    cid = _create(api, tenant, firstName="S")
    for sub in ("activities", "deals"):
        r = api.get(f"/v1/contacts/{cid}/{sub}", headers=h(tenant))
        assert r.status_code == 200 and r.json()["data"] == [], (sub, r.text)
        assert api.get(f"/v1/contacts/{uuid.uuid4()}/{sub}", headers=h(tenant)).status_code == 404
