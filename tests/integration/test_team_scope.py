"""Team record scopes end to end: a role holding `contacts:read:team` sees the contacts its
teammates own and no one else's; the team comes from the users service, in the token."""

from __future__ import annotations

import uuid

import httpx

from tests.integration.conftest import sign_up
from tests.integration.test_contacts_rest import h

PASSWORD = "correct-horse-battery-staple"


def _user(api: httpx.Client, admin: dict[str, str], roles: list[str]) -> tuple[str, dict[str, str]]:
    email = f"u-{uuid.uuid4().hex[:8]}@example.com"
    r = api.post("/v1/users", headers=h(admin), json={"email": email, "password": PASSWORD, "firstName": "T",
                                                      "lastName": "U", "roles": roles})
    assert r.status_code == 201, r.text
    login = api.post("/v1/auth/login", headers={"x-tenant-id": admin["x-tenant-id"]},
                     json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    token = login.json()["data"]
    return r.json()["data"]["id"], {"authorization": f"Bearer {token['accessToken']}",
                                    "x-tenant-id": admin["x-tenant-id"], "refresh": token["refreshToken"]}


def test_team_readers_see_their_teammates_contacts_only(api: httpx.Client) -> None:
    admin = sign_up(api)
    r = api.post("/v1/roles", headers=h(admin), json={"key": "team_reader", "name": "Team reader",
                                                      "permissions": ["contacts:read:team", "contacts:write:own"]})
    assert r.status_code == 201, r.text
    a_id, a = _user(api, admin, ["sales_rep"])
    b_id, b = _user(api, admin, ["team_reader"])
    _, c = _user(api, admin, ["sales_rep"])
    assert api.post("/v1/contacts", headers=h(a), json={"firstName": "Teammate"}).status_code == 201
    assert api.post("/v1/contacts", headers=h(c), json={"firstName": "Outsider"}).status_code == 201
    assert api.post("/v1/contacts", headers=h(b), json={"firstName": "Mine"}).status_code == 201
    # Not in a team yet: only their own.
    assert [x["firstName"] for x in api.get("/v1/contacts", headers=h(b)).json()["data"]] == ["Mine"]
    r = api.post("/v1/users/teams", headers=h(admin), json={"name": "North", "memberIds": [a_id, b_id]})
    assert r.status_code == 201, r.text
    # The membership change ends b's token; the refreshed one carries the team.
    refreshed = api.post("/v1/auth/token/refresh", json={"refreshToken": b["refresh"]}).json()["data"]
    b2 = {"authorization": f"Bearer {refreshed['accessToken']}", "x-tenant-id": admin["x-tenant-id"]}
    seen = sorted(x["firstName"] for x in api.get("/v1/contacts?limit=100", headers=b2).json()["data"])
    assert seen == ["Mine", "Teammate"]
