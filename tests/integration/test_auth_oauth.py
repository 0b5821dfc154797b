"""OAuth 2.0 through real Envoy: clients, authorization code with PKCE, client credentials,
refresh and revocation at the token endpoint, and the attacks each defence is there for."""

from __future__ import annotations

import base64
import uuid
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest

from services.devstack import DevStack
from tests.integration.auth_helpers import account, bearer, events, h, pkce_pair, sql
from tests.polling import until

REDIRECT = "https://app.example.com/callback"
FORM = {"content-type": "application/x-www-form-urlencoded"}


def make_client(api: httpx.Client, acct: dict[str, str], **overrides: Any) -> dict[str, Any]:
    body = {"name": "Reporting app", "redirectUris": [REDIRECT, "http://127.0.0.1:7777/cb"],
            "permissions": ["contacts:read"], "confidential": True,
            "grantTypes": ["authorization_code", "refresh_token", "client_credentials"], **overrides}
    r = api.post("/v1/auth/clients", headers=h(acct), json=body)
    assert r.status_code == 201, r.text
    return dict(r.json()["data"])


def authorize(api: httpx.Client, acct: dict[str, str], client_id: str, challenge: str,
              **overrides: str | None) -> httpx.Response:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "state": "xyz",
              "code_challenge": challenge, "code_challenge_method": "S256", **overrides}
    return api.get("/v1/auth/authorize?" + urlencode({k: v for k, v in params.items() if v is not None}),
                   headers=h(acct))


def code_from(resp: httpx.Response) -> str:
    assert resp.status_code == 302, resp.text
    query = parse_qs(urlsplit(resp.headers["location"]).query)
    return query["code"][0]


def token(api: httpx.Client, form: dict[str, str], **kwargs: Any) -> httpx.Response:
    return api.post("/v1/auth/token", content=urlencode(form), headers={**FORM, **kwargs.pop("headers", {})}, **kwargs)


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def rfc_error(resp: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == error and body["error_description"]
    assert body["success"] is False and body["errors"][0]["code"] == error.upper()
    assert resp.headers["cache-control"] == "no-store"
    return dict(body)


@pytest.fixture()
def admin(api: httpx.Client) -> dict[str, str]:
    return account(api)


@pytest.fixture()
def client(api: httpx.Client, admin: dict[str, str]) -> dict[str, Any]:
    return make_client(api, admin)


def test_client_registration_shows_the_secret_once_and_needs_the_permission(
        api: httpx.Client, admin: dict[str, str], client: dict[str, Any], stack: DevStack) -> None:
    assert client["clientSecret"] and client["client"]["confidential"] is True
    cid = client["client"]["id"]
    got = api.get(f"/v1/auth/clients/{cid}", headers=h(admin))
    assert got.status_code == 200 and "clientSecret" not in got.json()["data"]
    assert got.json()["data"]["redirectUris"] == [REDIRECT, "http://127.0.0.1:7777/cb"]
    listed = api.get("/v1/auth/clients", headers=h(admin)).json()["data"]
    assert [c["id"] for c in listed] == [cid]
    stored = sql(stack, "SELECT secret_hash FROM auth.oauth_clients WHERE id = $1", uuid.UUID(cid))[0][0]
    assert client["clientSecret"].encode() not in bytes(stored)  # hashed, not kept
    # Another tenant sees nothing of it.
    other = account(api)
    assert api.get(f"/v1/auth/clients/{cid}", headers=h(other)).status_code == 404
    assert api.get("/v1/auth/clients", headers=h(other)).json()["data"] == []


def test_client_registration_validates_its_input(api: httpx.Client, admin: dict[str, str]) -> None:
    r = api.post("/v1/auth/clients", headers=h(admin), json={
        "name": "", "redirectUris": ["http://evil.example.com/cb", "https://a.example.com/cb#frag"],
        "grantTypes": ["client_credentials", "password"], "permissions": ["platform:tenants", "bad perm"],
        "confidential": False})
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"name", "redirectUris[0]", "redirectUris[1]", "grantTypes[1]", "confidential", "permissions[0]",
            "permissions[1]"} <= fields


def test_client_management_is_for_admins(api: httpx.Client, admin: dict[str, str], client: dict[str, Any]) -> None:
    # A client credentials token holds contacts:read only, not auth:clients.
    r = token(api, {"grant_type": "client_credentials"}, headers=basic(client["client"]["id"], client["clientSecret"]))
    assert api.get("/v1/auth/clients", headers=bearer(r.json()["access_token"])).status_code == 403
    assert api.post("/v1/auth/clients", json={"name": "x"}).status_code == 401


def test_authorization_code_with_pkce_form_encoded(api: httpx.Client, admin: dict[str, str],
                                                   client: dict[str, Any]) -> None:
    verifier, challenge = pkce_pair()
    r = authorize(api, admin, client["client"]["id"], challenge)
    assert r.status_code == 302
    assert r.headers["location"].startswith(REDIRECT + "?code=") and "state=xyz" in r.headers["location"]
    assert r.headers["cache-control"] == "no-store"
    code = code_from(r)
    assert r.json()["data"]["code"] == code and r.json()["data"]["state"] == "xyz"
    r = token(api, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                    "code_verifier": verifier}, headers=basic(client["client"]["id"], client["clientSecret"]))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store" and r.headers["pragma"] == "no-cache"
    body = r.json()
    # RFC 6749 §5.1 members at the top level, the envelope around the same answer.
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900 and body["scope"] == "contacts:read"
    assert body["access_token"] == body["data"]["accessToken"] and body["refresh_token"] == body["data"]["refreshToken"]
    assert body["success"] is True and body["meta"]["requestId"]
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == admin["userId"] and claims["cid"] == client["client"]["id"]
    assert claims["perms"] == ["contacts:read"]  # the admin's '*' narrowed to the grant
    assert api.get("/v1/contacts", headers=bearer(body["access_token"])).status_code == 200
    assert api.post("/v1/contacts", headers=bearer(body["access_token"]), json={"firstName": "X"}).status_code == 403
    # The client refreshes at the token endpoint; the session is bound to it.
    r = token(api, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
              headers=basic(client["client"]["id"], client["clientSecret"]))
    assert r.status_code == 200 and r.json()["refresh_token"] != body["refresh_token"]
    rfc_error(api.post("/v1/auth/token", json={"grant_type": "refresh_token",
                                               "refresh_token": r.json()["refresh_token"]}), 400, "invalid_grant")
    assert api.post("/v1/auth/token/refresh", json={"refreshToken": r.json()["refresh_token"]}).status_code == 401


def test_public_client_uses_pkce_without_a_secret_and_json_is_accepted(
        api: httpx.Client, admin: dict[str, str]) -> None:
    public = make_client(api, admin, confidential=False, grantTypes=["authorization_code"])
    assert public["clientSecret"] == ""
    verifier, challenge = pkce_pair()
    code = code_from(authorize(api, admin, public["client"]["id"], challenge))
    r = api.post("/v1/auth/token", json={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                         "code_verifier": verifier, "client_id": public["client"]["id"]})
    assert r.status_code == 200, r.text
    assert "refresh_token" not in r.json()  # the client was not registered for refresh_token
    assert r.json()["data"]["refreshToken"] == ""


def test_pkce_is_required_s256_only(api: httpx.Client, admin: dict[str, str], client: dict[str, Any]) -> None:
    verifier, challenge = pkce_pair()
    for overrides in ({"code_challenge_method": "plain", "code_challenge": verifier},
                      {"code_challenge_method": None, "code_challenge": None},
                      {"code_challenge": None},
                      {"code_challenge": "too-short"}):
        r = authorize(api, admin, client["client"]["id"], challenge, **overrides)
        assert r.status_code == 302, (overrides, r.text)
        query = parse_qs(urlsplit(r.headers["location"]).query)
        assert query["error"] == ["invalid_request"] and query["state"] == ["xyz"] and "code" not in query


def test_pkce_verifier_mismatch_is_invalid_grant(api: httpx.Client, admin: dict[str, str],
                                                  client: dict[str, Any]) -> None:
    verifier, challenge = pkce_pair()
    code = code_from(authorize(api, admin, client["client"]["id"], challenge))
    auth = basic(client["client"]["id"], client["clientSecret"])
    wrong, _ = pkce_pair()
    base = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    rfc_error(token(api, {**base, "code_verifier": wrong}, headers=auth), 400, "invalid_grant")
    rfc_error(token(api, {**base, "code_verifier": challenge}, headers=auth), 400, "invalid_grant")
    rfc_error(token(api, base, headers=auth), 400, "invalid_request")
    # The right verifier still works: a stolen code without its verifier is worth nothing.
    assert token(api, {**base, "code_verifier": verifier}, headers=auth).status_code == 200


def test_code_replay_is_refused_and_revokes_what_it_granted(
        api: httpx.Client, admin: dict[str, str], client: dict[str, Any], stack: DevStack) -> None:
    verifier, challenge = pkce_pair()
    code = code_from(authorize(api, admin, client["client"]["id"], challenge))
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    auth = basic(client["client"]["id"], client["clientSecret"])
    first = token(api, form, headers=auth)
    assert first.status_code == 200
    access, refresh = first.json()["access_token"], first.json()["refresh_token"]
    assert api.get("/v1/contacts", headers=bearer(access)).status_code == 200
    rfc_error(token(api, form, headers=auth), 400, "invalid_grant")
    # RFC 6749 §4.1.2: the tokens issued from the code are revoked.
    assert until(lambda: api.get("/v1/contacts", headers=bearer(access)).status_code == 401)
    rfc_error(token(api, {"grant_type": "refresh_token", "refresh_token": refresh}, headers=auth), 400, "invalid_grant")
    found = events(stack, "crm.auth.code.replayed", lambda e: e["data"]["clientId"] == client["client"]["id"])
    assert found and found[0]["tenantid"] == admin["tenant"] and found[0]["data"]["clientIp"]


def test_expired_code_is_refused(api: httpx.Client, admin: dict[str, str], client: dict[str, Any],
                                 stack: DevStack) -> None:
    verifier, challenge = pkce_pair()
    code = code_from(authorize(api, admin, client["client"]["id"], challenge))
    row = sql(stack, "SELECT expires_at - created_at AS ttl FROM auth.authorization_codes WHERE client_id = $1",
              uuid.UUID(client["client"]["id"]))
    assert row[0]["ttl"].total_seconds() == 60
    sql(stack, "UPDATE auth.authorization_codes SET expires_at = now() - interval '1 second' WHERE client_id = $1",
        uuid.UUID(client["client"]["id"]))
    rfc_error(token(api, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                          "code_verifier": verifier}, headers=basic(client["client"]["id"], client["clientSecret"])),
              400, "invalid_grant")


def test_redirect_uri_tampering_never_redirects(api: httpx.Client, admin: dict[str, str],
                                                client: dict[str, Any]) -> None:
    _, challenge = pkce_pair()
    for uri in ("https://evil.example.com/callback", REDIRECT + "/../steal", REDIRECT + "?x=1", REDIRECT.upper(),
                "https://app.example.com/callback.evil.com"):
        r = authorize(api, admin, client["client"]["id"], challenge, redirect_uri=uri)
        assert r.status_code == 400 and "location" not in r.headers, uri
        assert r.json()["errors"][0]["field"] == "redirectUri"
    r = authorize(api, admin, str(uuid.uuid4()), challenge)
    assert r.status_code == 400 and "location" not in r.headers and r.json()["errors"][0]["field"] == "clientId"
    # A client of another tenant is unknown here.
    other = account(api)
    assert authorize(api, other, client["client"]["id"], challenge).status_code == 400


def test_redirect_uri_must_match_at_the_token_endpoint(api: httpx.Client, admin: dict[str, str],
                                                       client: dict[str, Any]) -> None:
    verifier, challenge = pkce_pair()
    code = code_from(authorize(api, admin, client["client"]["id"], challenge))
    auth = basic(client["client"]["id"], client["clientSecret"])
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    rfc_error(token(api, {**form, "redirect_uri": "http://127.0.0.1:7777/cb"}, headers=auth), 400, "invalid_grant")
    rfc_error(token(api, form, headers=auth), 400, "invalid_grant")
    assert token(api, {**form, "redirect_uri": REDIRECT}, headers=auth).status_code == 200


def test_code_of_one_client_cannot_be_redeemed_by_another(api: httpx.Client, admin: dict[str, str],
                                                          client: dict[str, Any]) -> None:
    other = make_client(api, admin, name="Other app")
    verifier, challenge = pkce_pair()
    code = code_from(authorize(api, admin, client["client"]["id"], challenge))
    rfc_error(token(api, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                          "code_verifier": verifier}, headers=basic(other["client"]["id"], other["clientSecret"])),
              400, "invalid_grant")


def test_scope_beyond_the_client_is_refused(api: httpx.Client, admin: dict[str, str], client: dict[str, Any]) -> None:
    _, challenge = pkce_pair()
    r = authorize(api, admin, client["client"]["id"], challenge, scope="contacts:read contacts:write")
    assert parse_qs(urlsplit(r.headers["location"]).query)["error"] == ["invalid_scope"]


def test_client_credentials_token_carries_the_kernel_claims(
        api: httpx.Client, admin: dict[str, str], client: dict[str, Any], stack: DevStack) -> None:
    cid = client["client"]["id"]
    r = token(api, {"grant_type": "client_credentials", "client_id": cid, "client_secret": client["clientSecret"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "refresh_token" not in body and body["scope"] == "contacts:read"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert {"exp", "iat", "nbf", "iss", "aud", "sub", "tid", "sid"} <= claims.keys()
    assert claims["sub"] == cid and claims["cid"] == cid and claims["tid"] == admin["tenant"]
    assert claims["tier"] == "api_integration" and claims["perms"] == ["contacts:read"] and claims["roles"] == []
    uuid.UUID(claims["sid"])
    assert api.get("/v1/contacts", headers=bearer(body["access_token"])).status_code == 200
    assert api.post("/v1/contacts", headers=bearer(body["access_token"]), json={"firstName": "X"}).status_code == 403
    # It is no user: no userinfo, no session, cannot authorize other clients.
    assert api.get("/v1/auth/userinfo", headers=bearer(body["access_token"])).status_code == 404
    _, challenge = pkce_pair()
    r = api.get(f"/v1/auth/authorize?response_type=code&client_id={cid}&code_challenge={challenge}"
                "&code_challenge_method=S256", headers=bearer(body["access_token"]))
    assert r.status_code == 403
    assert events(stack, "crm.auth.client.token_issued", lambda e: e["data"]["clientId"] == cid)


def test_token_endpoint_errors_use_rfc_codes(api: httpx.Client, admin: dict[str, str], client: dict[str, Any]) -> None:
    cid = client["client"]["id"]
    r = rfc_error(token(api, {"grant_type": "client_credentials"}, headers=basic(cid, "wrong")), 401, "invalid_client")
    assert r["data"] is None
    resp = token(api, {"grant_type": "client_credentials"}, headers=basic(cid, "wrong"))
    assert resp.headers["www-authenticate"].startswith("Basic")
    rfc_error(token(api, {"grant_type": "client_credentials", "client_id": str(uuid.uuid4()), "client_secret": "x"}),
              401, "invalid_client")
    rfc_error(token(api, {"grant_type": "password", "username": "a", "password": "b"}), 400, "unsupported_grant_type")
    rfc_error(token(api, {}), 400, "invalid_request")
    rfc_error(token(api, {"grant_type": "refresh_token"}), 400, "invalid_request")
    rfc_error(token(api, {"grant_type": "refresh_token", "refresh_token": "nonsense"}), 400, "invalid_grant")
    rfc_error(api.post("/v1/auth/token", content="grant_type=a&grant_type=b", headers=FORM), 400, "invalid_request")
    rfc_error(api.post("/v1/auth/token", content="<xml/>", headers={"content-type": "text/xml"}), 400,
              "invalid_request")
    public = make_client(api, admin, confidential=False, grantTypes=["authorization_code"])
    rfc_error(token(api, {"grant_type": "client_credentials", "client_id": public["client"]["id"]}), 400,
              "unauthorized_client")
    rfc_error(token(api, {"grant_type": "client_credentials", "scope": "contacts:write"},
                    headers=basic(cid, client["clientSecret"])), 400, "invalid_scope")


def test_first_party_refresh_works_at_the_token_endpoint(api: httpx.Client, admin: dict[str, str]) -> None:
    r = token(api, {"grant_type": "refresh_token", "refresh_token": admin["refresh"]})
    assert r.status_code == 200 and r.json()["access_token"] and r.json()["refresh_token"]


def test_revocation_rfc7009(api: httpx.Client, admin: dict[str, str], client: dict[str, Any]) -> None:
    for unknown in ("nonsense", "a.b.c", base64.urlsafe_b64encode(b"\0" * 64).decode()):
        r = api.post("/v1/auth/token/revoke", content=urlencode({"token": unknown}), headers=FORM)
        assert r.status_code == 200 and r.json()["data"]["revoked"] is True
        assert r.headers["cache-control"] == "no-store"
    r = api.post("/v1/auth/token/revoke", content="", headers=FORM)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    # A refresh token: its session ends, access token included.
    acct = account(api)
    r = api.post("/v1/auth/token/revoke", content=urlencode({"token": acct["refresh"],
                                                             "token_type_hint": "refresh_token"}), headers=FORM)
    assert r.status_code == 200
    assert until(lambda: api.get("/v1/auth/userinfo", headers=h(acct)).status_code == 401)
    assert api.post("/v1/auth/token/refresh", json={"refreshToken": acct["refresh"]}).status_code == 401
    # An access token, as JSON: its session ends too.
    acct = account(api)
    assert api.post("/v1/auth/token/revoke", json={"token": acct["access"]}).status_code == 200
    assert until(lambda: api.get("/v1/auth/userinfo", headers=h(acct)).status_code == 401)
    assert api.post("/v1/auth/token/refresh", json={"refreshToken": acct["refresh"]}).status_code == 401
    # A client credentials token stops working.
    cc = token(api, {"grant_type": "client_credentials"},
               headers=basic(client["client"]["id"], client["clientSecret"])).json()["access_token"]
    r = api.post("/v1/auth/token/revoke", content=urlencode({"token": cc}),
                 headers={**FORM, **basic(client["client"]["id"], client["clientSecret"])})
    assert r.status_code == 200
    assert until(lambda: api.get("/v1/contacts", headers=bearer(cc)).status_code == 401)
    # Wrong client credentials are still an error.
    r = api.post("/v1/auth/token/revoke", content=urlencode({"token": "x"}),
                 headers={**FORM, **basic(client["client"]["id"], "wrong")})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_deleting_a_client_ends_its_tokens(api: httpx.Client, admin: dict[str, str], client: dict[str, Any],
                                           stack: DevStack) -> None:
    cid = client["client"]["id"]
    auth = basic(cid, client["clientSecret"])
    cc = token(api, {"grant_type": "client_credentials"}, headers=auth).json()["access_token"]
    verifier, challenge = pkce_pair()
    code = code_from(authorize(api, admin, cid, challenge))
    granted = token(api, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                          "code_verifier": verifier}, headers=auth).json()
    assert api.delete(f"/v1/auth/clients/{cid}", headers=h(admin)).status_code == 200
    assert until(lambda: api.get("/v1/contacts", headers=bearer(cc)).status_code == 401)
    assert until(lambda: api.get("/v1/contacts", headers=bearer(granted["access_token"])).status_code == 401)
    rfc_error(token(api, {"grant_type": "client_credentials"}, headers=auth), 401, "invalid_client")
    assert api.get(f"/v1/auth/clients/{cid}", headers=h(admin)).status_code == 404
    assert api.delete(f"/v1/auth/clients/{cid}", headers=h(admin)).status_code == 404
    # The admin's own session is untouched.
    assert api.get("/v1/auth/userinfo", headers=h(admin)).status_code == 200
    created = events(stack, "crm.auth.client.*", lambda e: e["data"].get("clientId") == cid
                     and e["type"] in ("crm.auth.client.created", "crm.auth.client.deleted"), count=2)
    assert {e["type"] for e in created} >= {"crm.auth.client.created", "crm.auth.client.deleted"}
    assert all(e["actorid"] == admin["userId"] and e["tenantid"] == admin["tenant"] for e in created
               if e["type"] in ("crm.auth.client.created", "crm.auth.client.deleted"))


def test_a_suspended_tenant_gets_no_new_tokens(api: httpx.Client, admin: dict[str, str], client: dict[str, Any],
                                               stack: DevStack) -> None:
    verifier, challenge = pkce_pair()
    code = code_from(authorize(api, admin, client["client"]["id"], challenge))
    sql(stack, "UPDATE auth.tenants SET status = 'suspended' WHERE id = $1", uuid.UUID(admin["tenant"]))
    auth = basic(client["client"]["id"], client["clientSecret"])
    r = api.post("/v1/auth/login", json={"email": admin["email"], "password": admin["password"]})
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "TENANT_INACTIVE"
    rfc_error(token(api, {"grant_type": "client_credentials"}, headers=auth), 401, "invalid_client")
    rfc_error(token(api, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                          "code_verifier": verifier}, headers=auth), 400, "invalid_grant")
    rfc_error(token(api, {"grant_type": "refresh_token", "refresh_token": admin["refresh"]}), 400, "invalid_grant")
    assert api.post("/v1/auth/token/refresh", json={"refreshToken": admin["refresh"]}).status_code == 403
