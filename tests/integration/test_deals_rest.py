"""Deals through real Envoy: CRUD, references checked against their services, lists, stage moves
with history and time in stage, clones, route pairs and the contacts' deal list."""

from __future__ import annotations

import uuid

import httpx

from services.devstack import DevStack
from tests.integration.conftest import account, mint, sign_up
from tests.integration.sales import default_pipeline, h, make_deal, make_pipeline, sql, stage_ids

STAGES = [("New", 10, "open"), ("Offer", 60, "open"), ("Won", 100, "won"), ("Lost", 0, "lost")]


def test_create_get_update_delete(api: httpx.Client, tenant: dict[str, str]) -> None:
    default = default_pipeline(api, tenant)
    r = api.post("/v1/deals", headers=h(tenant), json={"name": "  Big   deal ", "amount": "1250.5", "currency": "eur",
                                                       "expectedCloseDate": "2027-03-31", "tenantId": str(uuid.uuid4())})
    assert r.status_code == 201, r.text
    deal = r.json()["data"]
    # Without a pipeline: the default pipeline's first open stage; money as a decimal string.
    assert deal["pipelineId"] == default["id"] and deal["stageId"] == default["stages"][0]["id"]
    assert (deal["name"], deal["amount"], deal["currency"], deal["status"]) == ("Big deal", "1250.50", "EUR", "open")
    assert deal["ownerId"] and deal["ownerId"] == deal["createdBy"] and deal["stageEnteredAt"]
    assert api.get(f"/v1/deals/{deal['id']}", headers=h(tenant)).json()["data"] == deal
    # A masked update changes only the named fields.
    r = api.put(f"/v1/deals/{deal['id']}?updateMask=amount,description", headers=h(tenant),
                json={"amount": "99.99", "description": "renewal", "name": "ignored"})
    assert r.status_code == 200 and r.json()["data"]["amount"] == "99.99" and r.json()["data"]["name"] == "Big deal"
    # A full update replaces the writable fields; empty pipeline, stage, owner and status keep theirs.
    r = api.put(f"/v1/deals/{deal['id']}", headers=h(tenant), json={"name": "Renamed", "currency": "USD"})
    got = r.json()["data"]
    assert r.status_code == 200 and (got["name"], got["amount"], got["currency"], got["description"]) == (
        "Renamed", "0.00", "USD", "")
    assert got["stageId"] == deal["stageId"] and got["ownerId"] == deal["ownerId"]
    assert api.delete(f"/v1/deals/{deal['id']}", headers=h(tenant)).status_code == 200
    r = api.get(f"/v1/deals/{deal['id']}", headers=h(tenant))
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NOT_FOUND"
    assert api.get("/v1/deals/not-a-uuid", headers=h(tenant)).status_code == 400


def test_invalid_values_are_422_naming_the_field(api: httpx.Client, tenant: dict[str, str]) -> None:
    r = api.post("/v1/deals", headers=h(tenant), json={"name": "", "amount": "12.345", "currency": "EURO",
                                                       "expectedCloseDate": "31/03/2027", "forecastCategory": "sure",
                                                       "contactId": "x"})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"name", "amount", "currency", "expectedCloseDate",
                                                        "forecastCategory", "contactId"}
    r = api.post("/v1/deals", headers=h(tenant), json={"name": "A", "amount": "-5"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "amount"
    default = default_pipeline(api, tenant)
    pipeline = make_pipeline(api, tenant, "P", STAGES)
    r = api.post("/v1/deals", headers=h(tenant), json={"name": "A", "pipelineId": pipeline["id"], "status": "won"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "status"
    # A stage of another pipeline of the same tenant.
    r = api.post("/v1/deals", headers=h(tenant), json={"name": "A", "pipelineId": pipeline["id"],
                                                       "stageId": default["stages"][0]["id"]})
    assert r.status_code == 422 and r.json()["errors"][0] == {**r.json()["errors"][0], "field": "stageId",
                                                               "code": "FOREIGN_STAGE"}
    # Created straight into a won stage: won, with a close time.
    won = make_deal(api, tenant, "Done", pipelineId=pipeline["id"], stageId=stage_ids(pipeline)["Won"])
    assert won["status"] == "won" and won["closedAt"]


def test_references_of_another_tenant_are_422(api: httpx.Client, tenant: dict[str, str]) -> None:
    other = sign_up(api)
    theirs = make_pipeline(api, other, "Theirs", STAGES)
    their_contact = api.post("/v1/contacts", headers=h(other), json={"firstName": "Them"}).json()["data"]["id"]
    mine = make_pipeline(api, tenant, "Mine", STAGES)
    for body, field in (({"pipelineId": theirs["id"]}, "pipelineId"),
                        ({"pipelineId": mine["id"], "stageId": theirs["stages"][0]["id"]}, "stageId"),
                        ({"stageId": theirs["stages"][0]["id"]}, "stageId"),
                        ({"contactId": their_contact}, "contactId")):
        r = api.post("/v1/deals", headers=h(tenant), json={"name": "X", **body})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, (body, r.text)
    my_contact = api.post("/v1/contacts", headers=h(tenant), json={"firstName": "Me"}).json()["data"]["id"]
    deal = make_deal(api, tenant, "Linked", contactId=my_contact)
    assert deal["contactId"] == my_contact
    r = api.put(f"/v1/deals/{deal['id']}?updateMask=contactId", headers=h(tenant), json={"contactId": their_contact})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "contactId"
    # Accounts are checked like contacts: another tenant's (or no) account is refused.
    mine_acct = account(api, tenant)
    assert make_deal(api, tenant, "With account", accountId=mine_acct)["accountId"] == mine_acct
    r = api.post("/v1/deals", headers=h(tenant), json={"name": "Foreign", "accountId": account(api, other)})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "accountId"
    # Someone else's deal is simply not there.
    their_deal = make_deal(api, other, "Theirs")
    assert api.get(f"/v1/deals/{their_deal['id']}", headers=h(tenant)).status_code == 404
    r = api.post(f"/v1/deals/{their_deal['id']}/move-stage", headers=h(tenant), json={"stageId": mine["stages"][1]["id"]})
    assert r.status_code == 404


def test_list_filters_sort_and_search(api: httpx.Client, tenant: dict[str, str]) -> None:
    default_pipeline(api, tenant)
    pipeline = make_pipeline(api, tenant, "Filters", STAGES)
    ids = stage_ids(pipeline)
    contact = api.post("/v1/contacts", headers=h(tenant), json={"firstName": "C"}).json()["data"]["id"]
    acct, owner = account(api, tenant), str(uuid.uuid4())
    p = pipeline["id"]
    a = make_deal(api, tenant, "Alpha rollout", pipelineId=p, amount="100", currency="EUR", expectedCloseDate="2027-01-10",
                  contactId=contact)
    b = make_deal(api, tenant, "Beta renewal", pipelineId=p, stageId=ids["Offer"], amount="2500.50", currency="EUR",
                  expectedCloseDate="2027-02-20", accountId=acct)
    c = make_deal(api, tenant, "Gamma", pipelineId=p, stageId=ids["Won"], amount="75", currency="USD", ownerId=owner)
    make_deal(api, tenant, "Elsewhere")  # default pipeline

    def names(**params: str) -> list[str]:
        r = api.get("/v1/deals", headers=h(tenant), params={"pipelineId": p, "sort": "name", **params})
        assert r.status_code == 200, r.text
        return [d["name"] for d in r.json()["data"]]

    assert names() == ["Alpha rollout", "Beta renewal", "Gamma"]
    assert names(stageId=ids["Offer"]) == ["Beta renewal"]
    assert names(status="won") == ["Gamma"]
    assert names(ownerId=owner) == ["Gamma"]
    assert names(accountId=acct) == ["Beta renewal"]
    assert names(contactId=contact) == ["Alpha rollout"]
    assert names(currency="EUR") == ["Alpha rollout", "Beta renewal"]
    assert names(expectedCloseFrom="2027-01-11", expectedCloseTo="2027-12-31") == ["Beta renewal"]
    assert names(amountMin="75", amountMax="100") == ["Alpha rollout", "Gamma"]
    assert names(search="renew") == ["Beta renewal"]
    assert names(sort="-amount") == ["Beta renewal", "Alpha rollout", "Gamma"]
    assert len(api.get("/v1/deals", headers=h(tenant)).json()["data"]) == 4
    # Keyset paging on a decimal sort.
    first = api.get("/v1/deals", headers=h(tenant), params={"pipelineId": p, "sort": "amount", "limit": 2}).json()
    assert [d["id"] for d in first["data"]] == [c["id"], a["id"]]
    token = first["meta"]["pagination"]["nextPageToken"]
    rest = api.get("/v1/deals", headers=h(tenant), params={"pipelineId": p, "sort": "amount", "limit": 2, "pageToken": token})
    assert [d["id"] for d in rest.json()["data"]] == [b["id"]]
    for bad in ({"status": "maybe"}, {"amountMin": "lots"}, {"expectedCloseFrom": "soon"}, {"sort": "stageId"}):
        r = api.get("/v1/deals", headers=h(tenant), params=bad)
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == next(iter(bad)), bad


def test_move_stage_history_and_time_in_stage(api: httpx.Client, stack: DevStack, tenant: dict[str, str]) -> None:
    pipeline = make_pipeline(api, tenant, "Moves", STAGES)
    ids = stage_ids(pipeline)
    deal = make_deal(api, tenant, "Mover", pipelineId=pipeline["id"], amount="10", currency="EUR")
    move = f"/v1/deals/{deal['id']}/move-stage"
    # A stage of another pipeline is refused, whoever owns it.
    foreign = stage_ids(make_pipeline(api, tenant, "Other", STAGES))["Offer"]
    for stage in (foreign, str(uuid.uuid4()), stage_ids(make_pipeline(api, sign_up(api), "T", STAGES))["Offer"]):
        r = api.post(move, headers=h(tenant), json={"stageId": stage})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "stageId"
        assert r.json()["errors"][0]["code"] == "FOREIGN_STAGE"
    assert api.post(move, headers=h(tenant), json={}).status_code == 422
    # An hour in New, then Offer.
    sql(stack, "UPDATE deals.deals SET stage_entered_at = now() - interval '1 hour' WHERE id = $1", uuid.UUID(deal["id"]))
    r = api.post(move, headers=h(tenant), json={"stageId": ids["Offer"]})
    assert r.status_code == 200 and r.json()["data"]["stageId"] == ids["Offer"] and r.json()["data"]["status"] == "open"
    # Lost, with a reason; then back to open, which clears close time and reason; then won.
    lost = api.post(move, headers=h(tenant), json={"stageId": ids["Lost"], "lostReason": "price"}).json()["data"]
    assert (lost["status"], lost["lostReason"]) == ("lost", "price") and lost["closedAt"]
    reopened = api.post(move, headers=h(tenant), json={"stageId": ids["New"]}).json()["data"]
    assert (reopened["status"], reopened["lostReason"], reopened.get("closedAt")) == ("open", "", None)
    won = api.post(move, headers=h(tenant), json={"stageId": ids["Won"]}).json()["data"]
    assert won["status"] == "won" and won["closedAt"]
    # Moving to the stage it is in changes nothing.
    assert api.post(move, headers=h(tenant), json={"stageId": ids["Won"]}).json()["data"]["updatedAt"] == won["updatedAt"]
    r = api.get(f"/v1/deals/{deal['id']}/history", headers=h(tenant))
    history = r.json()["data"]
    assert r.json()["meta"]["pagination"]["total"] == 5
    assert [(e["fromStageName"], e["toStageName"], e["toStatus"]) for e in history] == [
        ("New", "Won", "won"), ("Lost", "New", "open"), ("Offer", "Lost", "lost"), ("New", "Offer", "open"),
        ("", "New", "open")]
    first_move = history[3]
    assert 3590 <= first_move["timeInStageSeconds"] <= 3700
    assert first_move["changedBy"] == deal["ownerId"] and first_move["changedAt"] and first_move["fromStatus"] == "open"
    assert history[-1]["fromStageId"] == "" and history[-1]["changedAt"] == deal["createdAt"]
    assert api.get(f"/v1/deals/{uuid.uuid4()}/history", headers=h(tenant)).status_code == 404


def test_clone(api: httpx.Client, tenant: dict[str, str]) -> None:
    pipeline = make_pipeline(api, tenant, "Clones", STAGES)
    ids = stage_ids(pipeline)
    source = make_deal(api, tenant, "Original", pipelineId=pipeline["id"], stageId=ids["Offer"], amount="500",
                       currency="GBP", expectedCloseDate="2027-05-01", description="d", customFields={"k": "v"})
    r = api.post(f"/v1/deals/{source['id']}/clone", headers=h(tenant), json={})
    assert r.status_code == 201
    copy = r.json()["data"]
    assert copy["id"] != source["id"] and copy["name"] == "Original (copy)"
    for key in ("amount", "currency", "expectedCloseDate", "description", "customFields", "stageId", "pipelineId"):
        assert copy[key] == source[key], key
    assert len(api.get(f"/v1/deals/{copy['id']}/history", headers=h(tenant)).json()["data"]) == 1
    # A won deal's clone starts in the first open stage; name and stage can be given.
    api.post(f"/v1/deals/{source['id']}/move-stage", headers=h(tenant), json={"stageId": ids["Won"]}).raise_for_status()
    again = api.post(f"/v1/deals/{source['id']}/clone", headers=h(tenant), json={}).json()["data"]
    assert again["stageId"] == ids["New"] and again["status"] == "open"
    named = api.post(f"/v1/deals/{source['id']}/clone", headers=h(tenant),
                     json={"name": "Next year", "stageId": ids["Offer"]}).json()["data"]
    assert (named["name"], named["stageId"]) == ("Next year", ids["Offer"])
    r = api.post(f"/v1/deals/{source['id']}/clone", headers=h(tenant), json={"stageId": str(uuid.uuid4())})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "stageId"


def test_literal_routes_beside_deal_id(api: httpx.Client, tenant: dict[str, str]) -> None:
    deal = make_deal(api, tenant, "Routes")
    assert api.get(f"/v1/deals/{deal['id']}", headers=h(tenant)).json()["data"]["id"] == deal["id"]
    forecast = api.get("/v1/deals/forecast", headers=h(tenant))
    assert forecast.status_code == 200 and "periods" in forecast.json()["data"]
    for name, key in (("conversion", "stages"), ("velocity", "stages"), ("win-loss", "lostReasons"),
                      ("forecast", "periods"), ("performance", "owners")):
        r = api.get(f"/v1/deals/analytics/{name}", headers=h(tenant))
        assert r.status_code == 200 and key in r.json()["data"], (name, r.text)
    pipeline_id = deal["pipelineId"]
    board = api.get(f"/v1/deals/pipeline/{pipeline_id}", headers=h(tenant))
    assert board.status_code == 200 and board.json()["data"]["pipelineId"] == pipeline_id
    assert api.get(f"/v1/deals/{deal['id']}/history", headers=h(tenant)).json()["data"][0]["dealId"] == deal["id"]
    r = api.post("/v1/deals/bulk-update", headers=h(tenant), json={"ids": [deal["id"]], "changes": {"description": "b"}})
    assert r.status_code == 200 and r.json()["data"]["results"][0]["deal"]["description"] == "b"
    # Literal words are not ids, and the analytics have no catch-all.
    assert api.get("/v1/deals/analytics", headers=h(tenant)).status_code == 400
    assert api.get("/v1/deals/analytics/unknown", headers=h(tenant)).status_code == 404
    assert api.put("/v1/deals/forecast", headers=h(tenant), json={"name": "x"}).status_code == 400
    assert api.get("/v1/deals/pipeline", headers=h(tenant)).status_code == 400


def test_contacts_deals_come_from_the_deals_service(api: httpx.Client, tenant: dict[str, str]) -> None:
    contact = api.post("/v1/contacts", headers=h(tenant), json={"firstName": "Dee"}).json()["data"]["id"]
    mine = [make_deal(api, tenant, f"For Dee {i}", contactId=contact)["id"] for i in range(3)]
    make_deal(api, tenant, "Not Dee's")
    r = api.get(f"/v1/contacts/{contact}/deals", headers=h(tenant), params={"limit": 2})
    assert r.status_code == 200, r.text
    assert r.json()["meta"]["pagination"]["total"] == 3 and len(r.json()["data"]) == 2
    assert {d["id"] for d in r.json()["data"]} <= set(mine) and r.json()["data"][0]["contactId"] == contact
    assert api.get(f"/v1/contacts/{uuid.uuid4()}/deals", headers=h(tenant)).status_code == 404


def test_a_rep_reads_every_deal_but_changes_only_their_own(api: httpx.Client, stack: DevStack,
                                                            tenant: dict[str, str]) -> None:
    t = tenant["x-tenant-id"]
    admins = make_deal(api, tenant, "Admin's")
    rep_id = str(uuid.uuid4())
    rep = {"authorization": f"Bearer {mint(stack, tenant_id=t, user_id=rep_id, roles=['sales_rep'])}", "x-tenant-id": t}
    assert api.get(f"/v1/deals/{admins['id']}", headers=rep).status_code == 200
    r = api.put(f"/v1/deals/{admins['id']}?updateMask=name", headers=rep, json={"name": "Mine now"})
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "OUT_OF_SCOPE"
    r = api.post(f"/v1/deals/{admins['id']}/move-stage", headers=rep, json={"stageId": admins["stageId"]})
    assert r.status_code == 200  # no move, nothing written
    own = api.post("/v1/deals", headers=rep, json={"name": "Rep's"})
    assert own.status_code == 201 and own.json()["data"]["ownerId"] == rep_id
    assert api.delete(f"/v1/deals/{admins['id']}", headers=rep).status_code == 403
    assert api.delete(f"/v1/deals/{own.json()['data']['id']}", headers=rep).status_code == 200
    reader = {"authorization": f"Bearer {mint(stack, tenant_id=t, roles=['read_only'])}", "x-tenant-id": t}
    r = api.post("/v1/deals", headers=reader, json={"name": "no"})
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "MISSING_PERMISSION"


def test_an_update_that_changes_the_stage_is_a_move(api: httpx.Client, tenant: dict[str, str]) -> None:
    pipeline = make_pipeline(api, tenant, "Put moves", STAGES)
    ids = stage_ids(pipeline)
    other = make_pipeline(api, tenant, "Next pipeline", [("Intake", 5, "open"), ("Done", 100, "won")])
    deal = make_deal(api, tenant, "Put", pipelineId=pipeline["id"])
    r = api.put(f"/v1/deals/{deal['id']}?updateMask=stageId", headers=h(tenant), json={"stageId": ids["Lost"]})
    assert r.status_code == 200 and r.json()["data"]["status"] == "lost"
    r = api.put(f"/v1/deals/{deal['id']}?updateMask=stageId", headers=h(tenant), json={"stageId": stage_ids(other)["Done"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "stageId"
    r = api.put(f"/v1/deals/{deal['id']}?updateMask=status", headers=h(tenant), json={"status": "won"})
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "STATUS_FOLLOWS_STAGE"
    # Another pipeline: its first open stage unless one is named.
    r = api.put(f"/v1/deals/{deal['id']}?updateMask=pipelineId", headers=h(tenant), json={"pipelineId": other["id"]})
    moved = r.json()["data"]
    assert (moved["pipelineId"], moved["stageId"], moved["status"]) == (other["id"], stage_ids(other)["Intake"], "open")
    history = api.get(f"/v1/deals/{deal['id']}/history", headers=h(tenant)).json()["data"]
    assert [(e["fromStageName"], e["toStageName"]) for e in history] == [("Lost", "Intake"), ("New", "Lost"), ("", "New")]
    assert history[0]["fromPipelineId"] == pipeline["id"] and history[0]["pipelineId"] == other["id"]
    # validateOnly (what automation dry runs use) answers the result and saves nothing.
    r = api.put(f"/v1/deals/{deal['id']}?updateMask=name&validateOnly=true", headers=h(tenant), json={"name": "Dry"})
    assert r.status_code == 200 and r.json()["data"]["name"] == "Dry"
    assert api.get(f"/v1/deals/{deal['id']}", headers=h(tenant)).json()["data"]["name"] == "Put"
