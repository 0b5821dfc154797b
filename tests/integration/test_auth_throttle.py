"""Password guessing: throttled per account and per client address, answered 429 with
Retry-After in the envelope, the same way whether or not the account exists."""

from __future__ import annotations

import random
import uuid

import grpc
import httpx
from crm.auth.v1 import auth_service_pb2 as pb
from crm.auth.v1 import auth_service_pb2_grpc as pb_grpc

from services.devstack import DevStack
from tests.integration.auth_helpers import account, bearer, events


def attempts(api: httpx.Client, email: str, password: str, n: int) -> list[int]:
    return [api.post("/v1/auth/login", json={"email": email, "password": password}).status_code for _ in range(n)]


def test_login_is_throttled_per_account_alike_for_unknown_accounts(api: httpx.Client, stack: DevStack) -> None:
    acct = account(api)
    unknown = f"ghost-{uuid.uuid4().hex[:8]}@example.com"
    # The first block lasts a second: each account is probed right after its own failures.
    known = attempts(api, acct["email"], "wrong-password-0", 6)
    r_known = api.post("/v1/auth/login", json={"email": acct["email"], "password": "wrong-password-0"})
    # While blocked, even the right password waits: guessing gains nothing.
    right = api.post("/v1/auth/login", json={"email": acct["email"], "password": acct["password"]})
    ghost = attempts(api, unknown, "wrong-password-0", 6)
    r_ghost = api.post("/v1/auth/login", json={"email": unknown, "password": "wrong-password-0"})
    assert known == ghost == [401] * 6
    for r in (r_known, r_ghost, right):
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["success"] is False and r.json()["errors"][0]["code"] == "TOO_MANY_ATTEMPTS"
    assert r_known.json()["errors"] == r_ghost.json()["errors"]
    # Other accounts are not affected.
    other = account(api)
    assert api.post("/v1/auth/login", json={"email": other["email"], "password": other["password"]}).status_code == 200
    failed = events(stack, "crm.auth.login.failed", lambda e: e["data"]["email"] == acct["email"], count=6)
    assert failed[0]["tenantid"] == acct["tenant"] and failed[0]["data"]["userId"] == acct["userId"]
    assert failed[0]["data"]["clientIp"] and failed[0]["data"]["userAgent"].startswith("python-httpx")
    assert events(stack, "crm.auth.login.throttled", lambda e: e["data"]["email"] == unknown)


def _stub(stack: DevStack) -> pb_grpc.AuthServiceStub:
    return pb_grpc.AuthServiceStub(grpc.insecure_channel(f"127.0.0.1:{stack.grpc_port}"))


def _address() -> str:
    return f"198.51.{random.randint(0, 255)}.{random.randint(1, 254)}"


def _login_code(stub: pb_grpc.AuthServiceStub, email: str, password: str, address: str) -> grpc.StatusCode:
    # Over gRPC the test plays the edge's part (the last x-forwarded-for entry is the address the
    # edge saw), so failures here do not count against the address all REST tests share.
    try:
        stub.Login(pb.LoginRequest(email=email, password=password), metadata=(("x-forwarded-for", address),))
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def test_a_successful_login_clears_the_account_counter(api: httpx.Client, stack: DevStack) -> None:
    acct, stub, address = account(api), _stub(stack), _address()
    bad = grpc.StatusCode.UNAUTHENTICATED
    assert [_login_code(stub, acct["email"], "wrong-password-0", address) for _ in range(4)] == [bad] * 4
    assert _login_code(stub, acct["email"], acct["password"], address) == grpc.StatusCode.OK
    assert [_login_code(stub, acct["email"], "wrong-password-0", address) for _ in range(5)] == [bad] * 5


def test_login_is_throttled_per_client_address(stack: DevStack) -> None:
    stub, address = _stub(stack), _address()
    codes = [_login_code(stub, f"g{uuid.uuid4().hex[:8]}@example.com", "wrong-password-0", f"10.9.9.9, {address}")
             for _ in range(100)]
    assert codes == [grpc.StatusCode.UNAUTHENTICATED] * 100  # one failure per account: only the address adds up
    assert _login_code(stub, "another@example.com", "wrong-password-0", address) == grpc.StatusCode.UNAUTHENTICATED
    # Past the free failures each one blocks the address for a while (1 s, then 2 s ...); a
    # second try or two lets a slow machine's pause between calls not hide it.
    refused = None
    for _ in range(3):
        try:
            stub.Login(pb.LoginRequest(email=f"g{uuid.uuid4().hex[:8]}@example.com", password="x"),
                       metadata=(("x-forwarded-for", address),))
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                refused = err
                break
    assert refused is not None
    assert int({m.key: m.value for m in refused.trailing_metadata()}["x-crm-header-retry-after"]) >= 1
    # Another address is not affected; a spoofable earlier entry is not what counts.
    assert _login_code(stub, "nobody@example.com", "wrong-password-0", f"{address}, {_address()}") == \
        grpc.StatusCode.UNAUTHENTICATED


def test_a_client_cannot_choose_its_address(api: httpx.Client) -> None:
    acct = account(api)
    r = api.post("/v1/auth/login", json={"email": acct["email"], "password": acct["password"]},
                 headers={"x-forwarded-for": "203.0.113.9"})
    current = api.get("/v1/auth/sessions/current", headers=bearer(r.json()["data"]["accessToken"])).json()["data"]
    assert current["clientIp"] and current["clientIp"] != "203.0.113.9"
