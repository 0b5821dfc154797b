"""Pipelines through real Envoy: the default pipeline, CRUD, stages (add, update, delete with
deal migration, reorder) and automation rule CRUD."""

from __future__ import annotations

import uuid

import httpx

from tests.integration.conftest import sign_up
from tests.integration.sales import default_pipeline, h, make_deal, make_pipeline, stage_ids

THREE = [("Lead", 10, "open"), ("Offer", 60, "open"), ("Won", 100, "won")]


def test_a_new_tenant_gets_its_default_pipeline_on_first_list(api: httpx.Client, tenant: dict[str, str]) -> None:
    r = api.get("/v1/pipelines", headers=h(tenant))
    assert r.status_code == 200 and r.json()["meta"]["pagination"]["total"] == 1
    pipeline = r.json()["data"][0]
    assert pipeline["name"] == "Sales Pipeline" and pipeline["isDefault"] is True
    assert [(s["name"], s["probability"], s["kind"], s["position"]) for s in pipeline["stages"]] == [
        ("Prospecting", 10, "open", 0), ("Qualification", 25, "open", 1), ("Proposal", 50, "open", 2),
        ("Negotiation", 75, "open", 3), ("Closed Won", 100, "won", 4), ("Closed Lost", 0, "lost", 5)]
    # Listing again does not make another; deleting it does not bring it back.
    assert api.get("/v1/pipelines", headers=h(tenant)).json()["meta"]["pagination"]["total"] == 1
    assert api.delete(f"/v1/pipelines/{pipeline['id']}", headers=h(tenant)).status_code == 200
    assert api.get("/v1/pipelines", headers=h(tenant)).json()["data"] == []


def test_pipeline_crud(api: httpx.Client, tenant: dict[str, str]) -> None:
    default = default_pipeline(api, tenant)
    made = make_pipeline(api, tenant, "Renewals", THREE, description="yearly")
    assert made["isDefault"] is False and [s["position"] for s in made["stages"]] == [0, 1, 2]
    assert api.get(f"/v1/pipelines/{made['id']}", headers=h(tenant)).json()["data"]["description"] == "yearly"
    # Without stages, a pipeline gets the standard ones.
    assert len(make_pipeline(api, tenant, "Standard")["stages"]) == 6
    # Update: name, and taking over the default flag.
    r = api.put(f"/v1/pipelines/{made['id']}", headers=h(tenant), json={"name": "Renewals 2027", "isDefault": True})
    assert r.status_code == 200 and r.json()["data"]["name"] == "Renewals 2027" and r.json()["data"]["isDefault"]
    assert api.get(f"/v1/pipelines/{default['id']}", headers=h(tenant)).json()["data"]["isDefault"] is False
    # Stages sent back as read are fine; changed ones are refused (stages have their own endpoints).
    got = api.get(f"/v1/pipelines/{made['id']}", headers=h(tenant)).json()["data"]
    assert api.put(f"/v1/pipelines/{made['id']}", headers=h(tenant), json=got).status_code == 200
    got["stages"][0]["probability"] = 99
    r = api.put(f"/v1/pipelines/{made['id']}", headers=h(tenant), json=got)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "stages"
    # Names are unique in the tenant.
    r = api.post("/v1/pipelines", headers=h(tenant), json={"name": "renewals 2027"})
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "name"
    r = api.post("/v1/pipelines", headers=h(tenant), json={"name": "", "stages": [{"name": "A", "kind": "won"}]})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"name", "stages"}  # no name, no open stage
    # Deleting the default moves the flag to the oldest remaining pipeline.
    assert api.delete(f"/v1/pipelines/{made['id']}", headers=h(tenant)).status_code == 200
    assert api.get(f"/v1/pipelines/{made['id']}", headers=h(tenant)).status_code == 404
    assert default_pipeline(api, tenant)["id"] == default["id"]
    listed = api.get("/v1/pipelines", headers=h(tenant), params={"search": "stand", "sort": "-name"}).json()
    assert [p["name"] for p in listed["data"]] == ["Standard"]


def test_another_tenants_pipeline_is_not_found(api: httpx.Client, tenant: dict[str, str]) -> None:
    theirs = make_pipeline(api, sign_up(api), "Theirs", THREE)
    for method, path in (("GET", ""), ("PUT", ""), ("DELETE", ""), ("POST", "/stages"), ("GET", "/automation")):
        r = api.request(method, f"/v1/pipelines/{theirs['id']}{path}", headers=h(tenant),
                        json={"name": "x", "probability": 5} if method != "GET" else None)
        assert r.status_code == 404, (method, path, r.text)


def test_a_pipeline_with_deals_is_not_deleted(api: httpx.Client, tenant: dict[str, str]) -> None:
    pipeline = make_pipeline(api, tenant, "Busy", THREE)
    deal = make_deal(api, tenant, "Keep", pipelineId=pipeline["id"])
    r = api.delete(f"/v1/pipelines/{pipeline['id']}", headers=h(tenant))
    assert r.status_code == 409 and r.json()["errors"][0]["code"] == "PIPELINE_HAS_DEALS"
    assert api.delete(f"/v1/deals/{deal['id']}", headers=h(tenant)).status_code == 200
    assert api.delete(f"/v1/pipelines/{pipeline['id']}", headers=h(tenant)).status_code == 200


def test_add_and_update_stages(api: httpx.Client, tenant: dict[str, str]) -> None:
    pipeline = make_pipeline(api, tenant, "Stages", THREE)
    base = f"/v1/pipelines/{pipeline['id']}/stages"
    r = api.post(base, headers=h(tenant), json={"name": "Demo", "probability": 40, "position": 1})
    assert r.status_code == 201 and r.json()["data"]["position"] == 1
    demo = r.json()["data"]["id"]
    appended = api.post(base, headers=h(tenant), json={"name": "Lost", "kind": "lost"}).json()["data"]
    assert appended["position"] == 4 and appended["probability"] == 0
    names = [s["name"] for s in api.get(f"/v1/pipelines/{pipeline['id']}", headers=h(tenant)).json()["data"]["stages"]]
    assert names == ["Lead", "Demo", "Offer", "Won", "Lost"]
    r = api.post(base, headers=h(tenant), json={"name": "demo", "probability": 1})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "name"
    r = api.post(base, headers=h(tenant), json={"name": "No probability"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "probability"
    # Update: rename, new probability, move to the end.
    r = api.put(f"{base}/{demo}", headers=h(tenant), json={"name": "Live demo", "probability": 45, "position": 9})
    assert r.status_code == 200 and r.json()["data"]["position"] == 4 and r.json()["data"]["probability"] == 45
    stages = api.get(f"/v1/pipelines/{pipeline['id']}", headers=h(tenant)).json()["data"]["stages"]
    assert [(s["name"], s["position"]) for s in stages] == [("Lead", 0), ("Offer", 1), ("Won", 2), ("Lost", 3),
                                                           ("Live demo", 4)]
    # A stage with deals keeps its kind (the deals' status follows it).
    make_deal(api, tenant, "In demo", pipelineId=pipeline["id"], stageId=demo)
    r = api.put(f"{base}/{demo}", headers=h(tenant), json={"kind": "won"})
    assert r.status_code == 409 and r.json()["errors"][0]["code"] == "STAGE_HAS_DEALS"
    assert api.put(f"{base}/{uuid.uuid4()}", headers=h(tenant), json={"name": "x"}).status_code == 404


def test_deleting_a_stage_moves_its_deals_to_the_named_stage(api: httpx.Client, tenant: dict[str, str]) -> None:
    pipeline = make_pipeline(api, tenant, "Migrate", THREE)
    other = make_pipeline(api, tenant, "Elsewhere", THREE)
    ids = stage_ids(pipeline)
    deals = [make_deal(api, tenant, f"D{i}", pipelineId=pipeline["id"], stageId=ids["Offer"])["id"] for i in range(3)]
    untouched = make_deal(api, tenant, "Stays", pipelineId=pipeline["id"], stageId=ids["Lead"])["id"]
    base = f"/v1/pipelines/{pipeline['id']}/stages/{ids['Offer']}"
    # Deals remain and no target: refused, nothing changes.
    r = api.delete(base, headers=h(tenant))
    assert r.status_code == 409 and r.json()["errors"][0]["code"] == "STAGE_HAS_DEALS"
    assert len(api.get(f"/v1/pipelines/{pipeline['id']}", headers=h(tenant)).json()["data"]["stages"]) == 3
    # The target must be another stage of the same pipeline.
    r = api.delete(base, headers=h(tenant), params={"moveDealsTo": stage_ids(other)["Offer"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "moveDealsTo"
    r = api.delete(base, headers=h(tenant), params={"moveDealsTo": ids["Offer"]})
    assert r.status_code == 422
    # A deal may not move into a stage being deleted... and after a refusal the stage is whole again.
    r = api.post(f"/v1/deals/{untouched}/move-stage", headers=h(tenant), json={"stageId": ids["Offer"]})
    assert r.status_code == 200
    # Now with a target: every deal of the stage moves, with history; the stage is gone.
    r = api.delete(base, headers=h(tenant), params={"moveDealsTo": ids["Won"]})
    assert r.status_code == 200, r.text
    answer = r.json()["data"]
    assert answer["movedDeals"] == 4 and [s["name"] for s in answer["pipeline"]["stages"]] == ["Lead", "Won"]
    assert [s["position"] for s in answer["pipeline"]["stages"]] == [0, 1]
    for deal_id in deals:
        deal = api.get(f"/v1/deals/{deal_id}", headers=h(tenant)).json()["data"]
        assert deal["stageId"] == ids["Won"] and deal["status"] == "won" and deal["closedAt"]
        last = api.get(f"/v1/deals/{deal_id}/history", headers=h(tenant)).json()["data"][0]
        assert (last["fromStageName"], last["toStageName"]) == ("Offer", "Won")
    # An empty stage goes without a target.
    empty = api.post(f"/v1/pipelines/{pipeline['id']}/stages", headers=h(tenant),
                     json={"name": "Empty", "probability": 5}).json()["data"]
    assert api.delete(f"/v1/pipelines/{pipeline['id']}/stages/{empty['id']}", headers=h(tenant)).status_code == 200
    # The last open stage stays.
    r = api.delete(f"/v1/pipelines/{pipeline['id']}/stages/{ids['Lead']}", headers=h(tenant),
                   params={"moveDealsTo": ids["Won"]})
    assert r.status_code == 409 and r.json()["errors"][0]["code"] == "OPEN_STAGE_REQUIRED"


def test_reorder_takes_exactly_the_pipelines_stage_ids(api: httpx.Client, tenant: dict[str, str]) -> None:
    pipeline = make_pipeline(api, tenant, "Order", THREE)
    ids = stage_ids(pipeline)
    path = f"/v1/pipelines/{pipeline['id']}/stages/reorder"
    new_order = [ids["Offer"], ids["Lead"], ids["Won"]]
    r = api.post(path, headers=h(tenant), json={"stageIds": new_order})
    assert r.status_code == 200 and [s["id"] for s in r.json()["data"]["stages"]] == new_order
    assert [s["position"] for s in r.json()["data"]["stages"]] == [0, 1, 2]
    foreign = stage_ids(make_pipeline(api, tenant, "Foreign", THREE))["Lead"]
    for bad, code in (([ids["Offer"], ids["Lead"]], "INCOMPLETE"), ([*new_order, foreign], "UNKNOWN_STAGE"),
                      ([ids["Offer"], ids["Offer"], ids["Won"]], "DUPLICATE"), ([], "INCOMPLETE"),
                      (["nope", ids["Lead"], ids["Won"]], "UNKNOWN_STAGE")):
        r = api.post(path, headers=h(tenant), json={"stageIds": bad})
        error = r.json()["errors"][0]
        assert r.status_code == 422 and (error["field"], error["code"]) == ("stageIds", code), bad
    got = api.get(f"/v1/pipelines/{pipeline['id']}", headers=h(tenant)).json()["data"]
    assert [s["id"] for s in got["stages"]] == new_order


def test_automation_rule_crud_and_validation(api: httpx.Client, tenant: dict[str, str]) -> None:
    pipeline = make_pipeline(api, tenant, "Rules", THREE)
    ids = stage_ids(pipeline)
    base = f"/v1/pipelines/{pipeline['id']}/automation"
    rule = {"name": "Commit on offer", "trigger": {"event": "stage_entered", "stageId": ids["Offer"]},
            "actions": [{"setField": {"field": "forecastCategory", "value": "commit"}},
                        {"notify": {"message": "Offer made"}},
                        {"webhook": {"url": "https://hooks.example.com/crm"}}]}
    r = api.post(base, headers=h(tenant), json=rule)
    assert r.status_code == 201, r.text
    made = r.json()["data"]
    assert made["enabled"] is True and made["trigger"]["event"] == "stage_entered"
    assert made["actions"][0] == {"setField": {"field": "forecastCategory", "value": "commit"}}
    listed = api.get(base, headers=h(tenant)).json()
    assert [x["id"] for x in listed["data"]] == [made["id"]] and listed["meta"]["pagination"]["total"] == 1
    r = api.put(f"{base}/{made['id']}", headers=h(tenant),
                json={**rule, "name": "Idle offers", "enabled": False,
                      "trigger": {"event": "stage_idle", "stageId": ids["Offer"], "idleHours": 72}})
    assert r.status_code == 200 and r.json()["data"]["enabled"] is False
    assert r.json()["data"]["trigger"]["idleHours"] == 72
    bad = {"name": "", "trigger": {"event": "stage_idle", "stageId": stage_ids(make_pipeline(api, tenant, "X", THREE))["Lead"]},
           "actions": [{"setField": {"field": "stageId", "value": "x"}}, {"webhook": {"url": "gopher://x"}},
                       {"assignOwner": {"ownerId": "someone"}}, {}]}
    r = api.post(base, headers=h(tenant), json=bad)
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {
        "name", "trigger.stageId", "trigger.idleHours", "actions[0].setField.field", "actions[1].webhook.url",
        "actions[2].assignOwner.ownerId", "actions[3]"}
    r = api.post(base, headers=h(tenant), json={"name": "none", "trigger": {"event": "stage_left"}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "actions"
    assert api.delete(f"{base}/{made['id']}", headers=h(tenant)).status_code == 200
    assert api.delete(f"{base}/{made['id']}", headers=h(tenant)).status_code == 404
    assert api.get(base, headers=h(tenant)).json()["data"] == []
