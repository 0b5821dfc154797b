"""Leads through real Envoy, as a REST client sees them: CRUD, lists, qualification, scoring,
bulk qualification, enrichment, source analytics, route pairs, other tenants' ids and roles."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest

from services.devstack import DevStack
from tests.integration.conftest import mint, sign_up
from tests.integration.test_contacts_rest import h


def lead(api: httpx.Client, t: dict[str, str], **fields: Any) -> dict[str, Any]:
    r = api.post("/v1/leads", headers=h(t), json=fields)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def user_id(t: dict[str, str]) -> str:
    import jwt

    return str(jwt.decode(t["authorization"].split()[1], options={"verify_signature": False})["sub"])


def test_create_get_update_delete(api: httpx.Client, tenant: dict[str, str]) -> None:
    r = api.post("/v1/leads", headers=h(tenant), json={
        "firstName": "Ann", "lastName": "Lee", "email": "ANN@Lee.example", "phone": "+44 20 7946 0958",
        "company": "Lee Ltd", "website": "Lee.example/about", "tags": ["hot", "Hot"], "customFields": {"budget": 10},
        "status": "converted", "tenantId": str(uuid.uuid4())})
    assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"status"}
    created = lead(api, tenant, firstName="Ann", lastName="Lee", email="ANN@Lee.example", phone="+44 20 7946 0958",
                   company="Lee Ltd", website="Lee.example/about", tags=["hot", "Hot"], customFields={"budget": 10})
    assert created["email"] == "ann@lee.example" and created["phone"] == "+442079460958"
    assert created["website"] == "https://lee.example/about" and created["tags"] == ["hot"]
    assert created["status"] == "new" and created["source"] == "manual" and created["score"] == 0
    assert created["ownerId"] == user_id(tenant) and created["createdBy"] == user_id(tenant)
    assert created["customFields"] == {"budget": 10} and created["convertedContactId"] == ""
    got = api.get(f"/v1/leads/{created['id']}", headers=h(tenant)).json()["data"]
    assert got == created
    r = api.put(f"/v1/leads/{created['id']}?updateMask=title,status,score", headers=h(tenant),
                json={"title": "CTO", "status": "contacted", "score": 40, "firstName": "ignored"})
    assert r.status_code == 200, r.text
    updated = r.json()["data"]
    assert (updated["title"], updated["status"], updated["score"], updated["firstName"]) == ("CTO", "contacted", 40, "Ann")
    r = api.put(f"/v1/leads/{created['id']}", headers=h(tenant), json={"email": "nope", "score": 101})
    assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} >= {"email", "score"}
    r = api.put(f"/v1/leads/{created['id']}?updateMask=tenantId", headers=h(tenant), json={})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "updateMask"
    assert api.delete(f"/v1/leads/{created['id']}", headers=h(tenant)).status_code == 200
    r = api.get(f"/v1/leads/{created['id']}", headers=h(tenant))
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NOT_FOUND"
    assert api.get("/v1/leads/not-a-uuid", headers=h(tenant)).status_code == 400
    r = api.post("/v1/leads", headers=h(tenant), json={"company": "Nameless"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "firstName"


def test_list_filters_sorts_and_pages(api: httpx.Client, tenant: dict[str, str]) -> None:
    other_owner = str(uuid.uuid4())
    for i, (source, score) in enumerate([("web-form", 10), ("email", 55), ("web-form", 80), ("referral", 95)]):
        lead(api, tenant, firstName=f"L{i}", email=f"l{i}@corp{i}.example", source=source, score=score,
             ownerId=other_owner if i == 3 else "")

    def names(query: str) -> list[str]:
        r = api.get(f"/v1/leads?{query}", headers=h(tenant))
        assert r.status_code == 200, r.text
        return [x["firstName"] for x in r.json()["data"]]

    assert names("source=web-form&sort=firstName") == ["L0", "L2"]
    assert names("minScore=50&maxScore=90&sort=-score") == ["L2", "L1"]
    assert names("minScore=0&sort=-score&limit=2") == ["L3", "L2"]
    assert names(f"ownerId={other_owner}") == ["L3"]
    assert names("search=corp1") == ["L1"]
    assert names("status=new&sort=score") == ["L0", "L1", "L2", "L3"]
    assert names("status=qualified") == []
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(names(f"createdAfter={past}&createdBefore={future}")) == 4
    assert names(f"createdAfter={future}") == [] and names(f"createdBefore={past}") == []
    page = api.get("/v1/leads?limit=3&sort=firstName", headers=h(tenant)).json()
    assert page["meta"]["pagination"] == {**page["meta"]["pagination"], "total": 4, "hasNext": True, "page": 1}
    r = api.get("/v1/leads?minScore=60&maxScore=10", headers=h(tenant))
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "minScore"
    r = api.get("/v1/leads?sort=-email", headers=h(tenant))
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "sort"


def test_qualify_disqualify_and_score_history(api: httpx.Client, tenant: dict[str, str]) -> None:
    x = lead(api, tenant, firstName="Q", email="q@q.example", score=20)
    r = api.post(f"/v1/leads/{x['id']}/qualify", headers=h(tenant), json={"reason": "budget confirmed"})
    assert r.status_code == 200, r.text
    q = r.json()["data"]
    assert q["status"] == "qualified" and q["statusReason"] == "budget confirmed" and q["qualifiedAt"]
    r = api.post(f"/v1/leads/{x['id']}/qualify", headers=h(tenant), json={"status": "unqualified", "reason": "no budget"})
    assert r.json()["data"]["status"] == "unqualified"
    r = api.post(f"/v1/leads/{x['id']}/qualify", headers=h(tenant), json={"status": "maybe"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "status"
    # An unqualified lead is not converted.
    r = api.post(f"/v1/leads/{x['id']}/convert", headers=h(tenant), json={})
    assert r.status_code == 409 and r.json()["errors"][0]["code"] == "LEAD_UNQUALIFIED"

    for score, reason in ((45, "opened 3 emails"), (70, "asked for a demo")):
        r = api.post(f"/v1/leads/{x['id']}/score", headers=h(tenant), json={"score": score, "reason": reason})
        assert r.status_code == 200 and r.json()["data"]["score"] == score
    r = api.post(f"/v1/leads/{x['id']}/score", headers=h(tenant), json={"score": 101, "reason": ""})
    assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"score", "reason"}
    r = api.get(f"/v1/leads/{x['id']}/scoring-history", headers=h(tenant))
    assert r.status_code == 200, r.text
    history = r.json()["data"]
    assert [(e["previousScore"], e["score"], e["reason"], e["source"]) for e in history] == [
        (45, 70, "asked for a demo", "manual"), (20, 45, "opened 3 emails", "manual"), (0, 20, "initial score", "create")]
    assert history[0]["changedBy"] == user_id(tenant) and r.json()["meta"]["pagination"]["total"] == 3
    assert api.get(f"/v1/leads/{uuid.uuid4()}/scoring-history", headers=h(tenant)).status_code == 404


def test_bulk_qualify_reports_each_item(api: httpx.Client, tenant: dict[str, str]) -> None:
    a, b = lead(api, tenant, firstName="A"), lead(api, tenant, firstName="B")
    foreign = lead(api, sign_up(api), firstName="F")["id"]
    r = api.post("/v1/leads/bulk-qualify", headers=h(tenant),
                 json={"ids": [a["id"], "nope", str(uuid.uuid4()), foreign, b["id"]], "reason": "event list"})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [x["success"] for x in data["results"]] == [True, False, False, False, True]
    assert data["succeeded"] == 2 and data["failed"] == 3
    assert data["results"][1]["errors"][0]["field"] == "ids[1]"
    assert data["results"][3]["errors"][0]["code"] == "NOT_FOUND"  # another tenant's lead does not exist here
    assert data["results"][4]["lead"]["status"] == "qualified"
    r = api.post("/v1/leads/bulk-qualify", headers=h(tenant), json={"ids": []})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "ids"


def test_enrich_marks_every_inferred_value(api: httpx.Client, tenant: dict[str, str]) -> None:
    uk = lead(api, tenant, firstName="Jane Doe", email="jane@mail.globex-corp.co.uk", phone="+447400123456")
    us = lead(api, tenant, email="john.smith@gmail.com", phone="+1 415 555 2671", company="Smith & Co")
    r = api.post("/v1/leads/enrich", headers=h(tenant), json={"ids": [uk["id"], us["id"], str(uuid.uuid4())]})
    assert r.status_code == 200, r.text
    first, second, missing = r.json()["data"]["results"]
    assert missing["success"] is False and missing["errors"][0]["code"] == "NOT_FOUND"
    a = first["lead"]
    assert (a["firstName"], a["lastName"], a["company"], a["website"], a["country"]) == (
        "Jane", "Doe", "Globex Corp", "https://globex-corp.co.uk", "GB")
    e = a["enrichment"]
    assert e["phoneCarrier"]["value"] == "Three" and e["timeZone"]["value"] == "Europe/London"
    assert e["company"] == {**e["company"], "value": "Globex Corp", "source": "email_domain", "inferred": True, "applied": True}
    assert all(v["inferred"] for v in e.values())
    b = second["lead"]
    assert b["company"] == "Smith & Co" and b["website"] == ""  # free mail tells nothing about the company
    assert "company" not in b["enrichment"] and b["enrichment"]["timeZone"]["value"] == "America/Los_Angeles"
    assert (b["firstName"], b["lastName"]) == ("John", "Smith")
    assert b["enrichment"]["firstName"]["source"] == "email_local_part"
    assert b["country"] == "US" and "phoneRegion" in second["inferredFields"]


def test_sources_analytics_and_its_route(api: httpx.Client, tenant: dict[str, str]) -> None:
    ids = []
    for source, n in (("web-form", 3), ("email", 1)):
        for i in range(n):
            ids.append((source, lead(api, tenant, firstName=f"{source}{i}", source=source, score=10 * (i + 1))["id"]))
    api.post(f"/v1/leads/{ids[0][1]}/qualify", headers=h(tenant), json={})
    # Converting a lead without company needs only the contacts service.
    r = api.post(f"/v1/leads/{ids[1][1]}/convert", headers=h(tenant), json={})
    assert r.status_code == 200, r.text
    today = dt.datetime.now(dt.UTC).date().isoformat()
    r = api.get(f"/v1/leads/sources?from={today}&to={today}", headers=h(tenant))
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["from"] == today and data["to"] == today
    web, mail = data["sources"]
    assert web == {"source": "web-form", "leads": 3, "qualified": 2, "converted": 1, "conversionRate": 0.3333,
                   "averageScore": 20.0}
    assert mail["source"] == "email" and mail["leads"] == 1 and mail["conversionRate"] == 0
    assert data["total"]["leads"] == 4 and data["total"]["converted"] == 1 and data["total"]["conversionRate"] == 0.25
    assert api.get("/v1/leads/sources?from=2020-01-01&to=2020-01-31", headers=h(tenant)).json()["data"]["sources"] == []
    r = api.get("/v1/leads/sources?from=2026-13-01", headers=h(tenant))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "from"
    r = api.get(f"/v1/leads/sources?from={today}&to=2020-01-01", headers=h(tenant))
    assert r.status_code == 422


def test_literal_routes_beside_the_id_route(api: httpx.Client, tenant: dict[str, str]) -> None:
    x = lead(api, tenant, firstName="Routes")
    assert api.get(f"/v1/leads/{x['id']}", headers=h(tenant)).json()["data"]["firstName"] == "Routes"
    r = api.get("/v1/leads/sources", headers=h(tenant))
    assert r.status_code == 200 and "sources" in r.json()["data"] and r.json()["data"]["total"]["leads"] == 1
    r = api.get("/v1/leads/forms", headers=h(tenant))
    assert r.status_code == 200 and r.json()["data"] == []
    r = api.get("/v1/leads/assignment-rules", headers=h(tenant))
    assert r.status_code == 200 and r.json()["data"] == []
    # A POST to the literal paths never reaches UpdateLead or another {id} route.
    r = api.post("/v1/leads/assign", headers=h(tenant), json={"ids": [x["id"]], "dryRun": True})
    assert r.status_code == 200 and r.json()["data"]["results"][0]["errors"][0]["code"] == "ALREADY_ASSIGNED"
    assert api.put("/v1/leads/sources", headers=h(tenant), json={}).status_code == 400  # "sources" is no lead id


def test_other_tenants_leads_do_not_exist(api: httpx.Client, tenant: dict[str, str]) -> None:
    x = lead(api, tenant, firstName="Secret", email="secret@x.example")
    other = sign_up(api)
    for method, path, body in (("GET", "", None), ("PUT", "?updateMask=title", {"title": "x"}), ("DELETE", "", None),
                               ("POST", "/qualify", {}), ("POST", "/score", {"score": 5, "reason": "x"}),
                               ("GET", "/scoring-history", None), ("POST", "/convert", {})):
        r = api.request(method, f"/v1/leads/{x['id']}{path}", headers=h(other), json=body)
        assert r.status_code == 404, (method, path, r.text)
    r = api.post("/v1/leads/enrich", headers=h(other), json={"ids": [x["id"]]})
    assert r.json()["data"]["results"][0]["errors"][0]["code"] == "NOT_FOUND"
    r = api.post("/v1/leads/assign", headers=h(other), json={"ids": [x["id"]]})
    assert r.json()["data"]["results"][0]["errors"][0]["code"] == "NOT_FOUND"
    assert api.get("/v1/leads", headers=h(other)).json()["data"] == []
    assert api.get(f"/v1/leads/{x['id']}", headers={**h(other), "x-tenant-id": tenant["x-tenant-id"]}).status_code == 403


def test_roles_and_record_scopes(api: httpx.Client, stack: DevStack, tenant: dict[str, str]) -> None:
    mine = lead(api, tenant, firstName="Admin's")
    tid = tenant["x-tenant-id"]
    reader = {"authorization": f"Bearer {mint(stack, tenant_id=tid, roles=['read_only'])}", "x-tenant-id": tid}
    assert api.get(f"/v1/leads/{mine['id']}", headers=reader).status_code == 200
    r = api.post("/v1/leads", headers=reader, json={"firstName": "x"})
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "MISSING_PERMISSION"
    rep_id = str(uuid.uuid4())
    rep = {"authorization": f"Bearer {mint(stack, tenant_id=tid, user_id=rep_id, roles=['sales_rep'])}", "x-tenant-id": tid}
    own = lead(api, rep, firstName="Rep's")
    assert own["ownerId"] == rep_id
    assert api.put(f"/v1/leads/{own['id']}?updateMask=title", headers=rep, json={"title": "x"}).status_code == 200
    r = api.put(f"/v1/leads/{mine['id']}?updateMask=title", headers=rep, json={"title": "x"})
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "OUT_OF_SCOPE"
    r = api.post(f"/v1/leads/{mine['id']}/convert", headers=rep, json={})
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "OUT_OF_SCOPE"
    assert api.get(f"/v1/leads/{mine['id']}", headers=h(tenant)).json()["data"]["status"] == "new"
    r = api.post("/v1/leads/assign", headers=rep, json={})
    assert r.status_code == 403  # assigning is a manager's job (leads:assign)


@pytest.mark.parametrize("path", ["/v1/leads/forms", "/v1/leads/assignment-rules"])
def test_configuration_needs_its_permission(api: httpx.Client, stack: DevStack, tenant: dict[str, str], path: str) -> None:
    tid = tenant["x-tenant-id"]
    rep = {"authorization": f"Bearer {mint(stack, tenant_id=tid, roles=['sales_rep'])}", "x-tenant-id": tid}
    assert api.get(path, headers=rep).status_code == 403
    manager = {"authorization": f"Bearer {mint(stack, tenant_id=tid, roles=['manager'])}", "x-tenant-id": tid}
    assert api.get(path, headers=manager).status_code == 200
