"""Password guessing: throttled per account and per client address, answered 429 with
Retry-After in the envelope, the same way whether or not the account exists."""

from __future__ import annotations

import random
import uuid

import grpc
import httpx
import pytest
from crm.auth.v1 import auth_service_pb2 as pb
from crm.auth.v1 import auth_service_pb2_grpc as pb_grpc

from services.devstack import DevStack
from tests.integration.auth_helpers import account, bearer, events


def attempts(api: httpx.Client, email: str, password: str, n: int) -> list[int]:
    return [api.post("/v1/auth/login", json={"email": email, "password": password}).status_code for _ in range(n)]


def test_login_is_throttled_per_account_alike_for_unknown_accounts(api: httpx.Client, stack: DevStack) -> None:
    acct = account(api)
    unknown = f"ghost-{uuid.uuid4().hex[:8]}@example.com"
    known = attempts(api, acct["email"], "wrong-password-0", 6)
    ghost = attempts(api, unknown, "wrong-password-0", 6)
    assert known == ghost == [401] * 6
    r_known = api.post("/v1/auth/login", json={"email": acct["email"], "password": "wrong-password-0"})
    r_ghost = api.post("/v1/auth/login", json={"email": unknown, "password": "wrong-password-0"})
    for r in (r_known, r_ghost):
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["success"] is False and r.json()["errors"][0]["code"] == "TOO_MANY_ATTEMPTS"
    assert r_known.json()["errors"] == r_ghost.json()["errors"]
    # While blocked, even the right password waits: guessing gains nothing.
    assert api.post("/v1/auth/login", json={"email": acct["email"], "password": acct["password"]}).status_code == 429
    # Other accounts are not affected.
    other = account(api)
    assert api.post("/v1/auth/login", json={"email": other["email"], "password": other["password"]}).status_code == 200
    failed = events(stack, "crm.auth.login.failed", lambda e: e["data"]["email"] == acct["email"], count=6)
    assert failed[0]["tenantid"] == acct["tenant"] and failed[0]["data"]["userId"] == acct["userId"]
    assert failed[0]["data"]["clientIp"] and failed[0]["data"]["userAgent"].startswith("python-httpx")
    assert events(stack, "crm.auth.login.throttled", lambda e: e["data"]["email"] == unknown)


def test_a_successful_login_clears_the_account_counter(api: httpx.Client) -> None:
    acct = account(api)
    assert attempts(api, acct["email"], "wrong-password-0", 4) == [401] * 4
    assert api.post("/v1/auth/login", json={"email": acct["email"], "password": acct["password"]}).status_code == 200
    assert attempts(api, acct["email"], "wrong-password-0", 5) == [401] * 5


def test_login_is_throttled_per_client_address(stack: DevStack) -> None:
    # Behind Envoy every test shares one address; over gRPC the edge's role (the address in
    # x-forwarded-for) is played by the test, with an address of its own.
    stub = pb_grpc.AuthServiceStub(grpc.insecure_channel(f"127.0.0.1:{stack.grpc_port}"))
    address = f"198.51.100.{random.randint(1, 254)}"
    md = (("x-forwarded-for", f"10.9.9.9, {address}"),)  # the last entry is the edge's own
    codes = []
    for _ in range(31):
        with pytest.raises(grpc.RpcError) as err:
            stub.Login(pb.LoginRequest(email=f"g{uuid.uuid4().hex[:8]}@example.com", password="wrong-password-0"),
                       metadata=md)
        codes.append(err.value.code())
    assert codes == [grpc.StatusCode.UNAUTHENTICATED] * 31
    with pytest.raises(grpc.RpcError) as err:
        stub.Login(pb.LoginRequest(email=f"g{uuid.uuid4().hex[:8]}@example.com", password="x"), metadata=md)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert int(dict(err.value.trailing_metadata())["x-crm-header-retry-after"]) >= 1
    # Another address is not affected; the spoofable first entry is not what counts.
    with pytest.raises(grpc.RpcError) as err:
        stub.Login(pb.LoginRequest(email="nobody@example.com", password="wrong-password-0"),
                   metadata=(("x-forwarded-for", f"{address}, 198.51.100.255"),))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_client_cannot_choose_its_address(api: httpx.Client) -> None:
    acct = account(api)
    r = api.post("/v1/auth/login", json={"email": acct["email"], "password": acct["password"]},
                 headers={"x-forwarded-for": "203.0.113.9"})
    current = api.get("/v1/auth/sessions/current", headers=bearer(r.json()["data"]["accessToken"])).json()["data"]
    assert current["clientIp"] and current["clientIp"] != "203.0.113.9"
