"""Roles through real Envoy: assignment and its effect on tokens, custom roles, the permission
catalogue, and every way of granting oneself or others more than one holds."""

from __future__ import annotations

import uuid

import httpx

from services.devstack import DevStack
from tests.integration.conftest import sign_up
from tests.integration.users_support import find_event, h, make_user, refresh, refreshed
from tests.polling import until


def _me_perms(api: httpx.Client, t: dict[str, str]) -> list[str]:
    return api.get("/v1/auth/userinfo", headers=h(t)).json()["data"]["permissions"]


def test_assign_list_and_remove_roles(api: httpx.Client, stack: DevStack) -> None:
    admin = sign_up(api)
    r = api.post("/v1/roles", headers=h(admin), json={"key": "writer", "name": "Writer",
                                                      "permissions": ["contacts:read", "contacts:write"]})
    assert r.status_code == 201, r.text
    writer = r.json()["data"]
    user, tokens = make_user(api, admin, ["read_only"])
    uid = user["id"]
    assert api.get(f"/v1/users/{uid}/roles", headers=h(admin)).json()["data"][0]["key"] == "read_only"
    assert "contacts:write" not in api.get(f"/v1/users/{uid}/permissions", headers=h(admin)).json()["data"]["permissions"]
    assert api.post("/v1/contacts", headers=h(tokens), json={"firstName": "Nope"}).status_code == 403

    # A custom role is assigned by key (or by id, below).
    r = api.post(f"/v1/users/{uid}/roles", headers=h(admin), json={"roleId": "writer"})
    assert r.status_code == 200 and r.json()["data"]["roles"] == ["read_only", "writer"]
    perms = api.get(f"/v1/users/{uid}/permissions", headers=h(admin)).json()["data"]
    read_only = api.get("/v1/roles/read_only", headers=h(admin)).json()["data"]["permissions"]
    assert perms["roles"] == ["read_only", "writer"]
    assert perms["permissions"] == sorted({*read_only, "contacts:read", "contacts:write"})
    roles = api.get(f"/v1/users/{uid}/roles", headers=h(admin)).json()["data"]
    assert [(x["key"], x["builtIn"]) for x in roles] == [("read_only", True), ("writer", False)]
    # Assigning a held role again changes nothing.
    assert api.post(f"/v1/users/{uid}/roles", headers=h(admin), json={"roleId": writer["id"]}).json()["data"]["roles"] == ["read_only", "writer"]

    # The old token stops working; the refreshed one carries the new permissions.
    assert until(lambda: api.get(f"/v1/users/{uid}", headers=h(tokens)).status_code == 401)
    tokens = refreshed(api, tokens)
    assert "contacts:write" in _me_perms(api, tokens)
    assert api.get(f"/v1/users/{uid}/permissions", headers=h(tokens)).json()["data"]["permissions"] == _me_perms(api, tokens)
    assert api.post("/v1/contacts", headers=h(tokens), json={"firstName": "Yes"}).status_code == 201

    r = api.delete(f"/v1/users/{uid}/roles/{writer['id']}", headers=h(admin))
    assert r.status_code == 200 and r.json()["data"]["roles"] == ["read_only"]
    assert api.delete(f"/v1/users/{uid}/roles/writer", headers=h(admin)).status_code == 404
    assert api.delete(f"/v1/users/{uid}/roles/no_such", headers=h(admin)).status_code == 404
    tokens = refreshed(api, tokens)
    assert "contacts:write" not in _me_perms(api, tokens)
    assert api.post("/v1/contacts", headers=h(tokens), json={"firstName": "Nope"}).status_code == 403
    r = api.post(f"/v1/users/{uid}/roles", headers=h(admin), json={"roleId": "ghost"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "roleId"
    r = api.post(f"/v1/users/{uid}/roles", headers=h(admin), json={})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "roleId"

    assert find_event(stack.nats_url, "crm.users.user.role_assigned", lambda e: e["data"] == {
        "userId": uid, "role": "writer", "permissions": ["contacts:read", "contacts:write"]})
    assert find_event(stack.nats_url, "crm.users.user.role_removed", lambda e: e["data"] == {"userId": uid, "role": "writer"})


def test_custom_roles_crud_and_catalogue(api: httpx.Client, stack: DevStack) -> None:
    admin = sign_up(api)
    catalogue = api.get("/v1/permissions", headers=h(admin)).json()["data"]
    names = [p["name"] for p in catalogue]
    assert names == sorted(names) and {"contacts:read", "users:admin", "teams:write"} <= set(names)
    entry = next(p for p in catalogue if p["name"] == "users:admin")
    assert entry["resource"] == "users" and "crm.users.v1.UsersService/AssignRole" in entry["rpcs"]

    r = api.post("/v1/roles", headers=h(admin), json={"key": "auditor", "name": "Auditor",
                                                      "permissions": ["contacts:read", "users:*", "contacts:read"]})
    assert r.status_code == 201, r.text
    role = r.json()["data"]
    assert role["permissions"] == ["contacts:read", "users:*"] and role["builtIn"] is False
    uuid.UUID(role["id"])
    listed = api.get("/v1/roles", headers=h(admin)).json()["data"]
    assert [x["key"] for x in listed] == ["admin", "manager", "sales_rep", "read_only", "auditor"]
    assert api.get(f"/v1/roles/{role['id']}", headers=h(admin)).json()["data"]["key"] == "auditor"
    assert api.get("/v1/roles/auditor", headers=h(admin)).json()["data"]["id"] == role["id"]
    assert api.get("/v1/roles/manager", headers=h(admin)).json()["data"]["builtIn"] is True

    bad = api.post("/v1/roles", headers=h(admin), json={"key": "x", "name": "", "permissions": [
        "*", "platform:*", "contacts:fly", "nonsense", "reports_x:*"]})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"key", "name", "permissions[0]", "permissions[1]",
                                                          "permissions[2]", "permissions[3]", "permissions[4]"}
    assert api.post("/v1/roles", headers=h(admin), json={"key": "admin", "name": "Mine"}).status_code == 422
    assert api.post("/v1/roles", headers=h(admin), json={"key": "auditor", "name": "Again"}).status_code == 409

    # Holders of a custom role get its permissions; editing it renews their tokens.
    user, tokens = make_user(api, admin, ["auditor"])
    assert "users:*" in _me_perms(api, tokens)
    r = api.put(f"/v1/roles/{role['id']}", headers=h(admin), json={"name": "Auditor", "permissions": ["contacts:read"]})
    assert r.status_code == 200 and r.json()["data"]["permissions"] == ["contacts:read"]
    assert until(lambda: api.get("/v1/auth/userinfo", headers=h(tokens)).status_code == 401)
    tokens = refreshed(api, tokens)
    assert _me_perms(api, tokens) == ["contacts:read"]
    r = api.put("/v1/roles/auditor?updateMask=description", headers=h(admin), json={"description": "Reads", "key": "other"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "key"
    r = api.put("/v1/roles/auditor?updateMask=description", headers=h(admin), json={"description": "Reads"})
    assert r.status_code == 200 and r.json()["data"]["description"] == "Reads" and r.json()["data"]["name"] == "Auditor"
    assert api.put("/v1/roles/admin", headers=h(admin), json={"name": "Boss", "permissions": []}).status_code == 409

    # In use: not deletable; after removal it is.
    assert api.delete(f"/v1/roles/{role['id']}", headers=h(admin)).status_code == 409
    assert api.delete(f"/v1/users/{user['id']}/roles/{role['id']}", headers=h(admin)).status_code == 200
    assert api.delete(f"/v1/roles/{role['id']}", headers=h(admin)).status_code == 200
    assert api.get(f"/v1/roles/{role['id']}", headers=h(admin)).status_code == 404
    assert api.delete("/v1/roles/admin", headers=h(admin)).status_code == 409

    for event_type in ("crm.users.role.created", "crm.users.role.updated", "crm.users.role.deleted"):
        assert find_event(stack.nats_url, event_type, lambda e: e["data"]["roleId"] == role["id"]), event_type
    # Custom roles are the tenant's own.
    other = sign_up(api)
    assert api.get("/v1/roles/auditor", headers=h(other)).status_code == 404


def test_privilege_escalation_is_refused(api: httpx.Client) -> None:
    admin = sign_up(api)
    # A user manager: may manage users and teams and read contacts, nothing else.
    r = api.post("/v1/roles", headers=h(admin), json={"key": "user_manager", "name": "User manager",
                                                      "permissions": ["users:*", "teams:write", "contacts:read"]})
    assert r.status_code == 201
    r = api.post("/v1/roles", headers=h(admin), json={"key": "deleter", "name": "Deleter", "permissions": ["contacts:delete"]})
    assert r.status_code == 201
    r = api.post("/v1/roles", headers=h(admin), json={"key": "contact_reader", "name": "Reader", "permissions": ["contacts:read"]})
    assert r.status_code == 201
    manager, mt = make_user(api, admin, ["user_manager"])
    rep, rt = make_user(api, admin, ["sales_rep"])
    reader, _ = make_user(api, admin, ["contact_reader"])
    admin_id = api.get("/v1/users?role=admin", headers=h(admin)).json()["data"][0]["id"]

    # A sales rep cannot hand out roles at all, to themselves or to others.
    for target in (rep["id"], manager["id"]):
        r = api.post(f"/v1/users/{target}/roles", headers=h(rt), json={"roleId": "admin"})
        assert r.status_code == 403, r.text
    assert api.post("/v1/users", headers=h(rt), json={"email": "x@y.io", "roles": ["admin"]}).status_code == 403
    assert api.post("/v1/roles", headers=h(rt), json={"key": "mine", "name": "Mine", "permissions": ["contacts:read"]}).status_code == 403

    # The user manager holds users:admin but not what admin, manager or `deleter` grant.
    for role_id in ("admin", "manager", "deleter", "sales_rep"):
        r = api.post(f"/v1/users/{reader['id']}/roles", headers=h(mt), json={"roleId": role_id})
        assert r.status_code == 403 and r.json()["errors"][0]["code"] == "PRIVILEGE_ESCALATION", (role_id, r.text)
    r = api.post("/v1/users", headers=h(mt), json={"email": f"n-{uuid.uuid4().hex[:6]}@ex.com", "roles": ["admin"]})
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "PRIVILEGE_ESCALATION"
    # ... nor create or widen a custom role beyond their own permissions.
    r = api.post("/v1/roles", headers=h(mt), json={"key": "sneaky", "name": "Sneaky", "permissions": ["contacts:delete"]})
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "PRIVILEGE_ESCALATION"
    r = api.put("/v1/roles/user_manager", headers=h(mt), json={"name": "UM", "permissions": ["users:*", "contacts:*"]})
    assert r.status_code == 403
    # ... nor change their own roles, even to a role they could give others.
    r = api.post(f"/v1/users/{manager['id']}/roles", headers=h(mt), json={"roleId": "contact_reader"})
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "SELF_ROLE_CHANGE"
    r = api.delete(f"/v1/users/{manager['id']}/roles/user_manager", headers=h(mt))
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "SELF_ROLE_CHANGE"
    # ... nor take over or lock out an admin (who holds more than they do).
    r = api.put(f"/v1/users/{admin_id}?updateMask=email", headers=h(mt), json={"email": "mine@evil.io"})
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "TARGET_OUTRANKS_CALLER"
    assert api.post(f"/v1/users/{admin_id}/deactivate", headers=h(mt), json={}).status_code == 403
    assert api.delete(f"/v1/users/{admin_id}", headers=h(mt)).status_code == 403
    assert api.put(f"/v1/users/{admin_id}/profile", headers=h(mt), json={"title": "Fired"}).status_code == 403
    # ... nor manage a user who holds more than they do (a sales rep).
    assert api.post(f"/v1/users/{rep['id']}/roles", headers=h(mt), json={"roleId": "contact_reader"}).json()["errors"][0]["code"] == "TARGET_OUTRANKS_CALLER"
    # What they do hold, they may grant.
    r = api.post("/v1/users", headers=h(mt), json={"email": f"ok-{uuid.uuid4().hex[:6]}@ex.com", "roles": ["contact_reader"]})
    assert r.status_code == 201, r.text
    r = api.post("/v1/roles", headers=h(mt), json={"key": "team_reader", "name": "Team reader", "permissions": ["contacts:read", "teams:write"]})
    assert r.status_code == 201, r.text
    assert api.post(f"/v1/users/{reader['id']}/roles", headers=h(mt), json={"roleId": "team_reader"}).status_code == 200
    # An admin can do all of it, except changing their own roles.
    assert api.post(f"/v1/users/{rep['id']}/roles", headers=h(admin), json={"roleId": "deleter"}).status_code == 200
    r = api.delete(f"/v1/users/{admin_id}/roles/admin", headers=h(admin))
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "SELF_ROLE_CHANGE"


def test_role_change_of_a_stale_token_does_not_grant(api: httpx.Client) -> None:
    """A token minted before its holder lost users:admin grants nothing: the current roles count."""
    admin = sign_up(api)
    helper, ht = make_user(api, admin, ["admin"])
    target, _ = make_user(api, admin, ["read_only"])
    assert api.delete(f"/v1/users/{helper['id']}/roles/admin", headers=h(admin)).status_code == 200
    r = api.post(f"/v1/users/{target['id']}/roles", headers=h(ht), json={"roleId": "manager"})
    assert r.status_code in (401, 403)
    assert refresh(api, ht).status_code == 200  # the session lives on, with fewer permissions
