"""Lead capture and assignment through real Envoy: public web forms (no login, form keys,
honeypot, rate limit, size limits), raw emails, social profiles, assignment rules and round robin."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from services import ALL_SERVICES
from tests.integration.conftest import sign_up
from tests.integration.test_contacts_rest import h
from tests.integration.test_leads_rest import lead

EMAILS = Path(__file__).parent.parent / "unit" / "data"


def form(api: httpx.Client, t: dict[str, str], **fields: Any) -> dict[str, Any]:
    r = api.post("/v1/leads/forms", headers=h(t), json={"name": "Contact us", **fields})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def submit(api: httpx.Client, key: str, fields: dict[str, Any], **headers: str) -> httpx.Response:
    return api.post("/v1/leads/capture/web-form", json={"formKey": key, "fields": fields, "pageUrl": "https://acme.io/contact"},
                    headers=headers)


def test_form_keys_are_managed(api: httpx.Client, tenant: dict[str, str]) -> None:
    f = form(api, tenant, source="Landing-Page", rateLimitPerMinute=5)
    assert f["key"].startswith("lf_") and f["active"] is True and f["honeypotField"] == "_gotcha"
    assert f["source"] == "landing-page" and f["rateLimitPerMinute"] == 5
    assert api.get(f"/v1/leads/forms/{f['id']}", headers=h(tenant)).json()["data"]["key"] == f["key"]
    assert [x["id"] for x in api.get("/v1/leads/forms", headers=h(tenant)).json()["data"]] == [f["id"]]
    r = api.put(f"/v1/leads/forms/{f['id']}", headers=h(tenant), json={"name": "Renamed", "rateLimitPerMinute": 7})
    assert r.status_code == 200 and r.json()["data"]["name"] == "Renamed" and r.json()["data"]["active"] is True
    r = api.post("/v1/leads/forms", headers=h(tenant), json={"name": "", "rateLimitPerMinute": 5000})
    assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"name", "rateLimitPerMinute"}
    other = sign_up(api)
    assert api.get(f"/v1/leads/forms/{f['id']}", headers=h(other)).status_code == 404
    assert api.delete(f"/v1/leads/forms/{f['id']}", headers=h(other)).status_code == 404
    rotated = api.post(f"/v1/leads/forms/{f['id']}/rotate-key", headers=h(tenant), json={}).json()["data"]
    assert rotated["key"] != f["key"]
    assert submit(api, f["key"], {"email": "a@b.example"}).status_code == 404  # the old key stops at once
    assert submit(api, rotated["key"], {"email": "a@b.example"}).status_code == 202
    assert api.delete(f"/v1/leads/forms/{f['id']}", headers=h(tenant)).status_code == 200
    r = submit(api, rotated["key"], {"email": "a@b.example"})
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "FORM_NOT_FOUND"


def test_public_capture_without_a_token(api: httpx.Client, tenant: dict[str, str]) -> None:
    owner = str(uuid.uuid4())
    f = form(api, tenant, ownerId=owner, source="webinar")
    r = submit(api, f["key"], {"name": "Dr. Ann Lee", "Email": "Ann@Lee-Consulting.example", "phone": "+1 415 555 2671",
                               "company_name": "Lee Consulting", "message": "Call me", "budget": 5000, "_gotcha": ""})
    assert r.status_code == 202, r.text
    receipt = r.json()["data"]
    assert receipt["accepted"] is True
    got = api.get(f"/v1/leads/{receipt['receiptId']}", headers=h(tenant)).json()["data"]
    assert (got["firstName"], got["lastName"], got["email"], got["company"]) == ("Ann", "Lee", "ann@lee-consulting.example",
                                                                                 "Lee Consulting")
    assert got["source"] == "webinar" and got["ownerId"] == owner and got["createdBy"] == ""
    assert got["description"] == "Call me" and got["customFields"] == {"budget": "5000"}
    assert got["capture"] == {"channel": "web-form", "formId": f["id"], "formName": "Contact us",
                              "pageUrl": "https://acme.io/contact"}
    # Captured leads are enriched on the way in, each value marked inferred.
    assert got["enrichment"]["timeZone"] == {**got["enrichment"]["timeZone"], "value": "America/Los_Angeles", "inferred": True}
    assert got["website"] == "https://lee-consulting.example" and got["country"] == "US"
    assert api.get(f"/v1/leads/forms/{f['id']}", headers=h(tenant)).json()["data"]["submissionCount"] == 1
    # A token of another tenant changes nothing: the key decides the tenant.
    other = sign_up(api)
    r = submit(api, f["key"], {"email": "z@z.example"}, authorization=other["authorization"])
    assert r.status_code == 202
    assert api.get(f"/v1/leads/{r.json()['data']['receiptId']}", headers=h(tenant)).status_code == 200
    assert api.get(f"/v1/leads/{r.json()['data']['receiptId']}", headers=h(other)).status_code == 404


def test_honeypot_wrong_key_and_bad_input(api: httpx.Client, tenant: dict[str, str]) -> None:
    f = form(api, tenant, honeypotField="website_url")
    r = submit(api, f["key"], {"email": "bot@spam.example", "website_url": "http://spam.example"})
    assert r.status_code == 202 and r.json()["data"]["accepted"] is True  # answered like any other...
    assert api.get(f"/v1/leads/{r.json()['data']['receiptId']}", headers=h(tenant)).status_code == 404
    assert api.get("/v1/leads", headers=h(tenant)).json()["data"] == []  # ...and dropped
    r = submit(api, "lf_" + "x" * 32, {"email": "a@b.example"})
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "FORM_NOT_FOUND"
    assert submit(api, "", {"email": "a@b.example"}).status_code == 400
    r = submit(api, f["key"], {"email": "not-an-email"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "fields.email"
    r = submit(api, f["key"], {"email": "a@b.example", "message": "x" * 2001})
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "TOO_LONG"
    r = submit(api, f["key"], {f"f{i}": "x" for i in range(51)})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "fields"
    r = submit(api, f["key"], {f"f{i}": "y" * 1900 for i in range(20)})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "TOO_LARGE"
    api.put(f"/v1/leads/forms/{f['id']}", headers=h(tenant), json={"name": "Off", "active": False})
    assert submit(api, f["key"], {"email": "a@b.example"}).status_code == 404


def test_per_form_rate_limit_by_client_address(api: httpx.Client, tenant: dict[str, str]) -> None:
    f = form(api, tenant, rateLimitPerMinute=3)
    codes = [submit(api, f["key"], {"email": f"p{i}@x.example"}).status_code for i in range(3)]
    assert codes == [202, 202, 202]
    r = submit(api, f["key"], {"email": "p3@x.example"})
    assert r.status_code == 429 and r.json()["errors"][0]["code"] == "FORM_RATE_LIMITED"
    # A forged X-Forwarded-For does not make a new client: the edge appends the real address.
    r = submit(api, f["key"], {"email": "p4@x.example"}, **{"x-forwarded-for": "203.0.113.99"})
    assert r.status_code == 429
    # Another form has its own budget.
    g = form(api, tenant)
    assert submit(api, g["key"], {"email": "q@x.example"}).status_code == 202
    assert len(api.get("/v1/leads", headers=h(tenant)).json()["data"]) == 4


def test_email_capture_parses_a_real_message(api: httpx.Client, tenant: dict[str, str]) -> None:
    raw = (EMAILS / "lead_reply.eml").read_bytes()
    r = api.post("/v1/leads/capture/email", headers={**h(tenant), "content-type": "message/rfc822"}, content=raw)
    assert r.status_code == 201, r.text
    got = r.json()["data"]
    assert (got["firstName"], got["lastName"], got["email"]) == ("Jane", "Doe", "jane.doe@globex-corp.co.uk")
    assert (got["title"], got["company"], got["phone"]) == ("Head of Procurement", "Globex Corporation", "+442079460958")
    assert got["source"] == "email" and got["description"].startswith("Pricing for 200 seats")
    assert got["capture"]["messageId"] == "<CAF=abc123@mail.globex-corp.co.uk>" and got["capture"]["fromName"] == "Doe, Jane"
    assert got["enrichment"]["signatureTitle"] == {**got["enrichment"]["signatureTitle"], "value": "Head of Procurement",
                                                   "source": "email_signature", "inferred": True}
    assert got["enrichment"]["phoneRegion"]["value"] == "London" and got["country"] == "GB"
    r = api.post("/v1/leads/capture/email", headers={**h(tenant), "content-type": "message/rfc822"}, content=raw)
    assert r.status_code == 409 and r.json()["errors"][0]["code"] == "LEAD_ALREADY_CAPTURED"
    german = (EMAILS / "lead_german.eml").read_bytes()
    r = api.post("/v1/leads/capture/email?source=Inbound-Mail", headers={**h(tenant), "content-type": "message/rfc822"},
                 content=german)
    assert r.status_code == 201 and r.json()["data"]["lastName"] == "Müller" and r.json()["data"]["source"] == "inbound-mail"
    r = api.post("/v1/leads/capture/email", headers={**h(tenant), "content-type": "message/rfc822"}, content=b"hello")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "message"
    r = api.post("/v1/leads/capture/email", headers={**h(tenant), "content-type": "message/rfc822"}, content=b"")
    assert r.status_code == 400
    assert api.post("/v1/leads/capture/email", content=raw, headers={"content-type": "message/rfc822"}).status_code == 401


def test_social_capture(api: httpx.Client, tenant: dict[str, str]) -> None:
    profile = {"name": "Jane Doe", "headline": "VP Sales at Globex | Speaker",
               "profileUrl": "https://www.linkedin.com/in/jane-doe/", "location": "London", "email": "jane@globex.example"}
    body: dict[str, Any] = {"network": "linkedin", "profile": profile}
    r = api.post("/v1/leads/capture/social", headers=h(tenant), json=body)
    assert r.status_code == 201, r.text
    got = r.json()["data"]
    assert (got["firstName"], got["lastName"], got["title"], got["company"]) == ("Jane", "Doe", "VP Sales", "Globex")
    assert got["source"] == "social:linkedin" and got["capture"]["profileUrl"] == "https://linkedin.com/in/jane-doe"
    r = api.post("/v1/leads/capture/social", headers=h(tenant),
                 json={**body, "profile": {**profile, "profileUrl": "linkedin.com/in/jane-doe"}})
    assert r.status_code == 409
    # Values nobody typed for us that break the rules are left out, not a reason to lose the lead.
    r = api.post("/v1/leads/capture/social", headers=h(tenant),
                 json={"network": "github", "profile": {"name": "Sam Ng", "email": "not-an-email", "profileUrl": "github.com/samng"}})
    assert r.status_code == 201 and r.json()["data"]["email"] == "" and r.json()["data"]["lastName"] == "Ng"
    r = api.post("/v1/leads/capture/social", headers=h(tenant), json={"network": "myspace", "profile": {"name": "X"}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "network"
    r = api.post("/v1/leads/capture/social", headers=h(tenant), json={"network": "x", "profile": {"headline": "CEO"}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "profile.name"


def rep(api: httpx.Client, t: dict[str, str]) -> str:
    """A real sales rep of the tenant (rules name users the users service knows)."""
    r = api.post("/v1/users", headers=h(t), json={"email": f"rep-{uuid.uuid4().hex[:8]}@x.example",
                                                  "firstName": "Rep", "lastName": "R", "roles": ["sales_rep"]})
    assert r.status_code == 201, r.text
    return str(r.json()["data"]["id"])


def _unowned(api: httpx.Client, t: dict[str, str], n: int, **fields: Any) -> list[str]:
    key = form(api, t, rateLimitPerMinute=1000)["key"]
    ids = []
    for i in range(n):
        r = submit(api, key, {"email": f"u{i}-{uuid.uuid4().hex[:6]}@x.example", **fields})
        assert r.status_code == 202
        ids.append(r.json()["data"]["receiptId"])
    return ids


def test_auto_assign_round_robin_with_capacity(api: httpx.Client, tenant: dict[str, str]) -> None:
    leads = _unowned(api, tenant, 7)
    assert len(api.get("/v1/leads?unassigned=true", headers=h(tenant)).json()["data"]) == 7
    reps = [rep(api, tenant) for _ in range(3)]
    r = api.post("/v1/leads/assignment-rules", headers=h(tenant),
                 json={"name": "Web to reps", "sources": ["web-form"], "userIds": reps, "maxOpenLeads": 2})
    assert r.status_code == 201, r.text
    rule = r.json()["data"]
    assert rule["userIds"] == reps and rule["active"] is True and rule["priority"] == 0
    dry = api.post("/v1/leads/assign", headers=h(tenant), json={"dryRun": True}).json()["data"]
    assert dry["dryRun"] is True and dry["assigned"] == 6
    assert len(api.get("/v1/leads?unassigned=true", headers=h(tenant)).json()["data"]) == 7  # nothing saved
    r = api.post("/v1/leads/assign", headers=h(tenant), json={})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [x["ownerId"] for x in data["results"]] == reps + reps + [""]  # oldest first, in turn, then full
    assert data["results"][6]["errors"][0]["code"] == "NO_CAPACITY" and data["assigned"] == 6
    assert {x["ruleId"] for x in data["results"][:6]} == {rule["id"]}
    assert api.get(f"/v1/leads/{leads[0]}", headers=h(tenant)).json()["data"]["ownerId"] == reps[0]
    # Qualifying is still open; disqualifying frees capacity, and the rotation goes on where it stopped.
    api.post(f"/v1/leads/{leads[1]}/qualify", headers=h(tenant), json={"status": "unqualified"})
    r = api.post("/v1/leads/assign", headers=h(tenant), json={"ids": [leads[6]]})
    assert r.json()["data"]["results"][0]["ownerId"] == reps[1]
    r = api.post("/v1/leads/assign", headers=h(tenant), json={"ids": [leads[0]]})
    assert r.json()["data"]["results"][0]["errors"][0]["code"] == "ALREADY_ASSIGNED"


def test_rules_by_source_and_country_and_new_captures(api: httpx.Client, tenant: dict[str, str]) -> None:
    uk_rep, us_rep = rep(api, tenant), rep(api, tenant)
    for name, countries, owner, priority in (("UK", ["gb"], uk_rep, 1), ("US", ["US"], us_rep, 2)):
        r = api.post("/v1/leads/assignment-rules", headers=h(tenant),
                     json={"name": name, "countries": countries, "userIds": [owner], "priority": priority})
        assert r.status_code == 201, r.text
    rules = api.get("/v1/leads/assignment-rules", headers=h(tenant)).json()["data"]
    assert [x["name"] for x in rules] == ["UK", "US"] and rules[0]["countries"] == ["GB"]
    # New web-form leads are assigned as they arrive (their country inferred from the phone).
    key = form(api, tenant)["key"]
    uk = submit(api, key, {"email": "a@x.example", "phone": "+44 20 7946 0958"}).json()["data"]["receiptId"]
    us = submit(api, key, {"email": "b@x.example", "phone": "+1 212 555 0100"}).json()["data"]["receiptId"]
    fr = submit(api, key, {"email": "c@x.example", "phone": "+33 1 42 68 53 00"}).json()["data"]["receiptId"]
    assert api.get(f"/v1/leads/{uk}", headers=h(tenant)).json()["data"]["ownerId"] == uk_rep
    assert api.get(f"/v1/leads/{us}", headers=h(tenant)).json()["data"]["ownerId"] == us_rep
    assert api.get(f"/v1/leads/{fr}", headers=h(tenant)).json()["data"]["ownerId"] == ""
    r = api.post("/v1/leads/assign", headers=h(tenant), json={"ids": [fr]})
    assert r.json()["data"]["results"][0]["errors"][0]["code"] == "NO_MATCHING_RULE"
    # Reassigning an owned lead needs `reassign`.
    r = api.post("/v1/leads/assign", headers=h(tenant), json={"ids": [uk], "reassign": True})
    assert r.json()["data"]["results"][0]["ownerId"] == uk_rep


def test_rule_crud_and_validation(api: httpx.Client, tenant: dict[str, str]) -> None:
    user = rep(api, tenant)
    r = api.post("/v1/leads/assignment-rules", headers=h(tenant), json={"name": "", "userIds": ["nope"], "maxOpenLeads": -1})
    assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"name", "userIds[0]", "maxOpenLeads"}
    r = api.post("/v1/leads/assignment-rules", headers=h(tenant), json={"name": "Nobody"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "userIds"
    rule = api.post("/v1/leads/assignment-rules", headers=h(tenant), json={"name": "R", "userIds": [user]}).json()["data"]
    r = api.put(f"/v1/leads/assignment-rules/{rule['id']}", headers=h(tenant),
                json={"name": "R2", "userIds": [user], "active": False, "territories": ["EMEA-North"]})
    assert r.status_code == 200 and r.json()["data"]["active"] is False and r.json()["data"]["territories"] == ["emea-north"]
    assert api.get(f"/v1/leads/assignment-rules/{rule['id']}", headers=h(tenant)).json()["data"]["name"] == "R2"
    other = sign_up(api)
    assert api.get(f"/v1/leads/assignment-rules/{rule['id']}", headers=h(other)).status_code == 404
    assert api.delete(f"/v1/leads/assignment-rules/{rule['id']}", headers=h(other)).status_code == 404
    assert api.delete(f"/v1/leads/assignment-rules/{rule['id']}", headers=h(tenant)).status_code == 200
    assert api.get(f"/v1/leads/assignment-rules/{rule['id']}", headers=h(tenant)).status_code == 404


@pytest.mark.skipif("users" in ALL_SERVICES, reason="the users service is deployed here")
def test_team_rules_need_the_users_service(api: httpx.Client, tenant: dict[str, str]) -> None:
    r = api.post("/v1/leads/assignment-rules", headers=h(tenant), json={"name": "Team", "teamId": str(uuid.uuid4())})
    assert r.status_code == 503 and r.json()["errors"][0]["code"] == "SERVICE_NOT_DEPLOYED"


def test_converting_a_lead_with_only_contacts(api: httpx.Client, tenant: dict[str, str]) -> None:
    x = lead(api, tenant, firstName="Solo", lastName="Trader", email="solo@trader.example", phone="+44 20 7946 0958",
             title="Owner", source="referral", tags=["vip"])
    api.post(f"/v1/leads/{x['id']}/qualify", headers=h(tenant), json={})
    r = api.post(f"/v1/leads/{x['id']}/convert", headers=h(tenant), json={})
    assert r.status_code == 200, r.text
    out = r.json()["data"]
    assert out["accountId"] == "" and out["dealId"] == "" and out["accountCreated"] is False
    converted = out["lead"]
    assert converted["status"] == "converted" and converted["convertedContactId"] == out["contactId"]
    assert converted["convertedAt"] and converted["conversionId"] == out["conversionId"]
    contact = api.get(f"/v1/contacts/{out['contactId']}", headers=h(tenant)).json()["data"]
    assert (contact["firstName"], contact["lastName"], contact["email"], contact["phone"], contact["title"]) == (
        "Solo", "Trader", "solo@trader.example", "+442079460958", "Owner")
    assert contact["source"] == "lead:referral" and contact["tags"] == ["vip"] and contact["lifecycleStage"] == "lead"
    assert contact["customFields"]["leadId"] == x["id"]
    # Once converted: no second conversion, no changes.
    r = api.post(f"/v1/leads/{x['id']}/convert", headers=h(tenant), json={})
    assert r.status_code == 409 and r.json()["errors"][0]["code"] == "LEAD_ALREADY_CONVERTED"
    r = api.put(f"/v1/leads/{x['id']}?updateMask=title", headers=h(tenant), json={"title": "x"})
    assert r.status_code == 409 and r.json()["errors"][0]["code"] == "LEAD_CONVERTED"
    r = api.post(f"/v1/leads/{x['id']}/convert", headers=h(tenant), json={"createDeal": True})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "pipelineId"


def test_bulk_convert_reports_each_lead(api: httpx.Client, tenant: dict[str, str]) -> None:
    a = lead(api, tenant, firstName="A", email="a@bulk.example")
    b = lead(api, tenant, firstName="B", email="b@bulk.example")
    api.post(f"/v1/leads/{b['id']}/qualify", headers=h(tenant), json={"status": "unqualified"})
    r = api.post("/v1/leads/bulk-convert", headers=h(tenant), json={"ids": [a["id"], b["id"], a["id"], "x"]})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [x["success"] for x in data["results"]] == [True, False, False, False]
    assert data["results"][0]["conversion"]["contactId"]
    assert [x["errors"][0]["code"] for x in data["results"][1:]] == ["LEAD_UNQUALIFIED", "LEAD_ALREADY_CONVERTED", "INVALID"]
    assert data["succeeded"] == 1 and data["failed"] == 3
    r = api.post("/v1/leads/bulk-convert", headers=h(tenant), json={"ids": [a["id"]] * 51})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "ids"


@pytest.mark.skipif("deals" in ALL_SERVICES and "accounts" in ALL_SERVICES, reason="deals and accounts are deployed here")
def test_conversion_refused_before_anything_when_a_service_is_missing(api: httpx.Client, tenant: dict[str, str]) -> None:
    x = lead(api, tenant, firstName="Need", email="need@globex.example", company="Globex")
    before = api.get("/v1/contacts", headers=h(tenant)).json()["meta"]["pagination"]["total"]
    r = api.post(f"/v1/leads/{x['id']}/convert", headers=h(tenant),
                 json={"createDeal": True, "pipelineId": str(uuid.uuid4())})
    assert r.status_code == 503 and r.json()["errors"][0]["code"] == "SERVICE_NOT_DEPLOYED"
    assert api.get("/v1/contacts", headers=h(tenant)).json()["meta"]["pagination"]["total"] == before
    assert api.get(f"/v1/leads/{x['id']}", headers=h(tenant)).json()["data"]["status"] == "new"
