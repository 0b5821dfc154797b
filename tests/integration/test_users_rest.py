"""Users through real Envoy: create (with a password or invited), read, update, list, tenant
isolation, mass assignment."""

from __future__ import annotations

import uuid

import httpx

from services.devstack import DevStack
from tests.integration.conftest import sign_up
from tests.integration.users_support import PASSWORD, find_event, h, login, make_user


def test_create_get_update_with_password(api: httpx.Client, tenant: dict[str, str]) -> None:
    r = api.post("/v1/users", headers=h(tenant), json={
        "email": " Rita.Rep@Example.com ", "password": PASSWORD, "firstName": "Rita", "lastName": "Rep",
        "roles": ["sales_rep"]})
    assert r.status_code == 201, r.text
    user = r.json()["data"]
    assert user["email"] == "rita.rep@example.com" and user["roles"] == ["sales_rep"]
    assert user["status"] == "active" and user["active"] is True and user["tenantId"] == tenant["x-tenant-id"]
    assert "password" not in user
    got = api.get(f"/v1/users/{user['id']}", headers=h(tenant)).json()["data"]
    assert got["id"] == user["id"] and got["firstName"] == "Rita"
    # The new user signs in with the password.
    rep = login(api, "rita.rep@example.com")
    me = api.get("/v1/auth/userinfo", headers=h(rep)).json()["data"]
    role = api.get("/v1/roles/sales_rep", headers=h(tenant)).json()["data"]
    assert me["sub"] == user["id"] and me["roles"] == ["sales_rep"] and me["permissions"] == role["permissions"]

    r = api.put(f"/v1/users/{user['id']}", headers=h(tenant), json={"firstName": "Rita-Maria", "lastName": "Rep"})
    assert r.status_code == 200 and r.json()["data"]["firstName"] == "Rita-Maria"
    r = api.put(f"/v1/users/{user['id']}?updateMask=lastName", headers=h(tenant), json={"lastName": "Rapp", "firstName": "X"})
    assert r.json()["data"]["lastName"] == "Rapp" and r.json()["data"]["firstName"] == "Rita-Maria"


def test_email_change_moves_sign_in(api: httpx.Client, tenant: dict[str, str]) -> None:
    user, _ = make_user(api, tenant, ["read_only"])
    new = f"moved-{uuid.uuid4().hex[:8]}@example.com"
    r = api.put(f"/v1/users/{user['id']}?updateMask=email", headers=h(tenant), json={"email": new.upper()})
    assert r.status_code == 200 and r.json()["data"]["email"] == new
    assert r.json()["data"]["emailVerified"] is False
    assert api.post("/v1/auth/login", json={"email": user["email"], "password": PASSWORD}).status_code == 401
    assert login(api, new)["x-tenant-id"] == tenant["x-tenant-id"]
    # Taken addresses are a conflict on the field.
    other, _ = make_user(api, tenant, ["read_only"])
    r = api.put(f"/v1/users/{other['id']}?updateMask=email", headers=h(tenant), json={"email": new})
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "email"


def test_invite_without_password_emits_event(api: httpx.Client, stack: DevStack, tenant: dict[str, str]) -> None:
    email = f"invitee-{uuid.uuid4().hex[:8]}@example.com"
    r = api.post("/v1/users", headers=h(tenant), json={"email": email, "firstName": "Ivy", "lastName": "Vite"})
    assert r.status_code == 201, r.text
    user = r.json()["data"]
    assert user["status"] == "invited" and user["roles"] == ["read_only"]
    event = find_event(stack.nats_url, "crm.auth.user.invited", lambda e: e["data"]["userId"] == user["id"])
    assert event is not None, "no crm.auth.user.invited event"
    assert event["data"] == {"userId": user["id"], "tenantId": tenant["x-tenant-id"], "email": email}
    assert event["tenantid"] == tenant["x-tenant-id"]
    # An invited user has no password yet: nothing signs in.
    assert api.post("/v1/auth/login", json={"email": email, "password": ""}).status_code in (400, 401)
    assert api.post("/v1/auth/login", json={"email": email, "password": PASSWORD}).status_code == 401


def test_create_validation_and_conflicts(api: httpx.Client, tenant: dict[str, str]) -> None:
    r = api.post("/v1/users", headers=h(tenant), json={"email": "nope", "password": "short", "firstName": "x" * 101,
                                                       "roles": ["Bad Role!"]})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"email", "password", "firstName", "roles[0]"}
    r = api.post("/v1/users", headers=h(tenant), json={"email": "a@b.io", "roles": ["no_such_role"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "roles[0]"
    r = api.post("/v1/users", headers=h(tenant), json={"email": "a@b.io", "roles": ["platform_operator"]})
    assert r.status_code == 422
    user, _ = make_user(api, tenant)
    r = api.post("/v1/users", headers=h(tenant), json={"email": user["email"].upper()})
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "email"


def test_list_pages_sorts_searches_and_filters(api: httpx.Client) -> None:
    admin = sign_up(api)
    made = []
    for i, (first, roles) in enumerate([("Zoe", ["sales_rep"]), ("Émile", ["manager"]), ("Yann", ["sales_rep", "read_only"])]):
        user, _ = make_user(api, admin, roles, firstName=first, lastName=f"L{i}", email=f"list{i}-{uuid.uuid4().hex[:6]}@ex.com")
        made.append(user)
    r = api.get("/v1/users?limit=2&sort=-createdAt", headers=h(admin))
    assert r.status_code == 200
    page = r.json()
    assert [u["firstName"] for u in page["data"]] == ["Yann", "Émile"]
    assert page["meta"]["pagination"]["total"] == 4 and page["meta"]["pagination"]["hasNext"] is True
    names = lambda q: sorted(u["firstName"] for u in api.get(f"/v1/users?{q}", headers=h(admin)).json()["data"])
    assert names("role=sales_rep") == ["Yann", "Zoe"]
    assert names("role=admin") == ["Ada"]
    assert names("search=emile") == ["Émile"]  # accent- and case-insensitive
    assert names(f"email={made[0]['email'].upper()}") == ["Zoe"]
    api.post(f"/v1/users/{made[0]['id']}/deactivate", headers=h(admin), json={})
    assert names("active=false") == ["Zoe"]
    assert names("active=true") == ["Ada", "Yann", "Émile"]
    team = api.post("/v1/users/teams", headers=h(admin), json={"name": "Blue", "memberIds": [made[1]["id"], made[2]["id"]]})
    assert names(f"team={team.json()['data']['id']}") == ["Yann", "Émile"]
    r = api.get(f"/v1/users?team={made[0]['id']}", headers=h(admin))
    assert r.status_code == 200 and r.json()["data"] == []
    assert api.get("/v1/users?team=nope", headers=h(admin)).status_code == 400
    assert api.get("/v1/users?sort=password", headers=h(admin)).status_code == 400
    assert api.get("/v1/users?active=maybe", headers=h(admin)).status_code == 400
    # Keyset paging walks every user once.
    seen, token = [], ""
    while True:
        r = api.get(f"/v1/users?limit=3&sort=createdAt&pageToken={token}", headers=h(admin)).json()
        seen += [u["id"] for u in r["data"]]
        token = r["meta"]["pagination"]["nextPageToken"]
        if not token:
            break
    assert len(seen) == len(set(seen)) == 4


def test_mass_assignment_is_refused_or_ignored(api: httpx.Client, tenant: dict[str, str]) -> None:
    user, rep = make_user(api, tenant, ["sales_rep"])
    other = sign_up(api)
    # Different roles through PUT: refused, with the field named.
    r = api.put(f"/v1/users/{user['id']}", headers=h(tenant), json={"firstName": "X", "roles": ["admin"]})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "roles"
    # Output-only fields are ignored: the id, the tenant and the active flag stay.
    r = api.put(f"/v1/users/{user['id']}", headers=h(tenant), json={
        "id": str(uuid.uuid4()), "tenantId": other["x-tenant-id"], "active": False, "status": "inactive",
        "firstName": "Same", "lastName": "User", "email": user["email"], "roles": ["sales_rep"]})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert (data["id"], data["tenantId"], data["active"], data["roles"]) == (user["id"], tenant["x-tenant-id"], True, ["sales_rep"])
    # The user's own profile cannot carry roles or another id either (unknown fields are dropped).
    r = api.put(f"/v1/users/{user['id']}/profile", headers=h(rep), json={
        "title": "Rep", "roles": ["admin"], "userId": str(uuid.uuid4()), "tenantId": other["x-tenant-id"]})
    assert r.status_code == 200 and r.json()["data"]["userId"] == user["id"]
    assert api.get(f"/v1/users/{user['id']}", headers=h(tenant)).json()["data"]["roles"] == ["sales_rep"]
    # A rep may not edit users at all.
    assert api.put(f"/v1/users/{user['id']}", headers=h(rep), json={"firstName": "Me"}).status_code == 403


def test_other_tenant_ids_are_not_found(api: httpx.Client, tenant: dict[str, str]) -> None:
    user, _ = make_user(api, tenant, ["sales_rep"])
    team = api.post("/v1/users/teams", headers=h(tenant), json={"name": "Reds"}).json()["data"]
    other = sign_up(api)
    o = h(other)
    uid, tid = user["id"], team["id"]
    for method, path, body in [
        ("GET", f"/v1/users/{uid}", None), ("PUT", f"/v1/users/{uid}", {"firstName": "Hijack"}),
        ("DELETE", f"/v1/users/{uid}", None), ("POST", f"/v1/users/{uid}/deactivate", {}),
        ("POST", f"/v1/users/{uid}/activate", {}), ("POST", f"/v1/users/{uid}/roles", {"roleId": "read_only"}),
        ("DELETE", f"/v1/users/{uid}/roles/sales_rep", None), ("GET", f"/v1/users/{uid}/roles", None),
        ("GET", f"/v1/users/{uid}/permissions", None), ("GET", f"/v1/users/{uid}/profile", None),
        ("PUT", f"/v1/users/{uid}/profile", {"title": "x"}), ("GET", f"/v1/users/{uid}/preferences", None),
        ("PUT", f"/v1/users/{uid}/preferences", {"preferences": {"theme": "dark"}}),
        ("GET", f"/v1/users/{uid}/avatar", None),
        ("GET", f"/v1/users/teams/{tid}", None), ("PUT", f"/v1/users/teams/{tid}", {"name": "Mine"}),
        ("DELETE", f"/v1/users/teams/{tid}", None), ("POST", f"/v1/users/teams/{tid}/members", {"userId": uid}),
        ("DELETE", f"/v1/users/teams/{tid}/members/{uid}", None),
    ]:
        r = api.request(method, path, headers=o, json=body)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
    # Another tenant's user cannot join this tenant's team either.
    mine = api.post("/v1/users/teams", headers=o, json={"name": "Mine"}).json()["data"]
    r = api.post(f"/v1/users/teams/{mine['id']}/members", headers=o, json={"userId": uid})
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "userId"
    r = api.post("/v1/users/teams", headers=o, json={"name": "Sneaky", "leadId": uid})
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "leadId"
    assert uid not in [u["id"] for u in api.get("/v1/users?limit=100", headers=o).json()["data"]]
    # A token for one tenant with the other's X-Tenant-ID is refused outright.
    assert api.get(f"/v1/users/{uid}", headers={**o, "x-tenant-id": tenant["x-tenant-id"]}).status_code == 403


def test_bad_ids_and_missing_auth(api: httpx.Client, tenant: dict[str, str]) -> None:
    r = api.get("/v1/users/not-a-uuid", headers=h(tenant))
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "id"
    assert api.get(f"/v1/users/{uuid.uuid4()}", headers=h(tenant)).status_code == 404
    assert api.get("/v1/users").status_code == 401
    assert api.post("/v1/users", json={"email": "x@y.io"}).status_code == 401
