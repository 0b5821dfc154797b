"""Per-user rate limits through real Envoy and the real rate-limit service (edge/ratelimit).

The session edge runs the service with the seed's tiers; the tests that exhaust budgets run
their own service with tiny limits, and every test counts against users of its own.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from crm.contacts.v1 import contacts_service_pb2 as contacts_pb2
from crm.contacts.v1 import contacts_service_pb2_grpc as contacts_grpc
from edge_fakes import FakeUpstream
from edge_harness import Envoy, RateLimitService, Signer, envelope, error

pytestmark = pytest.mark.envoy

TINY = "standard=3/m,premium=5/m,api_integration=7/m,bulk=2/m"
RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


def bearer(signer: Signer, tier: str | None = "standard", sub: str | None = None) -> dict[str, str]:
    """A token of a user of its own (its own budget)."""
    return {"authorization": f"Bearer {signer.token(sub=sub or f'u-{uuid.uuid4()}', tier=tier)}"}


def rate(resp: httpx.Response) -> tuple[str, int, int]:
    return (resp.headers["x-ratelimit-limit"], int(resp.headers["x-ratelimit-remaining"]),
            int(resp.headers["x-ratelimit-reset"]))


def get_contact(url: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{url}/v1/contacts/abc", headers=headers, timeout=10)


def bulk_delete(url: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.request("DELETE", f"{url}/v1/contacts/bulk", headers=headers, json={"ids": ["c-1"]}, timeout=10)


def assert_rate_limited(resp: httpx.Response, limit: str, window: int) -> None:
    """A 429 in the envelope with Retry-After and the rate-limit headers."""
    err = error(resp, 429, "RATE_LIMITED")
    assert err["message"] == "Too many requests"
    assert 0 < int(resp.headers["retry-after"]) <= window
    assert resp.headers["x-ratelimit-limit"] == limit
    assert resp.headers["x-ratelimit-remaining"] == "0"
    assert 0 < int(resp.headers["x-ratelimit-reset"]) <= window


@pytest.fixture(scope="module")
def limited(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream, jwks_file: Path
) -> Iterator[Envoy]:
    """An edge whose rate-limit service allows a handful of calls a minute."""
    service = RateLimitService(tmp_path_factory.mktemp("rls-tiny"), TINY).start()
    proxy = Envoy(tmp_path_factory.mktemp("envoy-tiny"), upstream.address, jwks_file,
                  rate_limit_service=service.address).start()
    yield proxy
    proxy.stop()
    service.stop()
    assert not proxy.lua_errors(), proxy.lua_errors()


@pytest.mark.parametrize(
    ("tier", "limit"),
    [("standard", 1000), ("premium", 5000), ("api_integration", 10000), (None, 1000), ("gold", 1000)],
)
def test_default_limits_are_the_seed_tiers(envoy: Envoy, signer: Signer, tier: str | None, limit: int) -> None:
    auth = bearer(signer, tier)
    name = tier if tier in ("premium", "api_integration") else "standard"
    first, second = get_contact(envoy.url, auth), get_contact(envoy.url, auth)
    envelope(first, 200, success=True)
    assert rate(first)[:2] == (f'{limit}, {limit};w=3600;name="{name}"', limit - 1)
    assert rate(second)[1] == limit - 2
    assert 3590 <= rate(second)[2] <= 3600


def test_bulk_calls_have_their_own_hourly_budget_whatever_the_tier(envoy: Envoy, signer: Signer) -> None:
    for tier in ("standard", "api_integration"):
        auth = bearer(signer, tier)
        resp = bulk_delete(envoy.url, auth)
        envelope(resp, 200, success=True)
        assert rate(resp)[:2] == ('100, 100;w=3600;name="bulk"', 99)
        # Streams (exports) and uploads (imports) are bulk calls too; headers reach raw answers.
        export = httpx.get(f"{envoy.url}/v1/contacts/export", headers=auth, timeout=10)
        assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
        assert rate(export)[:2] == ('100, 100;w=3600;name="bulk"', 98)
        imported = httpx.post(f"{envoy.url}/v1/contacts/import", content=b"a,b\n",
                              headers={**auth, "content-type": "text/csv"}, timeout=10)
        envelope(imported, 202, success=True)
        assert rate(imported)[1] == 97
        assert rate(get_contact(envoy.url, auth))[1] == (999 if tier == "standard" else 9999)


def test_public_calls_report_the_standard_budget_of_the_address(envoy: Envoy) -> None:
    resp = httpx.post(f"{envoy.url}/v1/auth/login", json={"email": "a@example.com", "password": "x"}, timeout=10)
    envelope(resp, 200, success=True)
    assert rate(resp)[0] == '1000, 1000;w=3600;name="standard"'


def test_an_exhausted_budget_is_a_429_envelope_with_retry_after(limited: Envoy, signer: Signer) -> None:
    auth = bearer(signer)
    remaining = []
    for _ in range(3):
        resp = get_contact(limited.url, auth)
        envelope(resp, 200, success=True)
        remaining.append(rate(resp)[1])
    assert remaining == [2, 1, 0]
    for _ in range(2):  # stays refused; refused calls do not push the reset further
        assert_rate_limited(get_contact(limited.url, auth), '3, 3;w=60;name="standard"', 60)
    # Every route of the class shares the budget: a list call is refused too.
    assert_rate_limited(httpx.get(f"{limited.url}/v1/contacts", headers=auth, timeout=10),
                        '3, 3;w=60;name="standard"', 60)


def test_users_are_counted_apart(limited: Envoy, signer: Signer) -> None:
    ann, bob = bearer(signer), bearer(signer)
    for _ in range(3):
        envelope(get_contact(limited.url, ann), 200, success=True)
    error(get_contact(limited.url, ann), 429, "RATE_LIMITED")
    resp = get_contact(limited.url, bob)
    envelope(resp, 200, success=True)
    assert rate(resp)[1] == 2


def test_a_new_token_of_the_same_user_does_not_reset_the_budget(limited: Envoy, signer: Signer) -> None:
    # Keyed by the token's `sub`: signing in again (or a premium token) gives no fresh budget.
    sub = f"u-{uuid.uuid4()}"
    for _ in range(3):
        envelope(get_contact(limited.url, bearer(signer, sub=sub)), 200, success=True)
    error(get_contact(limited.url, bearer(signer, "standard", sub=sub)), 429, "RATE_LIMITED")
    resp = get_contact(limited.url, bearer(signer, "premium", sub=sub))
    assert rate(resp)[:2] == ('5, 5;w=60;name="premium"', 1)  # same window, the larger size


@pytest.mark.parametrize(("tier", "size"), [("premium", 5), ("api_integration", 7), (None, 3)])
def test_higher_tiers_get_more(limited: Envoy, signer: Signer, tier: str | None, size: int) -> None:
    auth = bearer(signer, tier)
    statuses = [get_contact(limited.url, auth).status_code for _ in range(size + 1)]
    assert statuses == [200] * size + [429]


def test_a_tier_header_sent_by_the_client_is_ignored(limited: Envoy, signer: Signer) -> None:
    # Only jwt_authn sets x-jwt-*: a standard user cannot claim premium by header.
    auth = {**bearer(signer, None), "x-jwt-tier": "premium", "x-jwt-user-id": "someone-else"}
    statuses = [get_contact(limited.url, auth).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_bulk_calls_are_counted_apart_from_other_calls(limited: Envoy, signer: Signer) -> None:
    auth = bearer(signer, "premium")
    for left in (1, 0):
        resp = bulk_delete(limited.url, auth)
        envelope(resp, 200, success=True)
        assert rate(resp)[:2] == ('2, 2;w=60;name="bulk"', left)
    assert_rate_limited(bulk_delete(limited.url, auth), '2, 2;w=60;name="bulk"', 60)
    assert_rate_limited(httpx.get(f"{limited.url}/v1/contacts/export", headers=auth, timeout=10),
                        '2, 2;w=60;name="bulk"', 60)
    # The premium budget of ordinary calls is untouched.
    resp = get_contact(limited.url, auth)
    envelope(resp, 200, success=True)
    assert rate(resp)[:2] == ('5, 5;w=60;name="premium"', 4)


def test_public_calls_are_counted_per_client_address(limited: Envoy, signer: Signer) -> None:
    login = {"email": "a@example.com", "password": "x"}
    statuses = [httpx.post(f"{limited.url}/v1/auth/login", json=login, timeout=10).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    resp = httpx.post(f"{limited.url}/v1/auth/register", json={"email": "b@example.com"}, timeout=10)
    assert_rate_limited(resp, '3, 3;w=60;name="standard"', 60)
    # A token does not move a public call into the user's budget, nor spend it.
    auth = bearer(signer)
    error(httpx.post(f"{limited.url}/v1/auth/login", json=login, headers=auth, timeout=10), 429, "RATE_LIMITED")
    assert rate(get_contact(limited.url, auth))[1] == 2


def test_native_grpc_callers_get_resource_exhausted(limited: Envoy, signer: Signer) -> None:
    metadata = (("authorization", bearer(signer)["authorization"]),)
    with grpc.insecure_channel(f"127.0.0.1:{limited.port}") as channel:
        stub = contacts_grpc.ContactsServiceStub(channel)
        for _ in range(3):
            stub.GetContact(contacts_pb2.GetContactRequest(id="abc"), metadata=metadata, timeout=10)
        with pytest.raises(grpc.RpcError) as exc:
            stub.GetContact(contacts_pb2.GetContactRequest(id="abc"), metadata=metadata, timeout=10)
    assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_the_budget_comes_back_when_the_window_closes(
    tmp_path: Path, upstream: FakeUpstream, jwks_file: Path, signer: Signer
) -> None:
    service = RateLimitService(tmp_path / "rls", "standard=2/3s").start()
    proxy = Envoy(tmp_path / "envoy", upstream.address, jwks_file, rate_limit_service=service.address).start()
    try:
        auth = bearer(signer)
        assert [get_contact(proxy.url, auth).status_code for _ in range(2)] == [200, 200]
        refused = get_contact(proxy.url, auth)
        assert_rate_limited(refused, "2", 3)  # a 3 s window is no whole unit: no `w=` policy
        time.sleep(int(refused.headers["retry-after"]) + 0.2)
        resp = get_contact(proxy.url, auth)
        envelope(resp, 200, success=True)
        assert rate(resp)[:2] == ("2", 1)
    finally:
        proxy.stop()
        service.stop()


def test_calls_go_through_while_the_rate_limit_service_is_down(
    tmp_path: Path, upstream: FakeUpstream, jwks_file: Path, signer: Signer
) -> None:
    service = RateLimitService(tmp_path / "rls", "standard=1/h").start()
    proxy = Envoy(tmp_path / "envoy", upstream.address, jwks_file, rate_limit_service=service.address).start()
    try:
        auth = bearer(signer)
        envelope(get_contact(proxy.url, auth), 200, success=True)
        error(get_contact(proxy.url, auth), 429, "RATE_LIMITED")
        service.stop()
        for _ in range(3):  # fail open: served, without rate-limit headers
            resp = get_contact(proxy.url, auth)
            envelope(resp, 200, success=True)
            assert not [h for h in RATE_HEADERS if h in resp.headers]
        # The edge stays ready: the rate-limit service is not part of /healthz.
        envelope(httpx.get(f"{proxy.url}/healthz", timeout=5), 200, success=True)
    finally:
        proxy.stop()
        service.stop()
