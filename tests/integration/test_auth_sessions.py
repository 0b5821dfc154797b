"""Sessions, refresh rotation with reuse detection, logout, and 401 challenges, through Envoy
(and gRPC where a service speaks for itself)."""

from __future__ import annotations

import base64
import uuid

import grpc
import httpx
import jwt
import pytest
from crm.auth.v1 import auth_service_pb2 as pb
from crm.auth.v1 import auth_service_pb2_grpc as pb_grpc

from services.auth import opaque
from services.devstack import DevStack
from tests.integration.auth_helpers import account, bearer, events, h, login
from tests.polling import until


def test_sessions_list_current_and_terminate(api: httpx.Client) -> None:
    acct = account(api)
    second = login(api, acct["email"])
    r = api.get("/v1/auth/sessions", headers=h(acct))
    assert r.status_code == 200
    sessions = r.json()["data"]
    assert len(sessions) == 2 and [s["current"] for s in sessions].count(True) == 1
    mine = jwt.decode(acct["access"], options={"verify_signature": False})["sid"]
    current = api.get("/v1/auth/sessions/current", headers=h(acct)).json()["data"]
    assert current["id"] == mine and current["current"] is True and current["userAgent"].startswith("python-httpx")
    assert current["expiresAt"] and current["createdAt"] and current["clientIp"]  # the address Envoy saw
    other_sid = jwt.decode(second["accessToken"], options={"verify_signature": False})["sid"]
    # Terminating the other session: its tokens stop at once, this one keeps working.
    assert api.delete(f"/v1/auth/sessions/{other_sid}", headers=h(acct)).status_code == 200
    assert api.get("/v1/auth/userinfo", headers=bearer(second["accessToken"])).status_code == 401
    assert api.post("/v1/auth/token/refresh", json={"refreshToken": second["refreshToken"]}).status_code == 401
    assert api.get("/v1/auth/userinfo", headers=h(acct)).status_code == 200
    assert [s["id"] for s in api.get("/v1/auth/sessions", headers=h(acct)).json()["data"]] == [mine]
    assert api.delete(f"/v1/auth/sessions/{other_sid}", headers=h(acct)).status_code == 404


def test_cannot_terminate_someone_elses_session(api: httpx.Client) -> None:
    a, b = account(api), account(api)
    sid_b = jwt.decode(b["access"], options={"verify_signature": False})["sid"]
    assert api.delete(f"/v1/auth/sessions/{sid_b}", headers=h(a)).status_code == 404
    assert api.delete("/v1/auth/sessions/not-a-uuid", headers=h(a)).status_code == 404
    assert api.get("/v1/auth/userinfo", headers=h(b)).status_code == 200


def test_terminating_the_current_session_is_logout(api: httpx.Client) -> None:
    acct = account(api)
    sid = jwt.decode(acct["access"], options={"verify_signature": False})["sid"]
    assert api.delete(f"/v1/auth/sessions/{sid}", headers=h(acct)).status_code == 200
    r = api.get("/v1/auth/sessions/current", headers=h(acct))
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")


def test_validate_answers_active_with_claims(api: httpx.Client) -> None:
    acct = account(api)
    r = api.post("/v1/auth/sessions/validate", headers=h(acct), json={"token": acct["access"]})
    data = r.json()["data"]
    assert r.status_code == 200 and data["active"] is True and data["tokenType"] == "access_token"
    assert data["userId"] == acct["userId"] and data["tenantId"] == acct["tenant"] and data["permissions"] == ["*"]
    assert data["roles"] == ["admin"] and data["expiresAt"] and data["issuedAt"]
    r = api.post("/v1/auth/sessions/validate", headers=h(acct), json={"token": acct["refresh"]})
    assert r.json()["data"]["active"] is True and r.json()["data"]["tokenType"] == "refresh_token"
    # Another tenant's token, garbage, a logged-out session: not active.
    other = account(api)
    for token in (other["access"], other["refresh"], "garbage", "a.b.c"):
        assert api.post("/v1/auth/sessions/validate", headers=h(acct), json={"token": token}).json()["data"] == {
            "active": False, "tokenType": "", "sessionId": "", "userId": "", "tenantId": "", "clientId": "",
            "permissions": [], "roles": []}
    second = login(api, acct["email"])
    api.post("/v1/auth/logout", headers=bearer(second["accessToken"]), json={})
    for token in (second["accessToken"], second["refreshToken"]):
        assert api.post("/v1/auth/sessions/validate", headers=h(acct), json={"token": token}).json()["data"][
            "active"] is False
    r = api.post("/v1/auth/sessions/validate", headers=h(acct), json={"token": ""})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "token"
    assert api.post("/v1/auth/sessions/validate", json={"token": acct["access"]}).status_code == 401


def test_refresh_reuse_revokes_the_whole_family(api: httpx.Client, stack: DevStack) -> None:
    acct = account(api)
    first = api.post("/v1/auth/token/refresh", json={"refreshToken": acct["refresh"]})
    assert first.status_code == 200 and first.headers["cache-control"] == "no-store"
    new_access, new_refresh = first.json()["data"]["accessToken"], first.json()["data"]["refreshToken"]
    assert api.get("/v1/auth/userinfo", headers=bearer(new_access)).status_code == 200
    # The old refresh token comes back (a thief, or the owner after the thief): the family ends.
    r = api.post("/v1/auth/token/refresh", json={"refreshToken": acct["refresh"]})
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == "INVALID_GRANT"
    assert api.post("/v1/auth/token/refresh", json={"refreshToken": new_refresh}).status_code == 401
    assert until(lambda: api.get("/v1/auth/userinfo", headers=bearer(new_access)).status_code == 401)
    assert api.get("/v1/auth/userinfo", headers=h(acct)).status_code == 401
    sid = jwt.decode(acct["access"], options={"verify_signature": False})["sid"]
    found = events(stack, "crm.auth.refresh.reused", lambda e: e["data"]["sessionId"] == sid)
    assert found[0]["tenantid"] == acct["tenant"] and found[0]["data"]["userAgent"].startswith("python-httpx")


def test_a_guessed_refresh_secret_cannot_end_a_session(api: httpx.Client) -> None:
    acct = account(api)
    tenant, session, _ = opaque.parse(acct["refresh"]) or (None, None, None)
    assert tenant is not None and session is not None
    forged = base64.urlsafe_b64encode(tenant.bytes + session.bytes + b"\x01" * 32).decode().rstrip("=")
    assert api.post("/v1/auth/token/refresh", json={"refreshToken": forged}).status_code == 401
    # The real owner is unaffected.
    assert api.get("/v1/auth/userinfo", headers=h(acct)).status_code == 200
    assert api.post("/v1/auth/token/refresh", json={"refreshToken": acct["refresh"]}).status_code == 200


def test_token_after_logout_is_refused_with_a_bearer_challenge(api: httpx.Client) -> None:
    acct = account(api)
    assert api.post("/v1/auth/logout", headers=h(acct), json={}).status_code == 200
    # Envoy's signature check passes; the service itself refuses the ended session.
    r = api.get("/v1/auth/userinfo", headers=h(acct))
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == "SESSION_REVOKED"
    assert r.headers["www-authenticate"] == 'Bearer realm="crm-api"'
    r = api.get("/v1/contacts", headers=h(acct))
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")


def test_userinfo_describes_the_caller(api: httpx.Client, stack: DevStack) -> None:
    acct = account(api)
    data = api.get("/v1/auth/userinfo", headers=h(acct)).json()["data"]
    assert data["sub"] == acct["userId"] and data["email"] == acct["email"] and data["emailVerified"] is False
    assert data["mfaEnabled"] is False and data["permissions"] == ["*"] and data["clientId"] == ""
    # The login was announced with who, where from and how.
    login = events(stack, "crm.auth.login.succeeded", lambda e: e["data"]["userId"] == acct["userId"])[0]
    assert login["tenantid"] == acct["tenant"] and login["actorid"] == acct["userId"]
    assert login["data"]["method"] == "password" and login["data"]["sessionId"] == data["sessionId"]
    assert login["data"]["clientIp"] and login["data"]["userAgent"].startswith("python-httpx")


@pytest.fixture()
def stub(stack: DevStack) -> pb_grpc.AuthServiceStub:
    return pb_grpc.AuthServiceStub(grpc.insecure_channel(f"127.0.0.1:{stack.grpc_port}"))


def test_sessions_over_grpc(api: httpx.Client, stub: pb_grpc.AuthServiceStub) -> None:
    acct = account(api)
    md = (("authorization", f"Bearer {acct['access']}"),)
    listed = stub.ListSessions(pb.ListSessionsRequest(), metadata=md)
    assert len(listed.sessions) == 1 and listed.sessions[0].current
    valid = stub.ValidateSession(pb.ValidateSessionRequest(token=acct["access"]), metadata=md)
    assert valid.active and valid.user_id == acct["userId"]
    with pytest.raises(grpc.RpcError) as err:
        stub.DeleteSession(pb.DeleteSessionRequest(id=str(uuid.uuid4())), metadata=md)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    # The token endpoint over gRPC: typed fields instead of a form.
    got = stub.Token(pb.TokenRequest(grant_type="refresh_token", refresh_token=acct["refresh"]))
    assert got.access_token and got.refresh_token and got.token_type == "Bearer"
    with pytest.raises(grpc.RpcError) as err:
        stub.Token(pb.TokenRequest(grant_type="refresh_token", refresh_token=acct["refresh"]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert str({m.key: m.value for m in err.value.trailing_metadata()}["x-crm-members"]).startswith('{"error":"invalid_grant"')
