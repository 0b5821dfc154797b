"""Accounts through real Envoy: CRUD, lists, hierarchy, territories, sub-lists and the events
every change publishes."""

from __future__ import annotations

import uuid

import httpx

from services.devstack import DevStack
from tests.integration.accounts_support import DEALS_DEPLOYED, account, contact, errors, events
from tests.integration.conftest import mint, sign_up
from tests.integration.test_contacts_rest import h


def test_create_get_update_delete(api: httpx.Client, tenant: dict[str, str]) -> None:
    r = api.post("/v1/accounts", headers=h(tenant), json={
        "name": "  Acme   Corp ", "domain": "https://www.ACME.com/about", "industry": "Software",
        "website": "acme.com", "employeeCount": 120, "annualRevenue": "1250000.5", "currency": "eur",
        "tags": ["vip", "VIP", "b2b"], "address": {"city": "Berlin", "country": "de"}, "tenantId": str(uuid.uuid4()),
    })
    assert r.status_code == 201, r.text
    made = r.json()["data"]
    assert made["name"] == "Acme Corp" and made["domain"] == "acme.com" and made["website"] == "https://acme.com"
    assert made["annualRevenue"] == "1250000.50" and made["currency"] == "EUR"
    assert made["tags"] == ["vip", "b2b"] and (made["address"]["city"], made["address"]["country"]) == ("Berlin", "DE")
    assert made["ownerId"] and made["createdAt"] and made["parentId"] == "" and made["territory"] == ""
    got = api.get(f"/v1/accounts/{made['id']}", headers=h(tenant)).json()["data"]
    assert got == made
    r = api.put(f"/v1/accounts/{made['id']}?updateMask=industry,employeeCount", headers=h(tenant),
                json={"industry": "Manufacturing", "employeeCount": 150, "name": "ignored"})
    assert r.status_code == 200, r.text
    updated = r.json()["data"]
    assert (updated["industry"], updated["employeeCount"], updated["name"]) == ("Manufacturing", 150, "Acme Corp")
    # A full PUT replaces every writable field.
    r = api.put(f"/v1/accounts/{made['id']}", headers=h(tenant), json={"name": "Acme Inc"})
    assert r.status_code == 200 and r.json()["data"]["domain"] == "" and r.json()["data"]["tags"] == []
    assert api.delete(f"/v1/accounts/{made['id']}", headers=h(tenant)).status_code == 200
    r = api.get(f"/v1/accounts/{made['id']}", headers=h(tenant))
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NOT_FOUND"
    assert api.delete(f"/v1/accounts/{made['id']}", headers=h(tenant)).status_code == 404


def test_bad_input_is_422_naming_the_field(api: httpx.Client, tenant: dict[str, str]) -> None:
    r = api.post("/v1/accounts", headers=h(tenant), json={
        "domain": "not a domain", "website": "ftp://x.com", "annualRevenue": "12.345", "currency": "euro",
        "parentId": "nope", "territory": "Bad Key!", "employeeCount": -1, "address": {"country": "Germany"},
    })
    assert r.status_code == 422
    assert set(errors(r)) >= {("name", "REQUIRED"), ("domain", "INVALID"), ("website", "INVALID"),
                              ("annualRevenue", "INVALID"), ("currency", "INVALID"), ("parentId", "INVALID"),
                              ("territory", "INVALID"), ("employeeCount", "OUT_OF_RANGE"), ("address.country", "INVALID")}
    r = api.post("/v1/accounts", headers=h(tenant), json={"name": "X", "annualRevenue": "10"})
    assert r.status_code == 422 and errors(r) == [("currency", "REQUIRED")]
    r = api.post("/v1/accounts", headers=h(tenant), json={"name": "X", "territory": "nowhere"})
    assert r.status_code == 422 and errors(r) == [("territory", "NOT_FOUND")]
    r = api.post("/v1/accounts", headers=h(tenant), json={"name": "X", "parentId": str(uuid.uuid4())})
    assert r.status_code == 422 and errors(r) == [("parentId", "NOT_FOUND")]
    made = account(api, tenant, "Keep")
    r = api.put(f"/v1/accounts/{made['id']}?updateMask=nme", headers=h(tenant), json={"name": "x"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "updateMask"
    r = api.put(f"/v1/accounts/{made['id']}?updateMask=name", headers=h(tenant), json={"name": "  "})
    assert r.status_code == 422 and errors(r) == [("name", "REQUIRED")]
    assert api.get("/v1/accounts/not-a-uuid", headers=h(tenant)).status_code == 400
    assert api.get("/v1/accounts", headers=h(tenant)).json()["meta"]["pagination"]["total"] == 1


def test_list_filters_search_sort_and_pages(api: httpx.Client, tenant: dict[str, str]) -> None:
    api.post("/v1/accounts/territories", headers=h(tenant), json={"key": "emea", "name": "EMEA"})
    parent = account(api, tenant, "Globex Holding", domain="globex.com", industry="Finance")
    account(api, tenant, "Globex Österreich", domain="globex.at", industry="finance", parentId=parent["id"],
            territory="emea", tags=["vip"])
    account(api, tenant, "Initech", domain="initech.io", industry="Software", territory="emea")
    account(api, tenant, "Umbrella", domain="umbrella.com", industry="Pharma")
    q = lambda query: api.get(f"/v1/accounts?{query}", headers=h(tenant))
    names = lambda r: [a["name"] for a in r.json()["data"]]
    assert names(q("sort=name")) == ["Globex Holding", "Globex Österreich", "Initech", "Umbrella"]
    assert names(q("name=initech")) == ["Initech"]
    assert names(q("domain=GLOBEX.AT")) == ["Globex Österreich"]
    assert names(q("industry=FINANCE&sort=name")) == ["Globex Holding", "Globex Österreich"]
    assert names(q("territory=emea&sort=name")) == ["Globex Österreich", "Initech"]
    assert names(q(f"parentId={parent['id']}")) == ["Globex Österreich"]
    assert names(q("tag=vip")) == ["Globex Österreich"]
    assert names(q("search=osterreich")) == ["Globex Österreich"]  # accent-folded
    assert names(q("search=globex&sort=-name")) == ["Globex Österreich", "Globex Holding"]
    other_owner = str(uuid.uuid4())
    assert names(q(f"ownerId={other_owner}")) == []
    assert len(q(f"ownerId={parent['ownerId']}").json()["data"]) == 4
    first = q("sort=name&limit=3").json()["meta"]["pagination"]
    assert (first["page"], first["limit"], first["total"], first["hasNext"], first["hasPrev"]) == (1, 3, 4, True, False)
    token = first["nextPageToken"]
    assert names(q(f"sort=name&limit=3&pageToken={token}")) == ["Umbrella"]
    assert names(q("sort=name&limit=3&page=2")) == ["Umbrella"]
    assert q("sort=website").status_code == 400 and q("sort=website").json()["errors"][0]["field"] == "sort"
    assert q("parentId=zzz").status_code == 400
    assert q("limit=101").status_code == 400


def test_hierarchy_is_the_whole_tree_under_the_root(api: httpx.Client, tenant: dict[str, str]) -> None:
    root = account(api, tenant, "Root")
    b = account(api, tenant, "B", parentId=root["id"])
    a = account(api, tenant, "A", parentId=root["id"])
    a1 = account(api, tenant, "A1", parentId=a["id"])
    a2 = account(api, tenant, "A2", parentId=a["id"])
    lone = account(api, tenant, "Lone")
    r = api.get(f"/v1/accounts/{a1['id']}/hierarchy", headers=h(tenant))
    assert r.status_code == 200, r.text
    tree = r.json()["data"]
    assert (tree["accountId"], tree["rootId"], tree["nodeCount"], tree["depth"], tree["truncated"]) == (
        a1["id"], root["id"], 5, 3, False)
    top = tree["root"]
    assert top["account"]["name"] == "Root" and top["depth"] == 0
    assert [n["account"]["name"] for n in top["children"]] == ["A", "B"]  # children by name
    assert [n["account"]["id"] for n in top["children"][0]["children"]] == [a1["id"], a2["id"]]
    assert top["children"][0]["children"][0]["depth"] == 2 and top["children"][1]["children"] == []
    assert b["parentId"] == root["id"]
    alone = api.get(f"/v1/accounts/{lone['id']}/hierarchy", headers=h(tenant)).json()["data"]
    assert (alone["rootId"], alone["nodeCount"], alone["depth"], alone["root"]["children"]) == (lone["id"], 1, 1, [])
    assert api.get(f"/v1/accounts/{uuid.uuid4()}/hierarchy", headers=h(tenant)).status_code == 404


def test_cycles_are_refused_through_any_number_of_levels(api: httpx.Client, tenant: dict[str, str]) -> None:
    chain = [account(api, tenant, "L0")]
    for level in range(1, 5):
        chain.append(account(api, tenant, f"L{level}", parentId=chain[-1]["id"]))
    top, bottom = chain[0], chain[-1]
    for candidate in (bottom, chain[2], chain[1]):  # four, two and one levels below
        r = api.put(f"/v1/accounts/{top['id']}/parent", headers=h(tenant), json={"parentId": candidate["id"]})
        assert r.status_code == 422 and errors(r) == [("parentId", "HIERARCHY_CYCLE")], r.text
    r = api.put(f"/v1/accounts/{top['id']}/parent", headers=h(tenant), json={"parentId": top["id"]})
    assert r.status_code == 422 and errors(r) == [("parentId", "HIERARCHY_CYCLE")]
    # The same through a full update and through "add child".
    r = api.put(f"/v1/accounts/{top['id']}?updateMask=parentId", headers=h(tenant), json={"parentId": bottom["id"]})
    assert r.status_code == 422 and errors(r) == [("parentId", "HIERARCHY_CYCLE")]
    r = api.post(f"/v1/accounts/{bottom['id']}/children", headers=h(tenant), json={"childId": top["id"]})
    assert r.status_code == 422 and errors(r) == [("childId", "HIERARCHY_CYCLE")]
    assert api.get(f"/v1/accounts/{top['id']}", headers=h(tenant)).json()["data"]["parentId"] == ""
    # Moving a middle account elsewhere in its own tree is fine.
    r = api.put(f"/v1/accounts/{chain[3]['id']}/parent", headers=h(tenant), json={"parentId": top["id"]})
    assert r.status_code == 200 and r.json()["data"]["parentId"] == top["id"]


def test_hierarchy_depth_is_bounded(api: httpx.Client, tenant: dict[str, str]) -> None:
    chain = [account(api, tenant, "D1")]
    for level in range(2, 11):  # ten levels: the most a hierarchy may have
        chain.append(account(api, tenant, f"D{level}", parentId=chain[-1]["id"]))
    r = api.post("/v1/accounts", headers=h(tenant), json={"name": "D11", "parentId": chain[-1]["id"]})
    assert r.status_code == 422 and errors(r) == [("parentId", "HIERARCHY_TOO_DEEP")]
    # A two-level subtree may not hang where only one level is left.
    sub = account(api, tenant, "S1")
    account(api, tenant, "S2", parentId=sub["id"])
    r = api.put(f"/v1/accounts/{sub['id']}/parent", headers=h(tenant), json={"parentId": chain[8]["id"]})
    assert r.status_code == 422 and errors(r) == [("parentId", "HIERARCHY_TOO_DEEP")]
    r = api.put(f"/v1/accounts/{sub['id']}/parent", headers=h(tenant), json={"parentId": chain[7]["id"]})
    assert r.status_code == 200
    tree = api.get(f"/v1/accounts/{sub['id']}/hierarchy", headers=h(tenant)).json()["data"]
    assert tree["depth"] == 10 and tree["nodeCount"] == 12


def test_children_add_existing_or_new_and_list(api: httpx.Client, tenant: dict[str, str]) -> None:
    parent = account(api, tenant, "Parent")
    existing = account(api, tenant, "Existing")
    r = api.post(f"/v1/accounts/{parent['id']}/children", headers=h(tenant), json={"childId": existing["id"]})
    assert r.status_code == 201 and r.json()["data"]["parentId"] == parent["id"]
    r = api.post(f"/v1/accounts/{parent['id']}/children", headers=h(tenant),
                 json={"account": {"name": "Brand New", "domain": "new.example.com"}})
    assert r.status_code == 201, r.text
    new = r.json()["data"]
    assert new["parentId"] == parent["id"] and new["domain"] == "new.example.com"
    r = api.get(f"/v1/accounts/{parent['id']}/children", headers=h(tenant))
    assert [a["name"] for a in r.json()["data"]] == ["Brand New", "Existing"]
    assert r.json()["meta"]["pagination"]["total"] == 2
    r = api.post(f"/v1/accounts/{parent['id']}/children", headers=h(tenant), json={})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "childId"
    r = api.post(f"/v1/accounts/{parent['id']}/children", headers=h(tenant), json={"account": {"domain": "x.com"}})
    assert r.status_code == 422 and errors(r) == [("account.name", "REQUIRED")]
    r = api.post(f"/v1/accounts/{parent['id']}/children", headers=h(tenant), json={"childId": str(uuid.uuid4())})
    assert r.status_code == 422 and errors(r) == [("childId", "NOT_FOUND")]
    r = api.post(f"/v1/accounts/{parent['id']}/children", headers=h(tenant), json={"childId": parent["id"]})
    assert r.status_code == 422 and errors(r) == [("childId", "HIERARCHY_CYCLE")]
    assert api.post(f"/v1/accounts/{uuid.uuid4()}/children", headers=h(tenant),
                    json={"childId": existing["id"]}).status_code == 404
    # Deleting the parent makes its children roots.
    assert api.delete(f"/v1/accounts/{parent['id']}", headers=h(tenant)).status_code == 200
    assert api.get(f"/v1/accounts/{existing['id']}", headers=h(tenant)).json()["data"]["parentId"] == ""


def test_parent_get_set_and_clear(api: httpx.Client, tenant: dict[str, str]) -> None:
    parent, child = account(api, tenant, "P"), account(api, tenant, "C")
    r = api.get(f"/v1/accounts/{child['id']}/parent", headers=h(tenant))
    assert r.status_code == 200 and r.json()["data"]["parentId"] == "" and "parent" not in r.json()["data"]
    r = api.put(f"/v1/accounts/{child['id']}/parent", headers=h(tenant), json={"parentId": parent["id"]})
    assert r.status_code == 200 and r.json()["data"]["parentId"] == parent["id"]
    got = api.get(f"/v1/accounts/{child['id']}/parent", headers=h(tenant)).json()["data"]
    assert got["parentId"] == parent["id"] and got["parent"]["name"] == "P"
    r = api.put(f"/v1/accounts/{child['id']}/parent", headers=h(tenant), json={"parentId": ""})
    assert r.status_code == 200 and r.json()["data"]["parentId"] == ""
    r = api.put(f"/v1/accounts/{child['id']}/parent", headers=h(tenant), json={"parentId": "x"})
    assert r.status_code == 422 and errors(r) == [("parentId", "INVALID")]
    assert api.get(f"/v1/accounts/{uuid.uuid4()}/parent", headers=h(tenant)).status_code == 404


def test_territories_defined_by_the_tenant(api: httpx.Client, tenant: dict[str, str]) -> None:
    r = api.post("/v1/accounts/territories", headers=h(tenant),
                 json={"key": "EMEA-North", "name": "EMEA North", "description": "Nordics and Baltics"})
    assert r.status_code == 201, r.text
    assert r.json()["data"]["key"] == "emea-north" and r.json()["data"]["accountCount"] == 0
    r = api.post("/v1/accounts/territories", headers=h(tenant), json={"key": "emea-north", "name": "Again"})
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "key"
    r = api.post("/v1/accounts/territories", headers=h(tenant), json={"key": "no spaces", "name": ""})
    assert r.status_code == 422 and set(errors(r)) == {("key", "INVALID"), ("name", "REQUIRED")}
    api.post("/v1/accounts/territories", headers=h(tenant), json={"key": "apac", "name": "APAC"})
    acme = account(api, tenant, "Acme")
    r = api.get(f"/v1/accounts/{acme['id']}/territory", headers=h(tenant))
    assert r.status_code == 200 and r.json()["data"] == {"accountId": acme["id"], "territory": ""}
    r = api.put(f"/v1/accounts/{acme['id']}/territory", headers=h(tenant), json={"territory": "atlantis"})
    assert r.status_code == 422 and errors(r) == [("territory", "NOT_FOUND")]
    r = api.put(f"/v1/accounts/{acme['id']}/territory", headers=h(tenant), json={"territory": "emea-north"})
    assert r.status_code == 200, r.text
    assigned = r.json()["data"]
    assert assigned["territory"] == "emea-north" and assigned["details"]["name"] == "EMEA North"
    assert assigned["details"]["accountCount"] == 1
    assert api.get(f"/v1/accounts/{acme['id']}", headers=h(tenant)).json()["data"]["territory"] == "emea-north"
    r = api.get("/v1/accounts/territories", headers=h(tenant))
    assert [(x["key"], x["accountCount"]) for x in r.json()["data"]] == [("apac", 0), ("emea-north", 1)]
    r = api.put("/v1/accounts/territories/emea-north", headers=h(tenant), json={"name": "Nordics", "key": "changed"})
    assert r.status_code == 200 and r.json()["data"]["name"] == "Nordics" and r.json()["data"]["key"] == "emea-north"
    r = api.delete("/v1/accounts/territories/emea-north", headers=h(tenant))
    assert r.status_code == 409 and r.json()["errors"][0]["code"] == "TERRITORY_IN_USE"
    assert api.put(f"/v1/accounts/{acme['id']}/territory", headers=h(tenant), json={"territory": ""}).status_code == 200
    assert api.delete("/v1/accounts/territories/emea-north", headers=h(tenant)).status_code == 200
    assert api.get("/v1/accounts/territories/emea-north", headers=h(tenant)).status_code == 404
    # Another tenant neither sees nor uses this tenant's territories.
    other = sign_up(api)
    assert api.get("/v1/accounts/territories/apac", headers=h(other)).status_code == 404
    r = api.post("/v1/accounts", headers=h(other), json={"name": "Theirs", "territory": "apac"})
    assert r.status_code == 422 and errors(r) == [("territory", "NOT_FOUND")]


def test_territory_management_needs_its_own_permission(api: httpx.Client, stack: DevStack,
                                                       tenant: dict[str, str]) -> None:
    t = tenant["x-tenant-id"]
    rep = {"authorization": f"Bearer {mint(stack, tenant_id=t, roles=['sales_rep'])}", "x-tenant-id": t}
    r = api.post("/v1/accounts/territories", headers=rep, json={"key": "mine", "name": "Mine"})
    assert r.status_code == 403
    assert api.get("/v1/accounts/territories", headers=rep).status_code == 200


def test_route_pairs_reach_the_right_rpc(api: httpx.Client, tenant: dict[str, str]) -> None:
    acme = account(api, tenant, "Acme")
    # A territory whose key is also the name of an account sub-resource.
    assert api.post("/v1/accounts/territories", headers=h(tenant), json={"key": "parent", "name": "Tricky"}).status_code == 201
    r = api.get("/v1/accounts/territories", headers=h(tenant))  # not GetAccount(id="territories")
    assert r.status_code == 200 and [x["key"] for x in r.json()["data"]] == ["parent"]
    r = api.get("/v1/accounts/territories/parent", headers=h(tenant))  # not GetParentAccount(id="territories")
    assert r.status_code == 200 and r.json()["data"]["name"] == "Tricky"
    r = api.put("/v1/accounts/territories/parent", headers=h(tenant), json={"name": "Renamed"})
    assert r.status_code == 200 and r.json()["data"]["name"] == "Renamed"
    r = api.get(f"/v1/accounts/{acme['id']}/territory", headers=h(tenant))
    assert r.status_code == 200 and r.json()["data"]["accountId"] == acme["id"]
    r = api.put(f"/v1/accounts/{acme['id']}/territory", headers=h(tenant), json={"territory": "parent"})
    assert r.status_code == 200 and r.json()["data"]["details"]["name"] == "Renamed"
    r = api.get(f"/v1/accounts/{acme['id']}", headers=h(tenant))
    assert r.status_code == 200 and r.json()["data"]["name"] == "Acme"
    r = api.get(f"/v1/accounts/merge/{uuid.uuid4()}", headers=h(tenant))  # GetMergeJob, not an account route
    assert r.status_code == 404 and "job" in r.json()["errors"][0]["message"]
    r = api.post("/v1/accounts/merge", headers=h(tenant), json={})
    assert r.status_code == 422 and {f for f, _ in errors(r)} == {"targetId", "sourceIds"}
    r = api.delete("/v1/accounts/territories/parent", headers=h(tenant))  # in use
    assert r.status_code == 409
    assert api.get("/v1/accounts/hierarchy", headers=h(tenant)).status_code == 400  # GetAccount(id="hierarchy")
    assert api.get("/v1/accounts/x/y/z", headers=h(tenant)).status_code == 404


def test_other_tenants_accounts_are_invisible_and_unusable(api: httpx.Client, tenant: dict[str, str]) -> None:
    other = sign_up(api)
    theirs = account(api, other, "Theirs")
    mine = account(api, tenant, "Mine")
    for path in ("", "/hierarchy", "/parent", "/territory", "/contacts", "/children"):
        assert api.get(f"/v1/accounts/{theirs['id']}{path}", headers=h(tenant)).status_code == 404, path
    assert api.put(f"/v1/accounts/{theirs['id']}", headers=h(tenant), json={"name": "Hijack"}).status_code == 404
    assert api.delete(f"/v1/accounts/{theirs['id']}", headers=h(tenant)).status_code == 404
    r = api.put(f"/v1/accounts/{mine['id']}/parent", headers=h(tenant), json={"parentId": theirs["id"]})
    assert r.status_code == 422 and errors(r) == [("parentId", "NOT_FOUND")]
    r = api.post("/v1/accounts", headers=h(tenant), json={"name": "Sub", "parentId": theirs["id"]})
    assert r.status_code == 422 and errors(r) == [("parentId", "NOT_FOUND")]
    r = api.post(f"/v1/accounts/{mine['id']}/children", headers=h(tenant), json={"childId": theirs["id"]})
    assert r.status_code == 422 and errors(r) == [("childId", "NOT_FOUND")]
    assert api.get(f"/v1/accounts/{theirs['id']}", headers=h(other)).json()["data"]["parentId"] == ""
    assert [a["name"] for a in api.get("/v1/accounts", headers=h(tenant)).json()["data"]] == ["Mine"]
    mixed = {**h(other), "x-tenant-id": tenant["x-tenant-id"]}
    assert api.get(f"/v1/accounts/{mine['id']}", headers=mixed).status_code == 403


def test_account_contacts_come_from_the_contacts_service(api: httpx.Client, tenant: dict[str, str]) -> None:
    acme, other_account = account(api, tenant, "Acme"), account(api, tenant, "Other")
    for name in ("Ann", "Bob", "Cid"):
        contact(api, tenant, name, accountId=acme["id"])
    contact(api, tenant, "Elsewhere", accountId=other_account["id"])
    contact(api, tenant, "Nowhere")
    r = api.get(f"/v1/accounts/{acme['id']}/contacts?limit=2&sort=firstName", headers=h(tenant))
    assert r.status_code == 200, r.text
    assert [x["firstName"] for x in r.json()["data"]] == ["Ann", "Bob"]
    assert r.json()["meta"]["pagination"]["total"] == 3 and r.json()["meta"]["pagination"]["hasNext"] is True
    r = api.get(f"/v1/accounts/{acme['id']}/contacts?page=2&limit=2&sort=firstName", headers=h(tenant))
    assert [x["firstName"] for x in r.json()["data"]] == ["Cid"]
    assert api.get(f"/v1/accounts/{uuid.uuid4()}/contacts", headers=h(tenant)).status_code == 404
    assert api.get(f"/v1/accounts/{acme['id']}/contacts?limit=500", headers=h(tenant)).status_code == 400


def test_account_contacts_need_contacts_read_too(api: httpx.Client, stack: DevStack, tenant: dict[str, str]) -> None:
    acme = account(api, tenant, "Acme")
    t = tenant["x-tenant-id"]
    only_accounts = {"authorization": f"Bearer {mint(stack, tenant_id=t, perms=['accounts:read'])}", "x-tenant-id": t}
    r = api.get(f"/v1/accounts/{acme['id']}/contacts", headers=only_accounts)
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "MISSING_PERMISSION"
    assert api.get(f"/v1/accounts/{acme['id']}", headers=only_accounts).status_code == 200


def test_account_deals_come_from_the_deals_service(api: httpx.Client, tenant: dict[str, str]) -> None:
    acme = account(api, tenant, "Acme")
    r = api.get(f"/v1/accounts/{acme['id']}/deals", headers=h(tenant))
    if DEALS_DEPLOYED:
        assert r.status_code == 200 and r.json()["data"] == []
    else:
        assert r.status_code == 503 and r.json()["errors"][0]["code"] == "SERVICE_NOT_DEPLOYED"
    assert api.get(f"/v1/accounts/{uuid.uuid4()}/deals", headers=h(tenant)).status_code == 404


def test_contact_account_must_be_one_of_the_tenants_accounts(api: httpx.Client, tenant: dict[str, str]) -> None:
    other = sign_up(api)
    theirs, mine = account(api, other, "Theirs"), account(api, tenant, "Mine")
    r = api.post("/v1/contacts", headers=h(tenant), json={"firstName": "Eve", "accountId": theirs["id"]})
    assert r.status_code == 422 and errors(r) == [("accountId", "NOT_FOUND")]
    r = api.post("/v1/contacts", headers=h(tenant), json={"firstName": "Eve", "accountId": str(uuid.uuid4())})
    assert r.status_code == 422 and errors(r) == [("accountId", "NOT_FOUND")]
    made = contact(api, tenant, "Eve", accountId=mine["id"])
    r = api.put(f"/v1/contacts/{made['id']}?updateMask=accountId", headers=h(tenant), json={"accountId": theirs["id"]})
    assert r.status_code == 422 and errors(r) == [("accountId", "NOT_FOUND")]
    r = api.post("/v1/contacts/bulk", headers=h(tenant), json={"items": [
        {"firstName": "Ok", "accountId": mine["id"]}, {"firstName": "Bad", "accountId": theirs["id"]},
        {"id": made["id"], "firstName": "Eve", "accountId": theirs["id"]}]})
    assert r.status_code == 200
    results = r.json()["data"]["results"]
    assert [x["success"] for x in results] == [True, False, False]
    assert results[1]["errors"][0]["field"] == "items[1].accountId"
    assert api.get(f"/v1/contacts/{made['id']}", headers=h(tenant)).json()["data"]["accountId"] == mine["id"]
    # A contact keeps its link when other fields change, and may be unlinked.
    r = api.put(f"/v1/contacts/{made['id']}?updateMask=title", headers=h(tenant), json={"title": "CEO"})
    assert r.status_code == 200 and r.json()["data"]["accountId"] == mine["id"]
    r = api.put(f"/v1/contacts/{made['id']}?updateMask=accountId", headers=h(tenant), json={"accountId": ""})
    assert r.status_code == 200 and r.json()["data"]["accountId"] == ""


def test_a_rep_changes_only_own_accounts(api: httpx.Client, stack: DevStack, tenant: dict[str, str]) -> None:
    t = tenant["x-tenant-id"]
    admins = account(api, tenant, "Admin's")
    rep = {"authorization": f"Bearer {mint(stack, tenant_id=t, roles=['sales_rep'])}", "x-tenant-id": t}
    assert api.get(f"/v1/accounts/{admins['id']}", headers=rep).status_code == 200
    r = api.put(f"/v1/accounts/{admins['id']}?updateMask=industry", headers=rep, json={"industry": "Hijacked"})
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "OUT_OF_SCOPE"
    # A rep may hang their own account under anyone's: only their record changes.
    r = api.post("/v1/accounts", headers=rep, json={"name": "Rep's", "parentId": admins["id"]})
    assert r.status_code == 201, r.text
    mine = api.post("/v1/accounts", headers=rep, json={"name": "Rep's other"}).json()["data"]
    # Hanging the admin's account under the rep's would change the admin's record.
    r = api.post(f"/v1/accounts/{mine['id']}/children", headers=rep, json={"childId": admins["id"]})
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "OUT_OF_SCOPE"
    assert api.get(f"/v1/accounts/{admins['id']}", headers=h(tenant)).json()["data"]["parentId"] == ""
    assert api.post("/v1/accounts/merge", headers=rep, json={"targetId": mine["id"], "sourceIds": [admins["id"]]}
                    ).status_code == 403


def test_every_change_publishes_its_event(api: httpx.Client, stack: DevStack, tenant: dict[str, str]) -> None:
    api.post("/v1/accounts/territories", headers=h(tenant), json={"key": "west", "name": "West"})
    parent, child = account(api, tenant, "Parent"), account(api, tenant, "Child")
    api.put(f"/v1/accounts/{child['id']}?updateMask=industry", headers=h(tenant), json={"industry": "Retail"})
    api.put(f"/v1/accounts/{child['id']}/parent", headers=h(tenant), json={"parentId": parent["id"]})
    api.put(f"/v1/accounts/{child['id']}/territory", headers=h(tenant), json={"territory": "west"})
    api.delete(f"/v1/accounts/{parent['id']}", headers=h(tenant))
    wanted = {"crm.accounts.territory.created", "crm.accounts.account.created", "crm.accounts.account.updated",
              "crm.accounts.account.parent_changed", "crm.accounts.account.territory_changed",
              "crm.accounts.account.deleted"}
    found = events(stack, tenant["x-tenant-id"], wanted)
    assert wanted <= {e["type"] for e in found}
    by_type = {e["type"]: e for e in found}
    moved = [e for e in found if e["type"] == "crm.accounts.account.parent_changed"]
    # Set under the parent, then detached when the parent was deleted.
    assert [(e["data"]["from"], e["data"]["to"]) for e in moved] == [(None, parent["id"]), (parent["id"], None)]
    assert by_type["crm.accounts.account.territory_changed"]["data"] == {"accountId": child["id"], "from": None,
                                                                        "to": "west"}
    assert by_type["crm.accounts.account.deleted"]["subject"] == parent["id"]
    assert all(e["specversion"] == "1.0" and e["source"] == "crm/accounts" for e in found)


def test_a_cycle_through_accounts_the_caller_cannot_see_is_still_refused(
        api: httpx.Client, stack: DevStack, tenant: dict[str, str]) -> None:
    t, me = tenant["x-tenant-id"], str(uuid.uuid4())
    own = {"authorization": f"Bearer {mint(stack, tenant_id=t, user_id=me, perms=['accounts:read:own', 'accounts:write:own'])}",
           "x-tenant-id": t}
    r = api.post("/v1/accounts", headers=own, json={"name": "Mine on top"})
    assert r.status_code == 201, r.text
    top = r.json()["data"]
    hidden = account(api, tenant, "Admin's, in between", parentId=top["id"])
    bottom = account(api, tenant, "Mine below", parentId=hidden["id"], ownerId=me)
    assert api.get(f"/v1/accounts/{hidden['id']}", headers=own).status_code == 404
    r = api.put(f"/v1/accounts/{top['id']}/parent", headers=own, json={"parentId": bottom["id"]})
    assert r.status_code == 422 and errors(r) == [("parentId", "HIERARCHY_CYCLE")]
    assert api.get(f"/v1/accounts/{top['id']}", headers=h(tenant)).json()["data"]["parentId"] == ""
