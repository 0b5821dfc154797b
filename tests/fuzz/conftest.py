"""A stack of its own for the schemathesis sweep, and a tenant seeded with one record of each kind
so that path parameters can name something that exists (otherwise the sweep would meet 404s only).

The sweep changes and deletes what it reaches, so operations that destroy (DELETE, deactivate)
get records of their own, and the admin whose token drives the sweep is never a path parameter:
deactivating or re-roling that user would end the token and turn the rest of the sweep into 401s.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from services.devstack import DevStack, free_port

PASSWORD = "correct-horse-battery"
# The sweep sends thousands of calls in minutes: far above them, so no 429 hides an answer.
RATE_LIMITS = "standard=10000000/h,premium=10000000/h,api_integration=10000000/h,bulk=10000000/h"


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    data = Path(tmp_path_factory.mktemp("fuzz"))
    s = DevStack(data, http_port=free_port(), grpc_port=free_port(), nats_port=free_port(), admin_port=free_port(),
                 rate_limits=RATE_LIMITS)
    s.start()
    yield s
    s.stop()


@dataclass
class Seeded:
    """The sweep's tenant: the admin's headers and, per operation, values for its path parameters."""

    base_url: str
    email: str
    tenant_id: str
    admin_id: str
    token: str
    refresh_token: str  # of a session of its own: refreshing rotates it
    headers: dict[str, str]
    # (METHOD or "*", path template) -> {parameter: value}; the first matching entry wins.
    path_values: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def values_for(self, method: str, path: str) -> dict[str, str]:
        for m, p, values in self.path_values:
            if p == path and m in (method.upper(), "*"):
                return values
        return {}


def _created(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code in (200, 201, 202), r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 40, 40)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def seeded(fuzz_stack: DevStack) -> Seeded:
    with httpx.Client(base_url=fuzz_stack.base_url, timeout=30) as c:
        email = f"fuzz-{uuid.uuid4().hex[:8]}@example.com"
        tenant = _created(c.post("/v1/auth/register", json={
            "email": email, "password": PASSWORD, "firstName": "Fay", "lastName": "Fuzz", "tenantName": "Fuzz"}))
        r = c.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        token = r.json()["data"]["accessToken"]
        tid = tenant["tenantId"]
        c.headers.update({"Authorization": f"Bearer {token}", "X-Tenant-ID": tid})
        admin_id = c.get("/v1/auth/userinfo").json()["data"]["sub"]
        refresh_token = c.post("/v1/auth/login", json={"email": email, "password": PASSWORD}).json()["data"]["refreshToken"]

        def contact(first: str) -> str:
            return str(_created(c.post("/v1/contacts", json={
                "firstName": first, "lastName": "Seed", "email": f"{first.lower()}-{uuid.uuid4().hex[:6]}@example.com"}))["id"])

        ann, bob, cid, gone = contact("Ann"), contact("Bob"), contact("Cid"), contact("Gone")
        rel = _created(c.post(f"/v1/contacts/{ann}/relationships", json={"relatedContactId": bob, "type": "colleague"}))["id"]
        rel_gone = _created(c.post(f"/v1/contacts/{ann}/relationships", json={"relatedContactId": cid, "type": "friend"}))["id"]
        import_job = _created(c.post("/v1/contacts/import", headers={"Content-Type": "text/csv"},
                                     content=b"firstName,lastName,email\nIvy,Import,ivy@example.com\n"))["jobId"]

        task = _created(c.post("/v1/activities/tasks", json={"subject": "Call back", "contactId": ann}))["id"]
        task_gone = _created(c.post("/v1/activities/tasks", json={"subject": "Obsolete"}))["id"]
        # A calendar on a closed port: enough for a sync job id (the job itself fails, later).
        _created(c.put("/v1/activities/calendar/connection",
                       json={"url": "http://127.0.0.1:9/cal/", "username": "fuzz", "password": "secret"}))
        sync_job = _created(c.post("/v1/activities/calendar/sync", json={}))["jobId"]

        role = _created(c.post("/v1/roles", json={"key": "fuzz_writer", "name": "Writer",
                                                   "permissions": ["contacts:read", "contacts:write"]}))
        role_gone = _created(c.post("/v1/roles", json={"key": "fuzz_gone", "name": "Gone", "permissions": ["contacts:read"]}))

        def user(first: str) -> str:
            return str(_created(c.post("/v1/users", json={
                "email": f"{first.lower()}-{uuid.uuid4().hex[:6]}@example.com", "password": PASSWORD,
                "firstName": first, "lastName": "Seed", "roles": ["sales_rep"]}))["id"])

        uma, ulf = user("Uma"), user("Ulf")
        _created(c.post(f"/v1/users/{uma}/roles", json={"roleId": role["key"]}))
        _created(c.post(f"/v1/users/{uma}/avatar", headers={"Content-Type": "image/png"}, content=_png()))
        team = _created(c.post("/v1/users/teams", json={"name": "Fuzzers"}))["id"]
        team_gone = _created(c.post("/v1/users/teams", json={"name": "Gone"}))["id"]
        _created(c.post(f"/v1/users/teams/{team}/members", json={"userId": uma}))

        export_job = _created(c.post("/v1/audit/reports/export", json={"format": "csv"}))["jobId"]
        audit_id = ""
        deadline = time.monotonic() + 20  # audit entries arrive over NATS
        while not audit_id and time.monotonic() < deadline:
            rows = c.get("/v1/audit/logs", params={"limit": 1}).json()["data"]
            audit_id = rows[0]["id"] if rows else ""
            time.sleep(0.2)
        assert audit_id, "no audit entry arrived"

    s = Seeded(base_url=fuzz_stack.base_url, email=email, tenant_id=tid, admin_id=admin_id, token=token, refresh_token=refresh_token,
               headers={"Authorization": f"Bearer {token}", "X-Tenant-ID": tid})
    s.path_values = [
        ("DELETE", "/v1/contacts/{id}", {"id": gone}),
        ("*", "/v1/contacts/{id}", {"id": ann}),
        ("*", "/v1/contacts/{id}/activities", {"id": ann}),
        ("*", "/v1/contacts/{id}/deals", {"id": ann}),
        ("*", "/v1/contacts/{id}/relationships", {"id": ann}),
        ("DELETE", "/v1/contacts/{id}/relationships/{rel_id}", {"id": ann, "rel_id": rel_gone}),
        ("*", "/v1/contacts/{id}/relationships/{rel_id}", {"id": ann, "rel_id": rel}),
        ("*", "/v1/contacts/import/{job_id}", {"job_id": import_job}),
        ("DELETE", "/v1/activities/{id}", {"id": task_gone}),
        ("*", "/v1/activities/{id}", {"id": task}),
        ("*", "/v1/activities/{id}/reschedule", {"id": task}),
        ("*", "/v1/activities/calendar/sync/{job_id}", {"job_id": sync_job}),
        ("*", "/v1/audit/logs/{id}", {"id": audit_id}),
        ("*", "/v1/audit/reports/export/{job_id}", {"job_id": export_job}),
        ("*", "/v1/audit/reports/export/{job_id}/download", {"job_id": export_job}),
        ("DELETE", "/v1/roles/{id}", {"id": role_gone["id"]}),
        ("*", "/v1/roles/{id}", {"id": role["id"]}),
        ("DELETE", "/v1/users/{id}", {"id": ulf}),
        ("DELETE", "/v1/users/teams/{id}", {"id": team_gone}),
        ("*", "/v1/users/teams/{id}", {"id": team}),
        ("*", "/v1/users/teams/{id}/members", {"id": team}),
        ("*", "/v1/users/teams/{id}/members/{user_id}", {"id": team, "user_id": uma}),
        ("*", "/v1/users/{id}/roles/{role_id}", {"id": uma, "role_id": role["key"]}),
    ]
    # Every other /v1/users/{id}... names the seeded user, every /v1/tenants/{id}... the own tenant.
    for suffix in ("", "/activate", "/avatar", "/deactivate", "/permissions", "/preferences", "/profile", "/roles"):
        s.path_values.append(("*", f"/v1/users/{{id}}{suffix}", {"id": uma}))
    for suffix in ("", "/billing", "/billing/upgrade", "/config", "/features", "/invoices", "/limits", "/usage"):
        s.path_values.append(("*", f"/v1/tenants/{{id}}{suffix}", {"id": tid}))
    return s
