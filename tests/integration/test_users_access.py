"""Deactivation, activation and deletion through real Envoy: tokens stop at once, refresh fails,
the last admin is kept, deleted users disappear and free their address."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from services.devstack import DevStack
from tests.integration.conftest import sign_up
from tests.integration.users_support import PASSWORD, find_event, h, login, make_user, refresh
from tests.polling import until


def _admin_id(api: httpx.Client, admin: dict[str, str]) -> str:
    return str(api.get("/v1/auth/userinfo", headers=h(admin)).json()["data"]["sub"])


def test_deactivate_ends_tokens_and_activate_restores_sign_in(api: httpx.Client, stack: DevStack) -> None:
    admin = sign_up(api)
    user, tokens = make_user(api, admin, ["sales_rep"])
    uid = user["id"]
    assert api.get("/v1/contacts", headers=h(tokens)).status_code == 200

    r = api.post(f"/v1/users/{uid}/deactivate", headers=h(admin), json={"reason": "left the company"})
    assert r.status_code == 200 and r.json()["data"]["active"] is False and r.json()["data"]["status"] == "inactive"
    # The existing access token is refused by every service (revocations travel over NATS) ...
    assert until(lambda: api.get("/v1/contacts", headers=h(tokens)).status_code == 401)
    r = api.get("/v1/contacts", headers=h(tokens))
    assert r.json()["errors"][0]["code"] in ("TOKEN_REVOKED", "SESSION_REVOKED")
    # ... its refresh token is dead, and signing in again is refused.
    assert refresh(api, tokens).status_code == 401
    assert api.post("/v1/auth/login", json={"email": user["email"], "password": PASSWORD}).status_code == 401
    # Deactivating twice is harmless.
    assert api.post(f"/v1/users/{uid}/deactivate", headers=h(admin), json={}).status_code == 200

    r = api.post(f"/v1/users/{uid}/activate", headers=h(admin), json={})
    assert r.status_code == 200 and r.json()["data"]["active"] is True and r.json()["data"]["status"] == "active"
    # Tokens carry whole-second `iat`s: one minted in the second of the deactivation counts as older.
    time.sleep(1.1)
    fresh = login(api, user["email"])
    assert api.get("/v1/contacts", headers=h(fresh)).status_code == 200
    assert refresh(api, tokens).status_code == 401  # the old session stays ended

    assert find_event(stack.nats_url, "crm.users.user.deactivated",
                      lambda e: e["data"] == {"userId": uid, "reason": "left the company"})
    assert find_event(stack.nats_url, "crm.users.user.activated", lambda e: e["data"]["userId"] == uid)
    # Only holders of users:admin may (de)activate.
    _, rep = make_user(api, admin, ["sales_rep"])
    assert api.post(f"/v1/users/{uid}/deactivate", headers=h(rep), json={}).status_code == 403


def test_last_admin_is_kept(api: httpx.Client) -> None:
    admin = sign_up(api)
    me = _admin_id(api, admin)
    for method, path in (("POST", f"/v1/users/{me}/deactivate"), ("DELETE", f"/v1/users/{me}")):
        r = api.request(method, path, headers=h(admin), json={} if method == "POST" else None)
        assert r.status_code == 409 and r.json()["errors"][0]["code"] == "LAST_ADMIN", r.text
    # With a second active admin, either may go; the survivor is again the last.
    second, st = make_user(api, admin, ["admin"])
    assert api.post(f"/v1/users/{me}/deactivate", headers=h(admin), json={}).status_code == 200
    r = api.delete(f"/v1/users/{second['id']}", headers=h(st))
    assert r.status_code == 409 and r.json()["errors"][0]["code"] == "LAST_ADMIN"
    assert api.post(f"/v1/users/{me}/activate", headers=h(st), json={}).status_code == 200


def test_delete_erases_and_frees_the_address(api: httpx.Client, stack: DevStack) -> None:
    admin = sign_up(api)
    user, tokens = make_user(api, admin, ["sales_rep"], email="gone@example.com")
    uid = user["id"]
    contact = api.post("/v1/contacts", headers=h(tokens), json={"firstName": "Kept"}).json()["data"]
    api.put(f"/v1/users/{uid}/profile", headers=h(tokens), json={"title": "Rep", "phone": "+49 151 1234567"})
    team = api.post("/v1/users/teams", headers=h(admin), json={"name": "T", "leadId": uid}).json()["data"]

    assert api.delete(f"/v1/users/{uid}", headers=h(admin)).status_code == 200
    assert api.get(f"/v1/users/{uid}", headers=h(admin)).status_code == 404
    assert api.get(f"/v1/users/{uid}/profile", headers=h(admin)).status_code == 404
    assert api.delete(f"/v1/users/{uid}", headers=h(admin)).status_code == 404
    assert uid not in [u["id"] for u in api.get("/v1/users?limit=100", headers=h(admin)).json()["data"]]
    got = api.get(f"/v1/users/teams/{team['id']}", headers=h(admin)).json()["data"]
    assert got["leadId"] == "" and got["memberIds"] == []
    # Sign-in ends everywhere.
    assert until(lambda: api.get("/v1/contacts", headers=h(tokens)).status_code == 401)
    assert refresh(api, tokens).status_code == 401
    assert api.post("/v1/auth/login", json={"email": "gone@example.com", "password": PASSWORD}).status_code == 401
    # What the user owned stays, still naming the (now anonymous) owner id.
    assert api.get(f"/v1/contacts/{contact['id']}", headers=h(admin)).json()["data"]["ownerId"] == uid
    # The address is free for a new account, a different user.
    again, _ = make_user(api, admin, ["read_only"], email="gone@example.com")
    assert again["id"] != uid
    assert find_event(stack.nats_url, "crm.users.user.deleted",
                      lambda e: e["data"] == {"userId": uid, "email": "gone@example.com", "roles": ["sales_rep"]})


def test_two_admins_removing_each_other_at_once_leave_one(api: httpx.Client) -> None:
    admin = sign_up(api)
    me = _admin_id(api, admin)
    other, ot = make_user(api, admin, ["admin"])
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(api.post, f"/v1/users/{other['id']}/deactivate", headers=h(admin), json={})
        second = pool.submit(api.post, f"/v1/users/{me}/deactivate", headers=h(ot), json={})
        codes = sorted([first.result().status_code, second.result().status_code])
    # The loser is refused: 409 (last admin), or 401/403 when it arrives after its caller was deactivated.
    assert codes[0] == 200 and codes[1] in (401, 403, 409), codes
    actives = api.get("/v1/users?role=admin&active=true", headers=h(admin if first.result().status_code == 200 else ot))
    assert actives.status_code == 200 and len(actives.json()["data"]) == 1
