"""What services may add to a REST answer through the edge: a fixed set of headers
(`x-crm-header-<name>`), a success status such as 302, and top-level JSON members beside the
envelope (`x-crm-members`), on success and on error alike."""

from __future__ import annotations

import re

import httpx
from edge_fakes import REDIRECT_TO, TOKEN_ERROR_MEMBERS, TOKEN_MEMBERS
from edge_harness import REPO, envelope, error, leaked_headers

FORM = {"content-type": "application/x-www-form-urlencoded"}


def test_allowed_headers_and_top_level_members_reach_the_client(client: httpx.Client) -> None:
    resp = client.post("/v1/auth/token", content="grant_type=client_credentials", headers=FORM)
    assert resp.status_code == 200, resp.text
    assert resp.headers["cache-control"] == "no-store"
    assert "set-cookie" not in resp.headers  # not on the list
    assert not leaked_headers(resp.headers), resp.headers
    body = resp.json()
    assert list(body) == ["success", "data", "meta", "errors", *TOKEN_MEMBERS]
    assert {k: body[k] for k in TOKEN_MEMBERS} == TOKEN_MEMBERS
    assert body["success"] is True and body["data"]["accessToken"] == "tok" and body["errors"] == []


def test_error_answers_carry_headers_and_members_too(client: httpx.Client) -> None:
    resp = client.post("/v1/auth/token", content="grant_type=x&client_id=bad-client", headers=FORM)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == 'Basic realm="crm-api"'  # the service's challenge stays
    assert resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert {k: body[k] for k in TOKEN_ERROR_MEMBERS} == TOKEN_ERROR_MEMBERS
    assert body["success"] is False and body["data"] is None and body["errors"][0]["code"] == "INVALID_CLIENT"


def test_retry_after_on_a_service_429(client: httpx.Client) -> None:
    resp = client.post("/v1/auth/token", content="grant_type=throttled", headers=FORM)
    error(resp, 429, "RESOURCE_EXHAUSTED")
    assert resp.headers["retry-after"] == "42"


def test_a_service_raised_401_gets_a_bearer_challenge(client: httpx.Client) -> None:
    resp = client.post("/v1/auth/token", content="grant_type=expired", headers=FORM)
    error(resp, 401, "UNAUTHENTICATED")
    assert resp.headers["www-authenticate"] == 'Bearer realm="crm-api"'


def test_redirect_with_location(client: httpx.Client, auth: dict[str, str]) -> None:
    resp = client.get("/v1/auth/authorize?response_type=code&client_id=c&state=s-1", headers=auth)
    body = envelope(resp, 302, success=True)
    assert resp.headers["location"] == REDIRECT_TO
    assert body["data"]["code"] == "c-1" and body["data"]["state"] == "s-1"


def test_the_token_form_keeps_the_small_body_limit(client: httpx.Client) -> None:
    resp = client.post("/v1/auth/token", content=b"a" * (1024 * 1024 + 1), headers=FORM)
    error(resp, 413, "PAYLOAD_TOO_LARGE")


def test_the_edge_forwards_exactly_the_headers_the_kernel_lets_services_set() -> None:
    from services.kernel.context import RESPONSE_HEADERS

    lua = (REPO / "edge" / "envelope.lua").read_text()
    listed = re.search(r"local FORWARDED_HEADERS = \{([^}]*)\}", lua)
    assert listed is not None
    assert set(re.findall(r'"([a-z-]+)"', listed.group(1))) == RESPONSE_HEADERS
