"""A CSV import larger than one chunk: rows are checked and loaded chunk by chunk, in one transaction."""

from __future__ import annotations

import time

import httpx

from services.contacts.domain import IMPORT_CHUNK
from tests.integration.test_contacts_rest import h


def _finished(api: httpx.Client, tenant: dict[str, str], job_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job: dict[str, object] = api.get(f"/v1/contacts/import/{job_id}", headers=h(tenant)).json()["data"]
        if job["status"] in ("completed", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError("the import did not finish")


def test_a_file_of_several_chunks_loads_every_good_row_once_and_reports_the_rest_in_row_order(
        api: httpx.Client, tenant: dict[str, str]) -> None:
    stored = api.post("/v1/contacts", headers=h(tenant), json={"firstName": "Stored", "email": "stored@ex.com"})
    assert stored.status_code == 201, stored.text
    rows = 2 * IMPORT_CHUNK + 500
    lines = [f"Imp{i},Row,imp{i}@ex.com" for i in range(1, rows + 1)]
    lines[2 * IMPORT_CHUNK + 99] = "Late,Row,not-an-email"  # in the last chunk
    lines[IMPORT_CHUNK + 9] = "Again,Row,stored@ex.com"  # a stored contact's email, in the second chunk
    lines[9] = "Bad,Row,also bad"  # in the first chunk
    lines[2 * IMPORT_CHUNK + 199] = "Twice,Row,imp5@ex.com"  # repeats row 5
    body = "First Name,Last Name,Email\n" + "\n".join(lines) + "\n"
    r = api.post("/v1/contacts/import?skipDuplicates=true", headers={**h(tenant), "content-type": "text/csv"},
                 content=body)
    assert r.status_code == 202, r.text
    job = _finished(api, tenant, r.json()["data"]["jobId"])
    assert job["status"] == "completed", job
    assert job["counts"] == {"total": rows, "succeeded": rows - 4, "failed": 4}
    errors = job["errors"]
    assert isinstance(errors, list)
    assert [(e["row"], e["field"], e.get("code", "")) for e in errors] == [
        (10, "email", "INVALID"), (IMPORT_CHUNK + 10, "email", "DUPLICATE"), (2 * IMPORT_CHUNK + 100, "email", "INVALID"),
        (2 * IMPORT_CHUNK + 200, "email", "DUPLICATE")]
    page = api.get("/v1/contacts?limit=1", headers=h(tenant)).json()
    assert page["meta"]["pagination"]["total"] == rows - 4 + 1  # and the stored contact
    for email in ("imp1@ex.com", f"imp{IMPORT_CHUNK + 1}@ex.com", f"imp{rows}@ex.com", "imp5@ex.com"):
        found = api.get(f"/v1/contacts?email={email}", headers=h(tenant)).json()
        assert found["meta"]["pagination"]["total"] == 1, email
