"""JWT at the edge (jwt_authn with a local Ed25519 JWKS) for REST and native gRPC callers."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx
import jwt
import pytest
from crm.auth.v1 import auth_service_pb2 as auth_pb2
from crm.auth.v1 import auth_service_pb2_grpc as auth_grpc
from crm.contacts.v1 import contact_pb2
from crm.contacts.v1 import contacts_service_pb2 as contacts_pb2
from crm.contacts.v1 import contacts_service_pb2_grpc as contacts_grpc
from edge_fakes import CSV_HEAD, CSV_ROW
from edge_harness import Envoy, Signer, envelope, error


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _alg_none(s: Signer) -> str:
    payload = s.token().split(".")[1]
    return _b64({"alg": "none", "typ": "JWT"}) + "." + payload + "."


def _tampered(s: Signer) -> str:
    head, payload, sig = s.token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    return ".".join([head, _b64({**claims, "tid": "tenant-b"}), sig])


def _hs256_with_public_key(s: Signer) -> str:
    # Algorithm confusion: an HMAC "signed" with the published key material.
    secret = s.jwks()["keys"][0]["x"].encode() * 2
    return jwt.encode({"iss": "crm-auth", "aud": "crm-api", "tid": "tenant-a", "exp": int(time.time()) + 60},
                      secret, algorithm="HS256", headers={"kid": s.kid})


FORGERIES: dict[str, Callable[[Signer], str]] = {
    "alg-none": _alg_none,
    "wrong-key": lambda s: Signer.new(kid=s.kid).token(),
    "tampered-claims": _tampered,
    "expired": lambda s: s.token(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
    "not-yet-valid": lambda s: s.token(nbf=int(time.time()) + 3600),
    "wrong-issuer": lambda s: s.token(iss="evil"),
    "wrong-audience": lambda s: s.token(aud="other-api"),
    "hs256-confusion": _hs256_with_public_key,
    "garbage": lambda s: "abc.def.ghi",
}


def test_missing_token_is_401_with_a_bearer_challenge(client: httpx.Client) -> None:
    resp = client.get("/v1/contacts/abc")
    error(resp, 401, "UNAUTHENTICATED")
    assert resp.headers["www-authenticate"].startswith("Bearer")
    # The challenge names no internal path.
    assert "crm." not in resp.headers["www-authenticate"]


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_forged_tokens_are_401(client: httpx.Client, signer: Signer, name: str) -> None:
    token = FORGERIES[name](signer)
    resp = client.get("/v1/contacts/abc", headers={"authorization": f"Bearer {token}"})
    error(resp, 401, "UNAUTHENTICATED")
    assert resp.headers["www-authenticate"].startswith("Bearer")


def test_token_must_come_as_bearer(client: httpx.Client, signer: Signer) -> None:
    error(client.get("/v1/contacts/abc", headers={"authorization": signer.token()}), 401, "UNAUTHENTICATED")
    error(client.get("/v1/contacts/abc", params={"access_token": signer.token()}), 400, "BAD_REQUEST")


def test_spoofed_tenant_header_is_overwritten_by_the_token(client: httpx.Client, auth: dict[str, str]) -> None:
    resp = client.get("/v1/auth/userinfo", headers={**auth, "x-jwt-tenant-id": "tenant-evil"})
    assert envelope(resp, 200, success=True)["data"]["tenantId"] == "tenant-a"
    resp = client.get("/v1/contacts/abc", headers={**auth, "X-Jwt-Tenant-Id": "tenant-evil"})
    assert envelope(resp, 200, success=True)["data"]["customFields"]["tenantHeader"] == "tenant-a"


def test_spoofed_tenant_header_is_dropped_on_public_calls(client: httpx.Client) -> None:
    resp = client.post("/v1/auth/login", json={"email": "a@b.c", "password": "pw"},
                       headers={"x-jwt-tenant-id": "tenant-evil"})
    body = envelope(resp, 200, success=True)
    assert body["data"]["tenantId"] == ""
    assert body["data"]["tokenType"] == "Bearer"


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("POST", "/v1/auth/login", {"email": "a@b.c", "password": "pw"}),
        ("POST", "/v1/auth/register", {"email": "a@b.c", "password": "pw", "tenantName": "A"}),
        ("GET", "/v1/auth/jwks", None),
        ("POST", "/v1/auth/token", {"grant_type": "client_credentials"}),
        ("GET", "/healthz", None),
    ],
)
def test_public_routes_need_no_token(client: httpx.Client, method: str, path: str, payload: object) -> None:
    resp = client.request(method, path, json=payload)
    assert resp.status_code in (200, 201), resp.text


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("POST", "/v1/auth/logout", {}),
        ("GET", "/v1/auth/userinfo", None),
        ("GET", "/v1/auth/authorize", None),
        ("GET", "/v1/auth/sessions", None),
        ("POST", "/v1/auth/clients", {}),
        ("GET", "/v1/contacts", None),
        ("GET", "/v1/contacts/export", None),
        ("POST", "/v1/contacts/import", None),
        ("DELETE", "/v1/contacts/bulk", {"ids": ["a"]}),
    ],
)
def test_other_routes_need_a_token(client: httpx.Client, method: str, path: str, payload: object) -> None:
    error(client.request(method, path, json=payload), 401, "UNAUTHENTICATED")


# --- native gRPC through the same port --------------------------------------------------------


@pytest.fixture
def channel(envoy: Envoy) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{envoy.port}") as ch:
        yield ch


def test_grpc_clients_pass_through_with_a_token(channel: grpc.Channel, signer: Signer) -> None:
    stub = contacts_grpc.ContactsServiceStub(channel)
    md = (("authorization", f"Bearer {signer.token()}"), ("x-jwt-tenant-id", "tenant-evil"))
    reply, call = stub.GetContact.with_call(contacts_pb2.GetContactRequest(id="abc"), metadata=md, timeout=10)
    assert reply.id == "abc"
    assert reply.custom_fields["tenantHeader"] == "tenant-a"
    # gRPC answers are not enveloped: the service's trailing metadata reaches gRPC callers.
    _, call = stub.CreateContact.with_call(
        contacts_pb2.CreateContactRequest(contact=contact_pb2.Contact(first_name="Bo")), metadata=md, timeout=10
    )
    assert ("x-crm-http-status", "201") in tuple(call.trailing_metadata() or ())
    chunks = [c.data for c in stub.ExportContacts(contacts_pb2.ExportContactsRequest(), metadata=md, timeout=10)]
    assert b"".join(chunks) == CSV_HEAD + CSV_ROW


def test_grpc_clients_need_a_token_except_for_public_rpcs(channel: grpc.Channel, signer: Signer) -> None:
    stub = contacts_grpc.ContactsServiceStub(channel)
    with pytest.raises(grpc.RpcError) as exc:
        stub.GetContact(contacts_pb2.GetContactRequest(id="abc"), timeout=10)
    assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED
    trailing: Any = exc.value.trailing_metadata() or ()
    keys = [k for k, _ in trailing]
    assert not [k for k in keys if k.startswith("x-crm-")]
    with pytest.raises(grpc.RpcError) as exc:
        stub.GetContact(contacts_pb2.GetContactRequest(id="abc"), metadata=(("authorization", "Bearer x.y.z"),), timeout=10)
    assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED

    auth = auth_grpc.AuthServiceStub(channel)
    reply = auth.Login(auth_pb2.LoginRequest(email="a@b.c", password="pw"),
                       metadata=(("x-jwt-tenant-id", "tenant-evil"),), timeout=10)
    assert reply.token_type == "Bearer" and reply.tenant_id == ""


def test_grpc_errors_keep_their_status(channel: grpc.Channel, signer: Signer) -> None:
    stub = contacts_grpc.ContactsServiceStub(channel)
    with pytest.raises(grpc.RpcError) as exc:
        stub.GetContact(contacts_pb2.GetContactRequest(id="missing"),
                        metadata=(("authorization", f"Bearer {signer.token()}"),), timeout=10)
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    assert exc.value.details() == "contact missing not found"


def test_unknown_grpc_service_is_unimplemented(channel: grpc.Channel, signer: Signer) -> None:
    call = channel.unary_unary("/crm.nope.v1.NopeService/Nothing", request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as exc:
        call(b"", metadata=(("authorization", f"Bearer {signer.token()}"),), timeout=10)
    assert exc.value.code() == grpc.StatusCode.UNIMPLEMENTED
