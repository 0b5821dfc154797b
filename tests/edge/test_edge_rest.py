"""REST through real Envoy: the envelope, status codes, routing pairs, limits, streaming."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time

import httpx
import pytest
from edge_fakes import (
    CSV_HEAD,
    CSV_ROW,
    EXPORT_PAUSE,
    JWKS_BODY,
    LIST_PAGINATION_TRAILER,
    SECRET,
    TRICKY,
    VALIDATION_ERRORS,
)
from edge_harness import Envoy, envelope, error, leaked_headers

UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def test_get_contact_is_wrapped_in_the_envelope(client: httpx.Client, auth: dict[str, str]) -> None:
    resp = client.get("/v1/contacts/abc", headers=auth)
    body = envelope(resp, 200, success=True)
    assert body["data"]["id"] == "abc"
    assert body["data"]["firstName"] == "Ada"
    assert body["data"]["phone"] == ""  # always_print_primitive_fields
    assert body["data"]["tags"] == []
    assert "pagination" not in body["meta"]
    assert "server" not in resp.headers
    # The upstream saw the same request id the client got back.
    assert body["data"]["customFields"]["requestId"] == resp.headers["x-request-id"]
    assert re.match(UUID, resp.headers["x-request-id"])


def test_client_request_id_is_kept_and_a_bad_one_replaced(client: httpx.Client, auth: dict[str, str]) -> None:
    resp = client.get("/v1/contacts/abc", headers={**auth, "x-request-id": "trace-42.a_b:c"})
    body = envelope(resp, 200, success=True)
    assert resp.headers["x-request-id"] == "trace-42.a_b:c"
    assert body["data"]["customFields"]["requestId"] == "trace-42.a_b:c"

    resp = client.get("/v1/contacts/abc", headers={**auth, "x-request-id": 'bad" id}'})
    body = envelope(resp, 200, success=True)
    assert resp.headers["x-request-id"] != 'bad" id}'
    assert re.match(UUID, resp.headers["x-request-id"])


def test_list_answers_an_array_with_pagination_from_the_trailer(client: httpx.Client, auth: dict[str, str]) -> None:
    body = envelope(client.get("/v1/contacts", params={"limit": 2}, headers=auth), 200, success=True)
    assert [c["id"] for c in body["data"]] == ["c-1", "c-2"]
    assert body["meta"]["pagination"] == LIST_PAGINATION_TRAILER


def test_list_takes_pagination_from_the_answer_without_a_trailer(client: httpx.Client, auth: dict[str, str]) -> None:
    body = envelope(client.get("/v1/contacts", params={"search": "body-only"}, headers=auth), 200, success=True)
    assert [c["id"] for c in body["data"]] == ["c-1", "c-2"]
    assert body["meta"]["pagination"] == {
        "page": 9, "limit": 2, "total": 18, "hasNext": False, "hasPrev": True, "nextPageToken": "",
        "totalCapped": False,
    }


def test_list_unwrapping_is_not_fooled_by_strings(client: httpx.Client, auth: dict[str, str]) -> None:
    body = envelope(client.get("/v1/contacts", params={"search": "tricky"}, headers=auth), 200, success=True)
    assert body["data"][0]["firstName"] == TRICKY
    assert [c["id"] for c in body["data"]] == ["c-1", "c-2"]


def test_list_unwrapping_keeps_a_long_page_whole(client: httpx.Client, auth: dict[str, str]) -> None:
    body = envelope(client.get("/v1/contacts", params={"search": "long"}, headers=auth), 200, success=True)
    assert body["data"][0]["title"] == "t" * 5000
    assert [c["id"] for c in body["data"]] == ["c-1", "c-2"]


def test_create_answers_201_from_the_trailer(client: httpx.Client, auth: dict[str, str]) -> None:
    body = envelope(client.post("/v1/contacts", json={"firstName": "Bo"}, headers=auth), 201, success=True)
    assert body["data"]["id"] == "new-id"
    assert body["data"]["firstName"] == "Bo"


def test_register_answers_201_from_the_rpc_policy(client: httpx.Client) -> None:
    resp = client.post(
        "/v1/auth/register", json={"email": "a@b.c", "password": "x" * 12, "tenantName": "Acme"}
    )
    body = envelope(resp, 201, success=True)
    assert body["data"]["tenantId"] == "t-new"


def test_validation_errors_are_422_with_the_services_list(client: httpx.Client, auth: dict[str, str]) -> None:
    body = envelope(client.post("/v1/contacts", json={"lastName": "x"}, headers=auth), 422, success=False)
    assert body["errors"] == VALIDATION_ERRORS


@pytest.mark.parametrize(
    ("cid", "status", "code", "message"),
    [
        ("missing", 404, "NOT_FOUND", "contact missing not found"),
        ("forbidden", 403, "PERMISSION_DENIED", "contacts:read required"),
        ("conflict", 409, "ALREADY_EXISTS", "email already used"),
        ("aborted", 409, "ABORTED", "concurrent update"),
        ("precondition", 400, "FAILED_PRECONDITION", "contact is archived"),
        ("invalid", 400, "INVALID_ARGUMENT", 'id "invalid" is not a UUID (ü, 100%)'),
        ("busy", 429, "RESOURCE_EXHAUSTED", "quota used up"),
        ("unauthenticated", 401, "UNAUTHENTICATED", "session revoked"),
        ("unavailable", 503, "UNAVAILABLE", "database restarting"),
        ("cancelled", 503, "UNAVAILABLE", "Service unavailable"),
        ("deadline", 504, "DEADLINE_EXCEEDED", "took too long"),
    ],
)
def test_grpc_errors_map_to_status_and_code(
    client: httpx.Client, auth: dict[str, str], cid: str, status: int, code: str, message: str
) -> None:
    resp = client.get(f"/v1/contacts/{cid}", headers=auth)
    err = error(resp, status, code)
    assert err == {"code": code, "message": message, "field": ""}
    if status == 503:
        assert resp.headers["retry-after"] == "1"
    if status == 401:
        assert resp.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("cid", ["boom", "internal"])
def test_server_errors_never_leak_internal_text(client: httpx.Client, auth: dict[str, str], cid: str) -> None:
    resp = client.get(f"/v1/contacts/{cid}", headers=auth)
    assert error(resp, 500, "INTERNAL")["message"] == "Internal server error"
    assert SECRET not in resp.text and "hunter2" not in str(resp.headers)


@pytest.mark.parametrize("with_token", [True, False])
def test_unknown_route_is_404_in_the_envelope(client: httpx.Client, auth: dict[str, str], with_token: bool) -> None:
    headers = auth if with_token else {}
    assert error(client.get("/v1/no-such-thing", headers=headers), 404, "NOT_FOUND")
    assert error(client.get("/", headers=headers), 404, "NOT_FOUND")
    assert error(client.patch("/v1/contacts/abc", json={}, headers=headers), 404, "NOT_FOUND")
    # A gRPC path sent as JSON is not a REST route either (auto_mapping is off).
    assert error(client.post("/crm.contacts.v1.ContactsService/GetContact", json={"id": "x"}, headers=headers), 404, "NOT_FOUND")


def test_unknown_query_parameter_is_400(client: httpx.Client, auth: dict[str, str]) -> None:
    err = error(client.get("/v1/contacts", params={"bogus": "1"}, headers=auth), 400, "BAD_REQUEST")
    assert err["field"] == "bogus"


def test_malformed_json_is_400_with_the_parser_message(client: httpx.Client, auth: dict[str, str]) -> None:
    resp = client.post("/v1/contacts", content=b'{"firstName": ', headers={**auth, "content-type": "application/json"})
    err = error(resp, 400, "BAD_REQUEST")
    assert err["message"] and err["message"] != "Bad request"


@pytest.mark.parametrize("body", [b"\xe4\x00\xff{", b'{"firstName": "\xc3', b"\xed\xa0\x80 \xf0\x9f\x98"])
def test_a_body_of_invalid_utf8_is_400_in_valid_json(client: httpx.Client, auth: dict[str, str], body: bytes) -> None:
    # The transcoder's message quotes the client's bytes; the envelope must still be JSON (UTF-8).
    resp = client.post("/v1/contacts", content=body, headers={**auth, "content-type": "application/json"})
    resp.content.decode("utf-8")  # strict: raises on invalid UTF-8
    err = error(resp, 400, "BAD_REQUEST")
    assert err["message"] and err["message"] != "Bad request"


def test_export_reaches_export_not_get_and_streams_unwrapped(envoy: Envoy, auth: dict[str, str]) -> None:
    with httpx.Client(base_url=envoy.url, timeout=15) as c, c.stream("GET", "/v1/contacts/export", headers=auth) as resp:
        started = time.monotonic()
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "text/csv; charset=utf-8"
        assert not leaked_headers(resp.headers)
        chunks = resp.iter_raw()
        first = next(chunks)
        first_at = time.monotonic() - started
        rest = b"".join(chunks)
    assert first + rest == CSV_HEAD + CSV_ROW
    # The first chunk arrives before the upstream has finished: nothing buffers the stream.
    assert first.startswith(CSV_HEAD)
    assert first_at < EXPORT_PAUSE * 0.8


def test_export_error_before_the_stream_is_enveloped(client: httpx.Client, auth: dict[str, str]) -> None:
    err = error(client.get("/v1/contacts/export", params={"format": "broken"}, headers=auth), 400, "INVALID_ARGUMENT")
    assert err["message"] == "unknown format broken"


def test_bulk_delete_reaches_bulk_not_single_delete(client: httpx.Client, auth: dict[str, str]) -> None:
    resp = client.request("DELETE", "/v1/contacts/bulk", json={"ids": ["a", "b"]}, headers=auth)
    body = envelope(resp, 200, success=True)
    assert body["data"]["succeeded"] == 2
    assert [r["id"] for r in body["data"]["results"]] == ["a", "b"]
    single = envelope(client.delete("/v1/contacts/xyz", headers=auth), 200, success=True)
    assert single["data"] == {}


@pytest.mark.parametrize("path", ["/v1/auth/jwks", "/.well-known/jwks.json"])
def test_jwks_is_public_and_unwrapped(client: httpx.Client, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/jwk-set+json"
    assert resp.content == JWKS_BODY
    assert not leaked_headers(resp.headers)


def test_body_over_1mib_is_413(client: httpx.Client, auth: dict[str, str]) -> None:
    big = json.dumps({"firstName": "a" * (1024 * 1024 + 10)})
    error(client.post("/v1/contacts", content=big, headers={**auth, "content-type": "application/json"}), 413, "PAYLOAD_TOO_LARGE")


def test_import_accepts_uploads_up_to_64mib(client: httpx.Client, auth: dict[str, str]) -> None:
    data = b"x" * (3 * 1024 * 1024)
    resp = client.post("/v1/contacts/import", content=data, headers={**auth, "content-type": "text/csv"})
    body = envelope(resp, 202, success=True)
    assert body["data"]["counts"]["total"] == len(data)
    assert body["data"]["failureReason"] == "text/csv"  # the fake echoes the upload's content type
    too_big = b"x" * (64 * 1024 * 1024 + 1)
    resp = client.post("/v1/contacts/import", content=too_big, headers={**auth, "content-type": "text/csv"})
    error(resp, 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl for h2c prior knowledge")
def test_rest_over_h2c_leaks_no_trailers(envoy: Envoy, auth: dict[str, str]) -> None:
    for path in ("/v1/contacts/abc", "/v1/contacts/export", "/v1/contacts/missing"):
        out = subprocess.run(
            ["curl", "-sv", "--http2-prior-knowledge", "-H", f"authorization: {auth['authorization']}", envoy.url + path],
            check=False, capture_output=True, text=True, timeout=15,
        )
        assert "< HTTP/2" in out.stderr, out.stderr
        received = [line[2:].split(":")[0].lower() for line in out.stderr.splitlines() if line.startswith("< ")]
        assert not [h for h in received if h.startswith(("grpc-", "x-crm-", "x-envoy-", "server"))], out.stderr


def test_answer_too_large_to_transcode_is_a_generic_500(client: httpx.Client, auth: dict[str, str]) -> None:
    # Envoy raises this one while encoding, past the envelope filter: local_reply_config wraps it.
    resp = client.get("/v1/contacts", params={"search": "huge"}, headers=auth)
    assert error(resp, 500, "INTERNAL")["message"] == "Internal server error"


def test_requests_rejected_before_the_filters_are_still_enveloped(client: httpx.Client, auth: dict[str, str]) -> None:
    resp = client.get("/v1/contacts/a%2Fb", headers=auth)  # escaped slash: rejected by the connection manager
    error(resp, 400, "BAD_REQUEST")
    assert re.match(UUID, resp.headers["x-request-id"])
