"""Teams through real Envoy, and the literal routes under /v1/users that sit beside /{id}."""

from __future__ import annotations

import uuid

import httpx

from services.devstack import DevStack
from tests.integration.conftest import sign_up
from tests.integration.users_support import find_event, h, make_user


def test_team_crud_and_members(api: httpx.Client, stack: DevStack) -> None:
    admin = sign_up(api)
    lead, _ = make_user(api, admin, ["manager"], firstName="Lea", lastName="Lead")
    rep, rt = make_user(api, admin, ["sales_rep"], firstName="Rob", lastName="Rep")
    r = api.post("/v1/users/teams", headers=h(admin), json={"name": " Enterprise  Sales ", "description": "Big deals",
                                                            "leadId": lead["id"]})
    assert r.status_code == 201, r.text
    team = r.json()["data"]
    tid = team["id"]
    assert team["name"] == "Enterprise Sales" and team["leadId"] == lead["id"] and team["memberCount"] == 1
    assert team["members"][0]["lead"] is True and team["members"][0]["firstName"] == "Lea"

    r = api.post(f"/v1/users/teams/{tid}/members", headers=h(admin), json={"userId": rep["id"]})
    assert r.status_code == 201 and r.json()["data"]["userId"] == rep["id"] and r.json()["data"]["lead"] is False
    r = api.post(f"/v1/users/teams/{tid}/members", headers=h(admin), json={"userId": rep["id"]})
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "userId"
    r = api.post(f"/v1/users/teams/{tid}/members", headers=h(admin), json={"userId": str(uuid.uuid4())})
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "userId"
    r = api.post(f"/v1/users/teams/{tid}/members", headers=h(admin), json={})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "userId"
    got = api.get(f"/v1/users/teams/{tid}", headers=h(rt)).json()["data"]
    assert sorted(got["memberIds"]) == sorted([lead["id"], rep["id"]]) and got["memberCount"] == 2
    assert api.get(f"/v1/users/{rep['id']}", headers=h(admin)).json()["data"]["teamIds"] == [tid]

    r = api.put(f"/v1/users/teams/{tid}", headers=h(admin), json={"name": "Enterprise", "description": "", "leadId": rep["id"]})
    assert r.status_code == 200 and r.json()["data"]["leadId"] == rep["id"] and r.json()["data"]["name"] == "Enterprise"
    r = api.put(f"/v1/users/teams/{tid}?updateMask=description", headers=h(admin), json={"description": "EMEA", "name": "ignored"})
    assert r.json()["data"]["description"] == "EMEA" and r.json()["data"]["name"] == "Enterprise"
    r = api.put(f"/v1/users/teams/{tid}", headers=h(admin), json={"name": ""})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "name"
    api.post("/v1/users/teams", headers=h(admin), json={"name": "Other"})
    r = api.put(f"/v1/users/teams/{tid}?updateMask=name", headers=h(admin), json={"name": "OTHER"})
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "name"

    # Removing the lead from the members clears the lead.
    assert api.delete(f"/v1/users/teams/{tid}/members/{rep['id']}", headers=h(admin)).status_code == 200
    got = api.get(f"/v1/users/teams/{tid}", headers=h(admin)).json()["data"]
    assert got["leadId"] == "" and got["memberIds"] == [lead["id"]]
    assert api.delete(f"/v1/users/teams/{tid}/members/{rep['id']}", headers=h(admin)).status_code == 404

    # Sales reps read teams but do not change them.
    assert api.post("/v1/users/teams", headers=h(rt), json={"name": "Rogue"}).status_code == 403
    assert api.post(f"/v1/users/teams/{tid}/members", headers=h(rt), json={"userId": rep["id"]}).status_code == 403
    assert api.delete(f"/v1/users/teams/{tid}", headers=h(rt)).status_code == 403

    assert api.delete(f"/v1/users/teams/{tid}", headers=h(admin)).status_code == 200
    assert api.get(f"/v1/users/teams/{tid}", headers=h(admin)).status_code == 404
    assert api.get(f"/v1/users/{lead['id']}", headers=h(admin)).status_code == 200  # users stay
    for event_type in ("crm.users.team.created", "crm.users.team.member_added", "crm.users.team.member_removed",
                       "crm.users.team.deleted"):
        assert find_event(stack.nats_url, event_type, lambda e: e["data"]["teamId"] == tid), event_type


def test_team_list_and_validation(api: httpx.Client) -> None:
    admin = sign_up(api)
    member, _ = make_user(api, admin, ["sales_rep"])
    for name in ("Alpha", "Beta", "Gamma"):
        body: dict[str, object] = {"name": name}
        if name != "Beta":
            body["memberIds"] = [member["id"]]
        assert api.post("/v1/users/teams", headers=h(admin), json=body).status_code == 201
    r = api.get("/v1/users/teams?limit=2", headers=h(admin)).json()
    assert [t["name"] for t in r["data"]] == ["Alpha", "Beta"] and r["meta"]["pagination"]["total"] == 3
    names = lambda q: [t["name"] for t in api.get(f"/v1/users/teams?{q}", headers=h(admin)).json()["data"]]
    assert names(f"memberId={member['id']}") == ["Alpha", "Gamma"]
    assert names("search=amm") == ["Gamma"]
    assert names("sort=-name") == ["Gamma", "Beta", "Alpha"]
    r = api.post("/v1/users/teams", headers=h(admin), json={"name": "alpha"})
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "name"
    r = api.post("/v1/users/teams", headers=h(admin), json={"name": "x" * 101, "memberIds": ["nope"], "leadId": "bad"})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"name", "memberIds[0]", "leadId"}
    assert api.get("/v1/users/teams/not-a-uuid", headers=h(admin)).status_code == 400


def test_literal_routes_beside_user_ids(api: httpx.Client) -> None:
    """`/v1/users/teams...` must reach the team rpcs, `/v1/users/{id}...` the user rpcs."""
    admin = sign_up(api)
    user, _ = make_user(api, admin, ["sales_rep"])
    team = api.post("/v1/users/teams", headers=h(admin), json={"name": "Routes"}).json()["data"]
    # GET /users/teams (list) vs GET /users/{id}
    r = api.get("/v1/users/teams", headers=h(admin))
    assert r.status_code == 200 and r.json()["data"][0]["id"] == team["id"] and "pagination" in r.json()["meta"]
    assert api.get(f"/v1/users/{user['id']}", headers=h(admin)).json()["data"]["email"] == user["email"]
    # GET/PUT/DELETE /users/teams/{id} vs /users/{id}/<action>
    assert api.get(f"/v1/users/teams/{team['id']}", headers=h(admin)).json()["data"]["name"] == "Routes"
    r = api.put(f"/v1/users/teams/{team['id']}?updateMask=description", headers=h(admin), json={"description": "d"})
    assert r.status_code == 200 and r.json()["data"]["description"] == "d"
    # POST /users/teams vs POST /users
    r = api.post("/v1/users/teams", headers=h(admin), json={"name": "Second"})
    assert r.status_code == 201 and "memberCount" in r.json()["data"]
    # POST /users/teams/{id}/members vs POST /users/{id}/roles; DELETE .../members/{userId} vs .../roles/{roleId}
    r = api.post(f"/v1/users/teams/{team['id']}/members", headers=h(admin), json={"userId": user["id"]})
    assert r.status_code == 201 and r.json()["data"]["userId"] == user["id"]
    r = api.post(f"/v1/users/{user['id']}/roles", headers=h(admin), json={"roleId": "read_only"})
    assert r.status_code == 200 and "read_only" in r.json()["data"]["roles"]
    assert api.delete(f"/v1/users/teams/{team['id']}/members/{user['id']}", headers=h(admin)).status_code == 200
    assert api.delete(f"/v1/users/{user['id']}/roles/read_only", headers=h(admin)).json()["data"]["roles"] == ["sales_rep"]
    # A team id is never taken for a user id, and the reverse.
    assert api.get(f"/v1/users/{team['id']}", headers=h(admin)).status_code == 404
    assert api.get(f"/v1/users/teams/{user['id']}", headers=h(admin)).status_code == 404
    assert api.delete(f"/v1/users/teams/{team['id']}", headers=h(admin)).status_code == 200
    assert api.get(f"/v1/users/{user['id']}", headers=h(admin)).status_code == 200
