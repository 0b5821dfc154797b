"""A stack of its own for the schemathesis sweep, and a tenant seeded with one record of each kind
so that path parameters can name something that exists (otherwise the sweep would meet 404s only).

The sweep changes and deletes what it reaches, so operations that destroy (DELETE, deactivate)
get records of their own, and the admin whose token drives the sweep is never a path parameter:
deactivating or re-roling that user would end the token and turn the rest of the sweep into 401s.
"""

from __future__ import annotations

import base64
import io
import json
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
    # (METHOD, path template) -> a request body that succeeds, the example schemathesis starts from.
    bodies: dict[tuple[str, str], Any] = field(default_factory=dict)
    # (METHOD, path template) -> query parameters that succeed, as examples.
    queries: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

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
        # A third session, for the operation that ends one; the token's `sid` claim names it.
        ended = c.post("/v1/auth/login", json={"email": email, "password": PASSWORD}).json()["data"]["accessToken"]
        session_gone = json.loads(base64.urlsafe_b64decode(ended.split(".")[1] + "=="))["sid"]

        def contact(first: str) -> str:
            return str(_created(c.post("/v1/contacts", json={
                "firstName": first, "lastName": "Seed", "email": f"{first.lower()}-{uuid.uuid4().hex[:6]}@example.com"}))["id"])

        ann, bob, cid, gone, dan = contact("Ann"), contact("Bob"), contact("Cid"), contact("Gone"), contact("Dan")
        bulk_gone = [contact("Del"), contact("Dora")]
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

        uma, ulf, ute = user("Uma"), user("Ulf"), user("Ute")
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

        sales = _seed_sales(c, contact_id=ann, user_id=uma)

    s = Seeded(base_url=fuzz_stack.base_url, email=email, tenant_id=tid, admin_id=admin_id, token=token, refresh_token=refresh_token,
               headers={"Authorization": f"Bearer {token}", "X-Tenant-ID": tid})
    s.path_values = [
        ("DELETE", "/v1/auth/sessions/{id}", {"id": session_gone}),
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
    s.path_values += sales.path_values
    s.bodies, s.queries = sales.bodies, sales.queries
    s.bodies |= {
        ("PUT", "/v1/contacts/{id}"): {"firstName": "Ann", "lastName": "Seed", "email": "ann.seed@example.com"},
        ("POST", "/v1/contacts/{id}/relationships"): {"relatedContactId": dan, "type": "friend"},
        ("PUT", "/v1/contacts/{id}/relationships/{rel_id}"): {"type": "colleague", "notes": "Met at a fair"},
        ("POST", "/v1/activities"): {"type": "task", "subject": "Send the offer", "contactId": ann},
        ("POST", "/v1/activities/tasks"): {"subject": "Call back", "contactId": ann},
        ("POST", "/v1/activities/notes"): {"body": "Prefers mornings", "contactId": ann},
        ("POST", "/v1/activities/emails"): {"subject": "Pricing", "fromAddress": "me@example.com",
                                            "toAddresses": ["ann@example.com"], "contactId": ann},
        ("POST", "/v1/activities/events"): {"subject": "Demo", "startAt": "2030-01-07T09:00:00Z",
                                            "endAt": "2030-01-07T10:00:00Z"},
        ("PUT", "/v1/activities/{id}"): {"subject": "Call back", "contactId": ann},
        ("PUT", "/v1/activities/{id}/reschedule"): {"dueAt": "2030-01-08T15:00:00Z"},
        ("POST", "/v1/activities/calls"): {"direction": "inbound", "outcome": "voicemail", "durationSeconds": 95,
                                           "contactId": ann},
        ("POST", "/v1/activities/schedule"): {"subject": "Kick-off", "durationMinutes": 45, "from": "2030-01-07T00:00:00Z",
                                              "to": "2030-01-11T00:00:00Z", "contactId": ann},
        ("PUT", "/v1/activities/calendar/connection"): {"url": "http://127.0.0.1:9/cal/", "username": "fuzz",
                                                        "password": "secret"},
        ("POST", "/v1/activities/calendar/sync"): {},
        ("POST", "/v1/contacts"): {"firstName": "Eve", "lastName": "Example", "email": "eve@example.com"},
        ("POST", "/v1/contacts/bulk"): {"items": [{"firstName": "Bo", "lastName": "Bulk", "email": "bo@example.com"}]},
        ("DELETE", "/v1/contacts/bulk"): {"ids": bulk_gone},
        ("POST", "/v1/contacts/validate"): {"firstName": "Val", "lastName": "Id", "email": "val@example.com"},
        ("POST", "/v1/contacts/deduplicate"): {"dryRun": True},
        ("POST", "/v1/contacts/search"): {"query": "seed", "limit": 10},
        ("POST", "/v1/audit/logs"): {"action": "document.signed", "entityType": "contact", "entityId": ann},
        ("POST", "/v1/audit/logs/search"): {"query": "contact", "limit": 10},
        ("POST", "/v1/audit/reports/export"): {"format": "csv"},
        ("POST", "/v1/audit/data-purge"): {"dryRun": True},
        ("PUT", "/v1/audit/retention-policies"): {"policies": [{"category": "data", "retentionDays": 400}]},
        ("POST", "/v1/auth/password/reset"): {"email": "nobody@example.com"},
        ("POST", "/v1/auth/sessions/validate"): {"token": token},
        ("POST", "/v1/roles"): {"key": "fuzz_reader", "name": "Reader", "permissions": ["contacts:read"]},
        ("PUT", "/v1/roles/{id}"): {"name": "Writer", "permissions": ["contacts:read", "contacts:write"]},
        ("POST", "/v1/users"): {"email": "new.user@example.com", "firstName": "New", "lastName": "User",
                                "password": PASSWORD, "roles": ["read_only"]},
        ("PUT", "/v1/users/{id}"): {"firstName": "Uma", "lastName": "Seed"},
        ("PUT", "/v1/users/{id}/profile"): {"title": "Account executive", "timezone": "Europe/Berlin"},
        ("PUT", "/v1/users/{id}/preferences"): {"preferences": {"theme": "dark"}},
        ("POST", "/v1/users/teams"): {"name": "Second team"},
        ("POST", "/v1/users/teams/{id}/members"): {"userId": ute},
        ("PUT", "/v1/tenants/{id}/config"): {"timezone": "Europe/Berlin", "currency": "EUR"},
        ("PUT", "/v1/tenants/{id}/features"): {"features": {"workflows": True}},
        ("PUT", "/v1/tenants/{id}/limits"): {"limits": {"users": 10}},
        ("POST", "/v1/users/{id}/roles"): {"roleId": "read_only"},
        ("PUT", "/v1/users/teams/{id}"): {"name": "Fuzzers", "description": "The sweep's team"},
        ("POST", "/v1/auth/register"): {"email": f"fuzz-reg-{uuid.uuid4().hex[:8]}@example.com",
                                        "password": PASSWORD, "tenantName": "Registered"},
        ("PUT", "/v1/tenants/{id}/billing"): {
            "companyName": "Fuzz GmbH", "billingEmail": "billing@fuzz.example",
            "address": {"line1": "Hauptstr. 1", "city": "Berlin", "postalCode": "10115", "country": "de"}},
        ("POST", "/v1/tenants/{id}/billing/upgrade"): {"plan": "professional"},
    }
    for kind in ("accounts", "activities", "contacts", "deals", "leads"):
        s.bodies[("POST", f"/v1/search/{kind}")] = {"query": "seed"}
    for name in ("global", "advanced"):
        s.bodies[("POST", f"/v1/search/{name}")] = {"query": "seed", "limit": 10}
    for name in ("autocomplete", "suggestions"):
        s.bodies[("POST", f"/v1/search/{name}")] = {"query": "se", "limit": 5}
    # Every other /v1/users/{id}... names the seeded user, every /v1/tenants/{id}... the own tenant.
    for suffix in ("", "/activate", "/avatar", "/deactivate", "/permissions", "/preferences", "/profile", "/roles"):
        s.path_values.append(("*", f"/v1/users/{{id}}{suffix}", {"id": uma}))
    for suffix in ("", "/billing", "/billing/upgrade", "/config", "/features", "/invoices", "/limits", "/usage"):
        s.path_values.append(("*", f"/v1/tenants/{{id}}{suffix}", {"id": tid}))
    return s


@dataclass
class Sales:
    path_values: list[tuple[str, str, dict[str, str]]]
    bodies: dict[tuple[str, str], Any]
    queries: dict[tuple[str, str], dict[str, str]]


STAGES = [{"name": "New", "probability": 10, "kind": "open"}, {"name": "Offer", "probability": 60, "kind": "open"},
          {"name": "Won", "probability": 100, "kind": "won"}, {"name": "Lost", "probability": 0, "kind": "lost"}]


def _seed_sales(c: httpx.Client, *, contact_id: str, user_id: str) -> Sales:
    """Accounts, pipelines, deals, leads and an OAuth client, each with records of its own for the
    operations that destroy or change them for good (delete, merge, convert)."""

    def made(path: str, body: dict[str, Any]) -> dict[str, Any]:
        return _created(c.post(path, json=body))

    def account(name: str) -> str:
        return str(made("/v1/accounts", {"name": name})["id"])

    acme, kid, spare_kid, gone = account("Acme Seed"), account("Acme Kid"), account("Acme Spare"), account("Gone Inc")
    merge_into, merged, merge_into2, merged2 = (account(n) for n in ("Merge Target", "Merged", "Target 2", "Merged 2"))
    made(f"/v1/accounts/{acme}/children", {"childId": kid})
    made("/v1/accounts/territories", {"key": "north", "name": "North"})
    made("/v1/accounts/territories", {"key": "gone", "name": "Gone"})
    merge_job = str(made("/v1/accounts/merge", {"targetId": merge_into, "sourceIds": [merged]})["jobId"])

    pipeline = made("/v1/pipelines", {"name": "Fuzz sales", "stages": STAGES})
    pid, stages = pipeline["id"], {st["name"]: st["id"] for st in pipeline["stages"]}
    renamed = made("/v1/pipelines", {"name": "Renamed by the sweep", "stages": STAGES})["id"]
    pipeline_gone = made("/v1/pipelines", {"name": "Gone", "stages": STAGES})["id"]
    # Reordering names every stage of the pipeline: one whose stages no other operation changes.
    reordered = made("/v1/pipelines", {"name": "Reordered", "stages": STAGES})
    spare_stage = made(f"/v1/pipelines/{pid}/stages", {"name": "Spare", "probability": 20, "kind": "open"})["id"]
    rule_body = {"name": "Offer made", "trigger": {"event": "stage_entered", "stageId": stages["Offer"]},
                 "actions": [{"setField": {"field": "forecastCategory", "value": "commit"}}]}
    rule, rule_gone = made(f"/v1/pipelines/{pid}/automation", rule_body)["id"], made(
        f"/v1/pipelines/{pid}/automation", {**rule_body, "name": "Gone"})["id"]

    def deal(name: str) -> str:
        return str(made("/v1/deals", {"name": name, "pipelineId": pid, "amount": "1000", "currency": "EUR",
                                      "accountId": acme, "contactId": contact_id})["id"])

    big, deal_gone = deal("Big deal"), deal("Gone deal")

    def lead(first: str) -> str:
        return str(made("/v1/leads", {"firstName": first, "lastName": "Seed", "company": f"{first} Ltd",
                                      "email": f"{first.lower()}-{uuid.uuid4().hex[:6]}@example.com"})["id"])

    lee, to_convert, to_bulk_convert, lead_gone = lead("Lee"), lead("Conrad"), lead("Bulk"), lead("Gone")
    assignment_body = {"name": "Everyone", "userIds": [user_id], "active": True}
    assignment = made("/v1/leads/assignment-rules", assignment_body)["id"]
    assignment_gone = made("/v1/leads/assignment-rules", {**assignment_body, "name": "Gone"})["id"]
    form = made("/v1/leads/forms", {"name": "Contact us"})

    client_body = {"name": "Fuzz app", "redirectUris": [REDIRECT], "permissions": ["contacts:read"],
                   "confidential": True, "grantTypes": ["authorization_code", "client_credentials"]}
    client = made("/v1/auth/clients", client_body)
    client_id, client_gone = client["client"]["id"], made("/v1/auth/clients", client_body)["client"]["id"]

    path_values: list[tuple[str, str, dict[str, str]]] = [
        ("DELETE", "/v1/accounts/{id}", {"id": gone}),
        ("*", "/v1/accounts/{id}", {"id": acme}),
        ("*", "/v1/accounts/{id}/parent", {"id": spare_kid}),
        ("*", "/v1/accounts/merge/{job_id}", {"job_id": merge_job}),
        ("DELETE", "/v1/accounts/territories/{key}", {"key": "gone"}),
        ("*", "/v1/accounts/territories/{key}", {"key": "north"}),
        ("PUT", "/v1/pipelines/{id}", {"id": renamed}),
        ("DELETE", "/v1/pipelines/{id}", {"id": pipeline_gone}),
        ("*", "/v1/pipelines/{id}/stages/reorder", {"id": reordered["id"]}),
        ("DELETE", "/v1/pipelines/{id}/stages/{stage_id}", {"id": pid, "stage_id": spare_stage}),
        ("*", "/v1/pipelines/{id}/stages/{stage_id}", {"id": pid, "stage_id": stages["Offer"]}),
        ("DELETE", "/v1/pipelines/{id}/automation/{rule_id}", {"id": pid, "rule_id": rule_gone}),
        ("*", "/v1/pipelines/{id}/automation/{rule_id}", {"id": pid, "rule_id": rule}),
        ("*", "/v1/pipelines/{id}/automation/{rule_id}/test", {"id": pid, "rule_id": rule}),
        ("DELETE", "/v1/deals/{id}", {"id": deal_gone}),
        ("DELETE", "/v1/leads/{id}", {"id": lead_gone}),
        ("*", "/v1/leads/{id}/convert", {"id": to_convert}),
        ("DELETE", "/v1/leads/assignment-rules/{id}", {"id": assignment_gone}),
        ("*", "/v1/leads/assignment-rules/{id}", {"id": assignment}),
        ("*", "/v1/leads/forms/{id}", {"id": form["id"]}),
        ("*", "/v1/leads/forms/{id}/rotate-key", {"id": form["id"]}),
        ("DELETE", "/v1/auth/clients/{id}", {"id": client_gone}),
        ("*", "/v1/auth/clients/{id}", {"id": client_id}),
    ]
    # Every other /v1/accounts/{id}..., /v1/pipelines/{id}..., /v1/deals/{id}... and /v1/leads/{id}...
    # names the seeded account, pipeline, deal and lead.
    for suffix in ("", "/children", "/contacts", "/deals", "/hierarchy", "/territory"):
        path_values.append(("*", f"/v1/accounts/{{id}}{suffix}", {"id": acme}))
    for suffix in ("", "/automation", "/stages"):
        path_values.append(("*", f"/v1/pipelines/{{id}}{suffix}", {"id": pid}))
    for suffix in ("", "/clone", "/history", "/move-stage"):
        path_values.append(("*", f"/v1/deals/{{id}}{suffix}", {"id": big}))
    for suffix in ("", "/qualify", "/score", "/scoring-history", "/enrich"):
        path_values.append(("*", f"/v1/leads/{{id}}{suffix}", {"id": lee}))

    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/v1/accounts"): {"name": "Globex", "domain": "globex.example", "industry": "Software"},
        ("PUT", "/v1/accounts/{id}"): {"name": "Acme Seed", "industry": "Manufacturing"},
        ("POST", "/v1/accounts/{id}/children"): {"childId": spare_kid},
        ("PUT", "/v1/accounts/{id}/parent"): {"parentId": acme},
        ("PUT", "/v1/accounts/{id}/territory"): {"territory": "north"},
        ("POST", "/v1/accounts/territories"): {"key": "west", "name": "West"},
        ("PUT", "/v1/accounts/territories/{key}"): {"name": "North and East"},
        ("POST", "/v1/accounts/merge"): {"targetId": merge_into2, "sourceIds": [merged2]},
        ("POST", "/v1/pipelines"): {"name": "Renewals", "stages": STAGES},
        ("PUT", "/v1/pipelines/{id}"): {"name": "Renamed", "stages": STAGES},
        ("POST", "/v1/pipelines/{id}/stages"): {"name": "Review", "probability": 30, "kind": "open"},
        ("PUT", "/v1/pipelines/{id}/stages/{stage_id}"): {"name": "Offer", "probability": 65, "kind": "open"},
        ("POST", "/v1/pipelines/{id}/stages/reorder"): {"stageIds": [st["id"] for st in reversed(reordered["stages"])]},
        ("POST", "/v1/pipelines/{id}/automation"): rule_body,
        ("PUT", "/v1/pipelines/{id}/automation/{rule_id}"): rule_body,
        ("POST", "/v1/pipelines/{id}/automation/{rule_id}/test"): {"dealId": big},
        ("POST", "/v1/deals"): {"name": "New deal", "pipelineId": pid, "amount": "500", "currency": "EUR"},
        ("PUT", "/v1/deals/{id}"): {"name": "Big deal", "amount": "1200", "currency": "EUR"},
        ("POST", "/v1/deals/{id}/move-stage"): {"stageId": stages["Offer"]},
        ("POST", "/v1/deals/{id}/clone"): {"name": "Big deal, again"},
        ("POST", "/v1/deals/bulk-update"): {"ids": [big], "changes": {"description": "bulk"}},
        ("POST", "/v1/leads"): {"firstName": "Nia", "lastName": "New", "email": "nia@example.com", "company": "Nia Co"},
        ("PUT", "/v1/leads/{id}"): {"firstName": "Lee", "lastName": "Seed", "company": "Lee Ltd"},
        ("POST", "/v1/leads/{id}/qualify"): {"reason": "budget confirmed"},
        ("POST", "/v1/leads/{id}/score"): {"score": 70, "reason": "good fit"},
        ("POST", "/v1/leads/{id}/convert"): {},
        ("POST", "/v1/leads/bulk-convert"): {"ids": [to_bulk_convert]},
        ("POST", "/v1/leads/assignment-rules"): {"name": "Second", "userIds": [user_id], "active": True},
        ("PUT", "/v1/leads/assignment-rules/{id}"): assignment_body,
        ("PUT", "/v1/leads/forms/{id}"): {"name": "Contact us"},
        ("POST", "/v1/leads/forms"): {"name": "Newsletter"},
        ("POST", "/v1/leads/forms/{id}/rotate-key"): {},
        ("POST", "/v1/leads/assign"): {"ids": [lee], "dryRun": True},
        ("POST", "/v1/leads/bulk-qualify"): {"ids": [lee], "reason": "budget confirmed"},
        ("POST", "/v1/leads/enrich"): {"ids": [lee]},
        ("POST", "/v1/leads/capture/web-form"): {"formKey": form["key"], "pageUrl": "https://acme.example/contact",
                                                 "fields": {"email": "web@example.com", "firstName": "Wen"}},
        ("POST", "/v1/leads/capture/social"): {"network": "linkedin", "profile": {
            "name": "Jane Doe", "profileUrl": "linkedin.com/in/jane-doe"}},
        ("POST", "/v1/auth/clients"): {**client_body, "name": "Second app"},
        ("POST", "/v1/auth/token"): {"grant_type": "client_credentials", "client_id": client_id,
                                     "client_secret": client["clientSecret"]},
    }
    queries = {
        ("PUT", "/v1/deals/{id}"): {"updateMask": "name,amount,currency"},
        ("PUT", "/v1/leads/{id}"): {"updateMask": "firstName,lastName,company"},
        ("GET", "/v1/auth/authorize"): {
            "responseType": "code", "clientId": client_id, "redirectUri": REDIRECT, "state": "fuzz",
            "codeChallenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "codeChallengeMethod": "S256"},
    }
    return Sales(path_values, bodies, queries)


REDIRECT = "http://127.0.0.1:7777/callback"
