"""`Idempotency-Key` on POST, as an API client retrying over a flaky network relies on it."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.integration.test_contacts_rest import h


def test_a_retried_create_answers_the_first_result(api: httpx.Client, tenant: dict[str, str]) -> None:
    key = {"idempotency-key": str(uuid.uuid4())}
    first = api.post("/v1/contacts", headers={**h(tenant), **key}, json={"firstName": "Once"})
    again = api.post("/v1/contacts", headers={**h(tenant), **key}, json={"firstName": "Once"})
    assert first.status_code == again.status_code == 201
    assert again.json()["data"]["id"] == first.json()["data"]["id"]
    assert api.get("/v1/contacts?search=once", headers=h(tenant)).json()["meta"]["pagination"]["total"] == 1
    # The same key with another body is a client error, not a silent replay.
    other = api.post("/v1/contacts", headers={**h(tenant), **key}, json={"firstName": "Twice"})
    assert other.status_code == 422 and other.json()["errors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"
    # Without a key every POST creates.
    api.post("/v1/contacts", headers=h(tenant), json={"firstName": "Once"})
    assert api.get("/v1/contacts?search=once", headers=h(tenant)).json()["meta"]["pagination"]["total"] == 2


def test_twenty_parallel_requests_with_one_key_create_one_record(api: httpx.Client, tenant: dict[str, str]) -> None:
    key = {"idempotency-key": str(uuid.uuid4())}
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: api.post("/v1/contacts", headers={**h(tenant), **key},
                                                  json={"firstName": "Parallel"}), range(20)))
    assert {r.status_code for r in answers} == {201}, [r.text for r in answers if r.status_code != 201][:2]
    assert len({r.json()["data"]["id"] for r in answers}) == 1
    assert api.get("/v1/contacts?search=parallel", headers=h(tenant)).json()["meta"]["pagination"]["total"] == 1


def test_a_failed_attempt_leaves_the_key_free(api: httpx.Client, tenant: dict[str, str]) -> None:
    key = {"idempotency-key": str(uuid.uuid4())}
    bad = api.post("/v1/contacts", headers={**h(tenant), **key}, json={"email": "not-an-email"})
    assert bad.status_code == 422
    fixed = api.post("/v1/contacts", headers={**h(tenant), **key}, json={"email": "not-an-email"})
    assert fixed.status_code == 422  # the same request runs again rather than replaying an error
    other_user = {"idempotency-key": key["idempotency-key"]}
    from tests.integration.conftest import sign_up

    someone = sign_up(api)
    r = api.post("/v1/contacts", headers={**h(someone), **other_user}, json={"firstName": "Theirs"})
    assert r.status_code == 201  # keys are per caller: another user's key never answers this one


def test_a_key_with_bytes_beyond_ascii_still_works(api: httpx.Client, tenant: dict[str, str]) -> None:
    """HTTP allows such bytes in a header value (obs-text); the key keeps working."""
    headers = [(k.encode(), v.encode()) for k, v in h(tenant).items()]
    headers.append((b"idempotency-key", f"clé-{uuid.uuid4()}-¥".encode("latin-1")))
    first = api.post("/v1/contacts", headers=headers, json={"firstName": "Latin"})
    again = api.post("/v1/contacts", headers=headers, json={"firstName": "Latin"})
    assert first.status_code == again.status_code == 201, first.text
    assert again.json()["data"]["id"] == first.json()["data"]["id"]


def test_headers_grpc_cannot_carry_are_no_reason_to_fail(api: httpx.Client, tenant: dict[str, str]) -> None:
    """Names like `x$y` are legal HTTP but not gRPC metadata: the edge drops them, the call goes on."""
    r = api.post("/v1/contacts", headers={**h(tenant), "x$note|#1": "a", "^v": "", "idempotency-key": str(uuid.uuid4())},
                 json={"firstName": "Odd"})
    assert r.status_code == 201, r.text
