"""Search through Envoy as a user sees it: records are findable within a second of their change,
ranked across types, with accents, misspellings, filters, facets, suggestions, autocomplete,
a per-tenant configuration, a reindex job and the index's status."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import httpx

from services.devstack import DevStack
from services.kernel.db import asyncpg_dsn
from tests.integration.conftest import mint
from tests.integration.search_support import (
    cloudevent,
    contact,
    found,
    ids,
    post,
    publish,
    record,
    user_id,
    wait_found,
    wait_gone,
)
from tests.integration.test_contacts_rest import h
from tests.polling import until


def word() -> str:
    """A word no other test uses (letters only, so it is one lexeme)."""
    return "zq" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:8])


def test_a_new_contact_becomes_searchable(api: httpx.Client, tenant: dict[str, str]) -> None:
    # How soon is a speed goal, measured by `make bench` (indexing row), not asserted here.
    name = word()
    created = contact(api, tenant, firstName="Ada", lastName=name.capitalize(), email=f"ada@{name}.io",
                      company="Lovelace Ltd", title="Engineer")
    results = until(lambda: found(api, tenant, name), lambda v: created["id"] in ids(v), timeout=15, interval=0.02)
    assert created["id"] in ids(results)
    hit = results[0]
    assert hit["type"] == "contact" and hit["title"] == f"Ada {name.capitalize()}"
    assert hit["subtitle"] == f"Engineer · Lovelace Ltd · ada@{name}.io"
    assert hit["score"] > 0 and hit["ownerId"] == created["ownerId"] and hit["updatedAt"]
    assert {"field": "lastName", "snippet": f"<em>{name.capitalize()}</em>"} in hit["highlights"]


def test_changes_and_deletes_reach_the_index(api: httpx.Client, tenant: dict[str, str]) -> None:
    old, new = word(), word()
    cid = contact(api, tenant, firstName=old)["id"]
    wait_found(api, tenant, old, cid)
    r = api.put(f"/v1/contacts/{cid}?updateMask=firstName", headers=h(tenant), json={"firstName": new})
    assert r.status_code == 200, r.text
    wait_found(api, tenant, new, cid)
    assert found(api, tenant, old) == []
    assert api.delete(f"/v1/contacts/{cid}", headers=h(tenant)).status_code in (200, 204)
    wait_gone(api, tenant, new, cid)


def test_accents_and_case_do_not_matter(api: httpx.Client, tenant: dict[str, str]) -> None:
    tag = word()
    cid = contact(api, tenant, firstName="José", lastName="Núñez-Ørsted", company=tag)["id"]
    wait_found(api, tenant, tag, cid)
    for query in ("jose", "JOSÉ", "nunez", "Nuñez orsted", f"josé {tag}"):
        assert cid in ids(found(api, tenant, query)), query
    hit = next(x for x in found(api, tenant, "jose") if x["id"] == cid)
    assert {"field": "firstName", "snippet": "<em>José</em>"} in hit["highlights"]


def test_misspelled_queries_still_find_titles(api: httpx.Client, tenant: dict[str, str]) -> None:
    last = "Blackwood" + word()[2:6]
    cid = contact(api, tenant, firstName="Jonathan", lastName=last)["id"]
    wait_found(api, tenant, last, cid)
    typo = "Jonahtan " + last[:4] + last[5:]  # swapped letters, a dropped one: corrected word by word
    hit = next(x for x in found(api, tenant, typo) if x["id"] == cid)
    assert {"field": "firstName", "snippet": "<em>Jonathan</em>"} in hit["highlights"]
    # Words run together are no word of the vocabulary: the title's trigrams still match.
    assert cid in ids(found(api, tenant, f"jonathan{last.lower()}"))


def test_every_type_is_indexed_from_its_events_and_ranked_together(api: httpx.Client, stack: DevStack,
                                                                   tenant: dict[str, str]) -> None:
    name = word()
    me = user_id(tenant)
    account = record("account", me, name=name.capitalize(), domain=f"{name}.com", industry="Software")
    deal = record("deal", me, name=f"{name.capitalize()} renewal", amount="1250.00", currency="EUR", status="open",
                  stageId="negotiation")
    lead = record("lead", me, firstName="Lee", lastName="Lead", company=f"{name.capitalize()} GmbH", status="new")
    activity = record("activity", me, type="call", subject="Intro call", body=f"Talked with {name} about pricing",
                      status="open")
    person = contact(api, tenant, firstName="Cleo", lastName="Contact", email=f"cleo@{name}.com")
    publish(stack, *[cloudevent(tenant["x-tenant-id"], t, "created", r)
                     for t, r in (("account", account), ("deal", deal), ("lead", lead), ("activity", activity))])
    results = until(lambda: found(api, tenant, name), lambda v: len(v) == 5)
    assert {r["type"] for r in results} == {"contact", "account", "lead", "deal", "activity"}
    # The account is named exactly so (weight A); the activity only mentions it in its body (C).
    assert results[0]["id"] == account["id"] and results[-1]["id"] == activity["id"]
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    by_id = {r["id"]: r for r in results}
    assert by_id[deal["id"]]["subtitle"] == "1250.00 EUR · open"
    assert by_id[account["id"]]["subtitle"] == f"{name}.com · Software"
    assert by_id[activity["id"]]["highlights"] == [
        {"field": "body", "snippet": f"Talked with <em>{name}</em> about pricing"}]
    # Each type's own endpoint finds its own only.
    for path, rid in (("contacts", person["id"]), ("accounts", account["id"]), ("deals", deal["id"]),
                      ("leads", lead["id"]), ("activities", activity["id"])):
        assert ids(found(api, tenant, name, path)) == [rid], path
    # A later update event moves the deal; an older one arriving late changes nothing.
    newer = {**deal, "name": f"{name.capitalize()} upsell", "updatedAt": "2099-01-01T00:00:00Z"}
    older = {**deal, "name": f"{name.capitalize()} stale", "updatedAt": "2000-01-01T00:00:00Z"}
    publish(stack, cloudevent(tenant["x-tenant-id"], "deal", "updated", newer))
    publish(stack, cloudevent(tenant["x-tenant-id"], "deal", "updated", older))
    until(lambda: found(api, tenant, "upsell", "deals"), lambda v: deal["id"] in ids(v))
    time.sleep(0.5)
    assert found(api, tenant, "stale", "deals") == []
    assert deal["id"] in ids(found(api, tenant, "upsell", "deals"))
    # Deleted: gone, and a replayed creation does not bring it back.
    publish(stack, cloudevent(tenant["x-tenant-id"], "lead", "deleted", lead))
    until(lambda: found(api, tenant, name, "leads"), lambda v: v == [])
    publish(stack, cloudevent(tenant["x-tenant-id"], "lead", "created", lead))
    time.sleep(0.5)
    assert found(api, tenant, name, "leads") == []


def test_merged_records_leave_the_index(api: httpx.Client, stack: DevStack, tenant: dict[str, str]) -> None:
    name = word()
    target = record("account", name=f"{name} Holding")
    sources = [record("account", name=f"{name} Sub {i}") for i in range(2)]
    publish(stack, *[cloudevent(tenant["x-tenant-id"], "account", "created", r) for r in [target, *sources]])
    until(lambda: found(api, tenant, name, "accounts"), lambda v: len(v) == 3)
    merged = cloudevent(tenant["x-tenant-id"], "account", "merged", {},
                        extra={"targetId": target["id"], "sourceIds": [s["id"] for s in sources]})
    del merged["data"]["account"]
    publish(stack, merged)
    results = until(lambda: found(api, tenant, name, "accounts"), lambda v: len(v) == 1)
    assert ids(results) == [target["id"]]


def test_search_validation(api: httpx.Client, tenant: dict[str, str]) -> None:
    r = post(api, tenant, "global", {"query": ""})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query"
    r = post(api, tenant, "global", {"query": "x" * 201})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "query"
    r = post(api, tenant, "global", {"query": "ann", "types": ["contact", "widget"]})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "types[1]"
    r = post(api, tenant, "global", {"query": "ann", "limit": 101})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "limit"
    r = post(api, tenant, "global", {"query": "ann", "sort": "-email"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "sort"
    r = post(api, tenant, "advanced", {"query": ""})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query"
    r = post(api, tenant, "advanced", {"filters": [{"field": "email", "operator": "like", "value": "x"}]})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "filters[0].operator"
    r = post(api, tenant, "advanced", {"filters": [{"field": "bad field!", "operator": "eq", "value": "x"}]})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "filters[0].field"
    r = post(api, tenant, "advanced", {"filters": [{"field": "amount", "operator": "gt", "value": "lots"}]})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "filters[0].value"
    r = post(api, tenant, "faceted", {"query": "ann", "facets": ["color"]})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "facets[0]"


def test_advanced_search_with_filters_sort_and_pages(api: httpx.Client, stack: DevStack,
                                                     tenant: dict[str, str]) -> None:
    tag = word()
    me = user_id(tenant)
    deals = [record("deal", me, name=f"{tag} deal {i}", amount=str(1000 * i), currency="EUR",
                    status="won" if i % 2 else "open", tags=[tag, "vip" if i < 2 else "std"],
                    expectedCloseDate=f"2030-0{i + 1}-15") for i in range(5)]
    publish(stack, *[cloudevent(tenant["x-tenant-id"], "deal", "created", x) for x in deals])
    people = [contact(api, tenant, firstName=f"P{i}", lastName=tag, email=f"p{i}@{tag}.org", tags=[tag]) for i in range(3)]
    until(lambda: found(api, tenant, tag), lambda v: len(v) == 8)

    def advanced(**body: Any) -> httpx.Response:
        return post(api, tenant, "advanced", body)

    r = advanced(filters=[{"field": "tags", "operator": "eq", "value": tag},
                          {"field": "amount", "operator": "gte", "value": 2000}], sort="-updatedAt")
    assert r.status_code == 200, r.text
    assert {x["title"] for x in r.json()["data"]} == {f"{tag} deal {i}" for i in (2, 3, 4)}
    r = advanced(query=tag, types=["deal"], filters=[{"field": "status", "operator": "in", "value": ["won"]}])
    assert sorted(x["title"] for x in r.json()["data"]) == [f"{tag} deal 1", f"{tag} deal 3"]
    r = advanced(query=tag, filters=[{"field": "email", "operator": "startsWith", "value": "p1@"}])
    assert ids(r.json()["data"]) == [people[1]["id"]]
    r = advanced(filters=[{"field": "tags", "operator": "eq", "value": tag},
                          {"field": "expectedCloseDate", "operator": "lt", "value": "2030-03-01T00:00:00Z"}])
    assert sorted(x["title"] for x in r.json()["data"]) == [f"{tag} deal 0", f"{tag} deal 1"]
    r = advanced(filters=[{"field": "tags", "operator": "eq", "value": tag}, {"field": "type", "operator": "eq",
                                                                             "value": "deal"}],
                 sort="title", page=2, limit=2)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["title"] for x in body["data"]] == [f"{tag} deal 2", f"{tag} deal 3"]
    assert body["meta"]["pagination"] == {"page": 2, "limit": 2, "total": 5, "hasNext": True, "hasPrev": True,
                                          "nextPageToken": "", "totalCapped": False}
    # Past the last page: nothing, and still the total.
    r = advanced(filters=[{"field": "tags", "operator": "eq", "value": tag}, {"field": "type", "operator": "eq",
                                                                             "value": "deal"}],
                 sort="title", page=4, limit=2)
    assert r.json()["data"] == []
    assert r.json()["meta"]["pagination"] == {"page": 4, "limit": 2, "total": 5, "hasNext": False, "hasPrev": True,
                                              "nextPageToken": "", "totalCapped": False}
    # A page far beyond any offset a 32-bit integer holds is just as empty.
    for path in ("advanced", "faceted"):
        r = post(api, tenant, path, {"query": tag, "page": 2**31 - 2})
        assert r.status_code == 200, r.text
        results = r.json()["data"] if path == "advanced" else r.json()["data"]["results"]
        assert results == [] and r.json()["meta"]["pagination"]["total"] == 8
    r = advanced(query=f"{tag} -vip", types=["deal"])
    assert sorted(x["title"] for x in r.json()["data"]) == [f"{tag} deal {i}" for i in (2, 3, 4)]
    r = advanced(query=f'"{tag} deal 3"', types=["deal"])
    assert [x["title"] for x in r.json()["data"]] == [f"{tag} deal 3"]


def test_faceted_counts_over_all_matches(api: httpx.Client, stack: DevStack, tenant: dict[str, str]) -> None:
    tag = word()
    me, other = user_id(tenant), str(uuid.uuid4())
    deals = [record("deal", me if i < 3 else other, name=f"{tag} {i}", status="won" if i < 2 else "open",
                    stageId="s1" if i < 4 else "s2", tags=[tag, f"t{i % 2}"]) for i in range(5)]
    leads = [record("lead", me, firstName="L", lastName=tag, status="new", tags=[tag]) for _ in range(2)]
    publish(stack, *[cloudevent(tenant["x-tenant-id"], "deal", "created", x) for x in deals],
            *[cloudevent(tenant["x-tenant-id"], "lead", "created", x) for x in leads])
    until(lambda: found(api, tenant, tag), lambda v: len(v) == 7)
    r = post(api, tenant, "faceted", {"query": tag, "limit": 2, "facetLimit": 5})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert len(data["results"]) == 2 and data["pagination"]["total"] == 7
    assert r.json()["meta"]["pagination"]["total"] == 7
    facets = {f["field"]: {v["value"]: v["count"] for v in f["values"]} for f in data["facets"]}
    assert facets["type"] == {"deal": 5, "lead": 2}
    assert facets["ownerId"] == {me: 5, other: 2}
    assert facets["stage"] == {"s1": 4, "s2": 1}
    assert facets["status"] == {"won": 2, "open": 3, "new": 2}
    assert facets["tags"] == {tag: 7, "t0": 3, "t1": 2}
    r = post(api, tenant, "faceted", {"query": tag, "facets": ["status"], "facetLimit": 1,
                                      "filters": [{"field": "type", "operator": "eq", "value": "deal"}]})
    assert r.json()["data"]["facets"] == [{"field": "status", "values": [{"value": "open", "count": 3}]}]


def test_suggestions_correct_misspelled_words(api: httpx.Client, tenant: dict[str, str]) -> None:
    last = "Pemberton" + word()[2:5]
    cid = contact(api, tenant, firstName="Margaret", lastName=last, company="Initech")["id"]
    wait_found(api, tenant, last, cid)
    typo = "margerat " + last[:3] + last[4:].lower()[:1] + last[3] + last[5:].lower()  # swap two letters
    r = post(api, tenant, "suggestions", {"query": typo})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["query"] == typo
    assert data["suggestions"], data
    best = data["suggestions"][0]
    assert best["text"] == f"margaret {last.lower()}" and best["matches"] == 1 and 0 < best["score"] <= 1
    assert [t["known"] for t in data["terms"]] == [False, False]
    assert data["terms"][0]["alternatives"][0] == "margaret"
    # Nothing to correct: no suggestion.
    r = post(api, tenant, "suggestions", {"query": f"margaret {last}"})
    assert r.json()["data"]["suggestions"] == [] and all(t["known"] for t in r.json()["data"]["terms"])
    r = post(api, tenant, "suggestions", {"query": "", "limit": 3})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query"
    r = post(api, tenant, "suggestions", {"query": "x", "limit": 11})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "limit"


def test_autocomplete_completes_prefixes_titles_first(api: httpx.Client, stack: DevStack,
                                                      tenant: dict[str, str]) -> None:
    stem = word()
    exact = contact(api, tenant, firstName=f"{stem}ia", lastName="Smith")["id"]
    later = contact(api, tenant, firstName="Bob", lastName=f"{stem}ton")["id"]
    by_mail = contact(api, tenant, firstName="Carl", email=f"{stem}x@example.com")["id"]
    publish(stack, cloudevent(tenant["x-tenant-id"], "account", "created", record("account", name=f"{stem}corp")))
    until(lambda: found(api, tenant, stem), lambda v: len(v) >= 4)
    r = post(api, tenant, "autocomplete", {"query": stem[:5]})
    assert r.status_code == 200, r.text
    results = r.json()["data"]
    assert len(results) == 4
    # Titles starting with the prefix come first (shortest first), then a match in an email.
    assert [x["title"] for x in results[:3]] == [f"{stem}corp", f"{stem}ia Smith", f"Bob {stem}ton"]
    assert results[3]["id"] == by_mail
    # The limit cuts across the groups in the same order.
    r = post(api, tenant, "autocomplete", {"query": stem[:5], "limit": 2})
    assert [x["title"] for x in r.json()["data"]] == [f"{stem}corp", f"{stem}ia Smith"]
    r = post(api, tenant, "autocomplete", {"query": stem[:5], "limit": 3, "types": ["contact"]})
    assert ids(r.json()["data"]) == [exact, later, by_mail]
    r = post(api, tenant, "autocomplete", {"query": f"{stem[:4]} smi", "types": ["contact"], "limit": 5})
    assert ids(r.json()["data"]) == [exact]
    assert r.json()["meta"]["pagination"]["total"] == 1
    assert later not in ids(r.json()["data"])
    r = post(api, tenant, "autocomplete", {"query": stem, "limit": 21})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "limit"


def test_configuration_weights_synonyms_and_validation(api: httpx.Client, stack: DevStack,
                                                       tenant: dict[str, str]) -> None:
    r = api.get("/v1/search/config", headers=h(tenant))
    assert r.status_code == 200, r.text
    cfg = r.json()["data"]
    contact_fields = next(t for t in cfg["types"] if t["type"] == "contact")["fields"]
    assert contact_fields[:3] == [{"field": "firstName", "weight": "A"}, {"field": "lastName", "weight": "A"},
                                  {"field": "email", "weight": "B"}]
    assert cfg["synonyms"] == [] and cfg["fuzzy"] is True and cfg["fuzzyThreshold"] == 0.3
    tag = word()
    robert = contact(api, tenant, firstName="Robert", lastName=tag, title="Chief Executive")["id"]
    wait_found(api, tenant, tag, robert)
    # Without fuzzy matching, "bob" is not "Robert"...
    r = api.put("/v1/search/config", headers=h(tenant), json={"fuzzy": False})
    assert r.status_code == 200 and r.json()["data"]["fuzzy"] is False, r.text
    assert robert not in ids(found(api, tenant, f"bob {tag}"))
    # ... until a synonym says so: synonyms apply at query time, at once.
    r = api.put("/v1/search/config", headers=h(tenant), json={"synonyms": [{"terms": ["Bob", "robert", "bobby"]}]})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["synonyms"] == [{"terms": ["bob", "robert", "bobby"]}] and r.json()["data"]["fuzzy"] is False
    assert r.json()["data"]["reweighJobId"] == ""
    hit = next(x for x in found(api, tenant, f"bob {tag}") if x["id"] == robert)
    assert {"field": "firstName", "snippet": "<em>Robert</em>"} in hit["highlights"]
    # Weights: the job title becomes searchable with weight A, emails no longer at all.
    r = api.put("/v1/search/config", headers=h(tenant), json={"types": [{"type": "contact", "fields": [
        {"field": "firstName", "weight": "A"}, {"field": "lastName", "weight": "A"}, {"field": "title", "weight": "a"}]}]})
    assert r.status_code == 200, r.text
    job_id = r.json()["data"]["reweighJobId"]
    assert job_id
    job = until(lambda: api.get(f"/v1/search/reindex/{job_id}", headers=h(tenant)).json()["data"],
                lambda v: v["status"] in ("completed", "failed"))
    assert job["status"] == "completed" and job["kind"] == "search.reweigh" and job["counts"]["total"] >= 1
    hit = next(x for x in found(api, tenant, f"chief {tag}") if x["id"] == robert)
    assert {"field": "title", "snippet": "<em>Chief</em> Executive"} in hit["highlights"]
    cfg = api.get("/v1/search/config", headers=h(tenant)).json()["data"]
    assert next(t for t in cfg["types"] if t["type"] == "contact")["fields"][2] == {"field": "title", "weight": "A"}
    assert next(t for t in cfg["types"] if t["type"] == "deal")["fields"][0] == {"field": "name", "weight": "A"}
    assert cfg["synonyms"] == [], "an update replaces the synonyms"
    r = api.put("/v1/search/config", headers=h(tenant), json={
        "types": [{"type": "widget", "fields": [{"field": "x", "weight": "A"}]},
                  {"type": "deal", "fields": [{"field": "name", "weight": "E"}, {"field": "na me", "weight": "A"}]}],
        "synonyms": [{"terms": ["solo"]}, {"terms": ["two words", "x"]}], "fuzzyThreshold": 2})
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"types[0].type", "types[1].fields[0].weight", "types[1].fields[1].field", "synonyms[0].terms",
                      "synonyms[1].terms[0]", "synonyms[1].terms", "fuzzyThreshold"}
    reader = {"authorization": f"Bearer {mint(stack, tenant_id=tenant['x-tenant-id'], roles=['read_only'], perms=['contacts:read'])}",
              "x-tenant-id": tenant["x-tenant-id"]}
    assert api.put("/v1/search/config", headers=reader, json={"fuzzy": False}).status_code == 403
    assert api.get("/v1/search/config", headers=reader).status_code == 200


def _index_count(stack: DevStack, tenant_id: str) -> int:
    async def run() -> int:
        conn = await asyncpg.connect(asyncpg_dsn(stack.migration_database_url))
        try:
            return int(await conn.fetchval("SELECT count(*) FROM search.documents WHERE tenant_id = $1 "
                                           "AND type = 'contact'", uuid.UUID(tenant_id)))
        finally:
            await conn.close()

    return asyncio.run(run())


def test_reindex_rebuilds_the_index_from_the_services(api: httpx.Client, stack: DevStack,
                                                      tenant: dict[str, str]) -> None:
    tag = word()
    kept = [contact(api, tenant, firstName=f"K{i}", lastName=tag)["id"] for i in range(3)]
    until(lambda: found(api, tenant, tag), lambda v: len(v) == 3)
    ghost = record("contact", firstName="Ghost", lastName=tag)

    async def damage() -> None:
        # The index loses a document and holds one whose record never existed.
        conn = await asyncpg.connect(asyncpg_dsn(stack.migration_database_url))
        await conn.execute("DELETE FROM search.documents WHERE id = $1", uuid.UUID(kept[0]))
        await conn.close()

    asyncio.run(damage())
    publish(stack, cloudevent(tenant["x-tenant-id"], "contact", "created", ghost))
    until(lambda: found(api, tenant, tag), lambda v: ghost["id"] in ids(v))
    assert kept[0] not in ids(found(api, tenant, tag))
    time.sleep(0.05)
    r = api.post("/v1/search/reindex", headers=h(tenant), json={})
    assert r.status_code == 202, r.text
    job = r.json()["data"]
    assert job["status"] in ("queued", "running", "completed") and job["kind"] == "search.reindex"
    job = until(lambda: api.get(f"/v1/search/reindex/{job['jobId']}", headers=h(tenant)).json()["data"],
                lambda v: v["status"] in ("completed", "failed"))
    assert job["status"] == "completed", job
    total = api.get("/v1/contacts?limit=1", headers=h(tenant)).json()["meta"]["pagination"]["total"]
    assert job["counts"]["succeeded"] == total
    skipped = {e["field"]: e for e in job["errors"]}
    assert set(skipped) == set()  # every owning service is deployed: every type was rebuilt
    assert sorted(ids(found(api, tenant, tag))) == sorted(kept)
    assert _index_count(stack, tenant["x-tenant-id"]) == total
    status = api.get("/v1/search/status", headers=h(tenant)).json()["data"]
    assert status["lastReindex"]["jobId"] == job["jobId"]
    assert status["skippedTypes"] == []
    r = api.post("/v1/search/reindex", headers=h(tenant), json={"types": ["contact", "robot"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "types[1]"
    r = api.get(f"/v1/search/reindex/{uuid.uuid4()}", headers=h(tenant))
    assert r.status_code == 404 and r.json()["errors"][0]["message"] == "job not found", "the rpc answered, not the edge"


def test_status_reports_documents_and_lag(api: httpx.Client, tenant: dict[str, str]) -> None:
    name = word()
    cid = contact(api, tenant, firstName=name)["id"]
    wait_found(api, tenant, name, cid)
    r = api.get("/v1/search/status", headers=h(tenant))
    assert r.status_code == 200, r.text
    s = r.json()["data"]
    by_type = {t["type"]: t for t in s["types"]}
    assert by_type["contact"]["documents"] == 1 and by_type["contact"]["deployed"] is True
    assert by_type["contact"]["source"] == "crm.contacts.v1.ContactsService" and by_type["contact"]["lastIndexedAt"]
    assert by_type["deal"] == {"type": "deal", "documents": 0, "source": "crm.deals.v1.DealsService",
                               "deployed": True}
    assert s["documents"] == 1 and s["eventsApplied"] == 1 and s["lastEventAt"] and s["lastIndexedAt"]
    assert 0 <= s["eventLagSeconds"] < 60 and s["pendingEvents"] >= 0


def test_imported_contacts_become_searchable(api: httpx.Client, tenant: dict[str, str]) -> None:
    # An import announces itself with one event, not one per contact: the index rebuilds contacts.
    tag = word()
    csv = "First Name,Last Name,Email\n" + "".join(f"Imp{i},{tag},imp{i}@{tag}.org\n" for i in range(30))
    r = api.post("/v1/contacts/import", headers={**h(tenant), "Content-Type": "text/csv"}, content=csv.encode())
    assert r.status_code == 202, r.text
    results = until(lambda: found(api, tenant, tag, limit=50), lambda v: len(v) == 30, timeout=15)
    assert len(results) == 30 and {x["type"] for x in results} == {"contact"}
    status = api.get("/v1/search/status", headers=h(tenant)).json()["data"]
    assert status["lastReindex"]["status"] == "completed" and status["lastReindex"]["counts"]["succeeded"] == 30
