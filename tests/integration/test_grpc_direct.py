"""gRPC clients reach the services directly, with the same authentication and rich errors."""

from __future__ import annotations

import time

import grpc
import httpx
import jwt
import pytest
from crm.contacts.v1 import contact_pb2, contacts_service_pb2, contacts_service_pb2_grpc
from google.rpc import error_details_pb2, status_pb2

from services.devstack import DevStack
from tests.integration.conftest import sign_up


@pytest.fixture()
def stub(stack: DevStack) -> contacts_service_pb2_grpc.ContactsServiceStub:
    channel = grpc.insecure_channel(f"127.0.0.1:{stack.grpc_port}")
    return contacts_service_pb2_grpc.ContactsServiceStub(channel)


def md(t: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return (("authorization", t["authorization"]), ("x-tenant-id", t["x-tenant-id"]))


def test_create_and_get_over_grpc(api: httpx.Client, stub: contacts_service_pb2_grpc.ContactsServiceStub) -> None:
    t = sign_up(api)
    made = stub.CreateContact(contacts_service_pb2.CreateContactRequest(contact=contact_pb2.Contact(first_name="Gia")), metadata=md(t))
    got = stub.GetContact(contacts_service_pb2.GetContactRequest(id=made.id), metadata=md(t))
    assert got.first_name == "Gia"
    # The same record over REST.
    assert api.get(f"/v1/contacts/{made.id}", headers={k: v for k, v in t.items() if k != "refresh"}).json()["data"]["firstName"] == "Gia"


def test_validation_error_carries_field_violations(api: httpx.Client, stub: contacts_service_pb2_grpc.ContactsServiceStub) -> None:
    t = sign_up(api)
    with pytest.raises(grpc.RpcError) as err:
        stub.CreateContact(contacts_service_pb2.CreateContactRequest(contact=contact_pb2.Contact(email="x")), metadata=md(t))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    raw = {m.key: m.value for m in err.value.trailing_metadata()}["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(raw)
    fields = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields = [v.field for v in bad.field_violations]
    assert "email" in fields


def test_forged_tokens_refused_by_the_service_itself(api: httpx.Client, stub: contacts_service_pb2_grpc.ContactsServiceStub) -> None:
    t = sign_up(api)
    token = t["authorization"].split()[1]
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = [
        jwt.encode({**claims, "tid": "00000000-0000-0000-0000-000000000000"}, "", algorithm="none"),
        token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),
        "not-a-token",
    ]
    header, _payload, sig = token.split(".")
    forged.append(".".join([header, jwt.utils.base64url_encode(b'{"sub":"x"}').decode(), sig]))
    for bad in forged:
        with pytest.raises(grpc.RpcError) as err:
            stub.ListContacts(contacts_service_pb2.ListContactsRequest(), metadata=(("authorization", f"Bearer {bad}"),))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as err:
        stub.ListContacts(contacts_service_pb2.ListContactsRequest())
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert claims["exp"] > time.time()
