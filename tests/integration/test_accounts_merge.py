"""Merging accounts through real Envoy: the job, what moves to the target, what goes away, and
what a merge refuses."""

from __future__ import annotations

import uuid

import httpx

from services.devstack import DevStack
from tests.integration.accounts_support import (
    ACTIVITIES_DEPLOYED,
    DEALS_DEPLOYED,
    account,
    contact,
    errors,
    events,
    wait_merge,
)
from tests.integration.conftest import sign_up
from tests.integration.test_contacts_rest import h


def _merge(api: httpx.Client, t: dict[str, str], target: str, sources: list[str]) -> httpx.Response:
    return api.post("/v1/accounts/merge", headers=h(t), json={"targetId": target, "sourceIds": sources})


def test_merge_moves_contacts_and_children_then_removes_the_sources(api: httpx.Client, stack: DevStack,
                                                                     tenant: dict[str, str]) -> None:
    api.post("/v1/accounts/territories", headers=h(tenant), json={"key": "north", "name": "North"})
    target = account(api, tenant, "Acme", tags=["customer"])
    s1 = account(api, tenant, "ACME Inc.", domain="acme.com", territory="north", tags=["vip"],
                 customFields={"erpId": "A-1"})
    s2 = account(api, tenant, "Acme Corporation", industry="Software", annualRevenue="500.00", currency="USD")
    kid1 = account(api, tenant, "Acme Berlin", parentId=s1["id"])
    kid2 = account(api, tenant, "Acme Paris", parentId=s2["id"])
    grandkid = account(api, tenant, "Acme Berlin Mitte", parentId=kid1["id"])
    c_target = contact(api, tenant, "Tara", accountId=target["id"])
    moved = [contact(api, tenant, name, accountId=src["id"]) for name, src in (("Sam", s1), ("Sue", s1), ("Sid", s2))]
    bystander = contact(api, tenant, "Bo", accountId=account(api, tenant, "Unrelated")["id"])

    r = _merge(api, tenant, target["id"], [s1["id"], s2["id"]])
    assert r.status_code == 202, r.text
    accepted = r.json()["data"]
    assert accepted["status"] in ("queued", "running", "completed") and accepted["targetId"] == target["id"]
    assert accepted["sourceIds"] == [s1["id"], s2["id"]]
    job = wait_merge(api, tenant, accepted["jobId"])
    assert job["status"] == "completed", job
    assert job["progress"] == 100 and job["counts"] == {"total": 2, "succeeded": 2, "failed": 0}
    steps = {s["name"]: s for s in job["steps"]}
    assert [s["name"] for s in job["steps"]] == ["children", "contacts", "deals", "activities", "accounts"]
    assert (steps["children"]["status"], steps["children"]["moved"]) == ("completed", 2)
    assert (steps["contacts"]["status"], steps["contacts"]["moved"]) == ("completed", 3)
    assert (steps["accounts"]["status"], steps["accounts"]["moved"]) == ("completed", 2)
    if not DEALS_DEPLOYED:
        assert steps["deals"]["status"] == "skipped" and "not deployed" in steps["deals"]["note"]
    if not ACTIVITIES_DEPLOYED:
        assert steps["activities"]["status"] == "skipped" and "not deployed" in steps["activities"]["note"]

    # The sources are gone; their contacts and children are the target's.
    for src in (s1, s2):
        assert api.get(f"/v1/accounts/{src['id']}", headers=h(tenant)).status_code == 404
    listed = api.get(f"/v1/accounts/{target['id']}/contacts?sort=firstName&limit=10", headers=h(tenant)).json()["data"]
    assert [x["firstName"] for x in listed] == ["Sam", "Sid", "Sue", "Tara"]
    assert {x["id"] for x in listed} == {c_target["id"], *(m["id"] for m in moved)}
    assert api.get(f"/v1/contacts/{bystander['id']}", headers=h(tenant)).json()["data"]["accountId"] != target["id"]
    kids = api.get(f"/v1/accounts/{target['id']}/children", headers=h(tenant)).json()["data"]
    assert [k["name"] for k in kids] == ["Acme Berlin", "Acme Paris"]
    tree = api.get(f"/v1/accounts/{grandkid['id']}/hierarchy", headers=h(tenant)).json()["data"]
    assert tree["rootId"] == target["id"] and tree["nodeCount"] == 4 and tree["depth"] == 3
    assert kid2["parentId"] == s2["id"]
    # What the sources knew and the target did not is kept.
    merged = api.get(f"/v1/accounts/{target['id']}", headers=h(tenant)).json()["data"]
    assert (merged["name"], merged["domain"], merged["industry"], merged["territory"]) == (
        "Acme", "acme.com", "Software", "north")
    assert (merged["annualRevenue"], merged["currency"]) == ("500.00", "USD")
    assert merged["tags"] == ["customer", "vip"] and merged["customFields"] == {"erpId": "A-1"}

    # The same merge again finds nothing to merge.
    r = _merge(api, tenant, target["id"], [s1["id"], s2["id"]])
    assert r.status_code == 422 and errors(r) == [("sourceIds[0]", "NOT_FOUND"), ("sourceIds[1]", "NOT_FOUND")]

    found = events(stack, tenant["x-tenant-id"], {"crm.accounts.account.merged"})
    done = [e for e in found if e["type"] == "crm.accounts.account.merged"]
    assert len(done) == 1 and done[0]["subject"] == target["id"]
    assert done[0]["data"]["sourceIds"] == [s1["id"], s2["id"]]
    assert done[0]["data"]["moved"]["contacts"] == 3 and done[0]["data"]["moved"]["children"] == 2
    deleted = {e["subject"]: e["data"] for e in found if e["type"] == "crm.accounts.account.deleted"}
    assert deleted[s1["id"]]["mergedInto"] == target["id"] and deleted[s2["id"]]["mergedInto"] == target["id"]
    contact_events = events(stack, tenant["x-tenant-id"], {"crm.contacts.contact.updated"}, subject="crm.contacts.>")
    reassigned = [e for e in contact_events if e["type"] == "crm.contacts.contact.updated"]
    assert {e["subject"] for e in reassigned} == {m["id"] for m in moved}
    assert all(e["data"]["changes"]["accountId"]["to"] == target["id"] for e in reassigned)


def test_merging_an_ancestor_of_the_target_keeps_the_tree_acyclic(api: httpx.Client, tenant: dict[str, str]) -> None:
    top = account(api, tenant, "Top")
    source = account(api, tenant, "Group", parentId=top["id"])
    middle = account(api, tenant, "Region", parentId=source["id"])
    target = account(api, tenant, "Group Ltd", parentId=middle["id"])
    sibling = account(api, tenant, "Other subsidiary", parentId=source["id"])
    job = wait_merge(api, tenant, _merge(api, tenant, target["id"], [source["id"]]).json()["data"]["jobId"])
    assert job["status"] == "completed", job
    parent_of = {a["name"]: a["parentId"] for a in api.get("/v1/accounts?limit=50", headers=h(tenant)).json()["data"]}
    # The target's own ancestor moves up past the source instead of under the target.
    assert parent_of == {"Top": "", "Region": top["id"], "Group Ltd": middle["id"], "Other subsidiary": target["id"]}
    tree = api.get(f"/v1/accounts/{sibling['id']}/hierarchy", headers=h(tenant)).json()["data"]
    assert tree["rootId"] == top["id"] and tree["nodeCount"] == 4


def test_merge_refuses_bad_and_foreign_ids(api: httpx.Client, tenant: dict[str, str]) -> None:
    other = sign_up(api)
    theirs = account(api, other, "Theirs")
    mine, also_mine = account(api, tenant, "Mine"), account(api, tenant, "Also mine")
    r = _merge(api, tenant, theirs["id"], [mine["id"]])
    assert r.status_code == 422 and errors(r) == [("targetId", "NOT_FOUND")]
    r = _merge(api, tenant, mine["id"], [also_mine["id"], theirs["id"]])
    assert r.status_code == 422 and errors(r) == [("sourceIds[1]", "NOT_FOUND")]
    r = _merge(api, tenant, mine["id"], [mine["id"]])
    assert r.status_code == 422 and errors(r) == [("sourceIds[0]", "SELF_MERGE")]
    r = _merge(api, tenant, mine["id"], [also_mine["id"], also_mine["id"]])
    assert r.status_code == 422 and errors(r) == [("sourceIds[1]", "DUPLICATE")]
    r = _merge(api, tenant, "nope", [])
    assert r.status_code == 422 and set(errors(r)) == {("targetId", "INVALID"), ("sourceIds", "OUT_OF_RANGE")}
    r = _merge(api, tenant, mine["id"], [str(uuid.uuid4()) for _ in range(51)])
    assert r.status_code == 422 and errors(r)[0] == ("sourceIds", "OUT_OF_RANGE")
    # Nothing changed anywhere.
    assert api.get(f"/v1/accounts/{also_mine['id']}", headers=h(tenant)).status_code == 200
    assert api.get(f"/v1/accounts/{theirs['id']}", headers=h(other)).status_code == 200
    # Another tenant cannot read this tenant's merge jobs.
    job = wait_merge(api, tenant, _merge(api, tenant, mine["id"], [also_mine["id"]]).json()["data"]["jobId"])
    assert api.get(f"/v1/accounts/merge/{job['jobId']}", headers=h(other)).status_code == 404


def test_merge_refuses_a_hierarchy_deeper_than_the_bound(api: httpx.Client, tenant: dict[str, str]) -> None:
    chain = [account(api, tenant, "L1")]
    for level in range(2, 10):
        chain.append(account(api, tenant, f"L{level}", parentId=chain[-1]["id"]))
    source = account(api, tenant, "Source")
    kid = account(api, tenant, "Kid", parentId=source["id"])
    account(api, tenant, "Grandkid", parentId=kid["id"])
    # L9 is the 9th level: Kid and Grandkid under it would make 11.
    r = _merge(api, tenant, chain[-1]["id"], [source["id"]])
    assert r.status_code == 422 and errors(r) == [("targetId", "HIERARCHY_TOO_DEEP")]
    assert api.get(f"/v1/accounts/{kid['id']}", headers=h(tenant)).json()["data"]["parentId"] == source["id"]
    r = _merge(api, tenant, chain[-2]["id"], [source["id"]])
    assert r.status_code == 202

