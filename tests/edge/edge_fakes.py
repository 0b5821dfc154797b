"""A tiny grpc.aio upstream for the edge tests.

It tests the edge, not the product: each rpc has a few canned behaviours (chosen by the id or a
field of the request) that exercise one part of the edge contract, and echoes what the edge
forwarded (tenant header, request id) so the tests can see it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator

import grpc
from crm.auth.v1 import auth_service_pb2 as auth_pb2
from crm.auth.v1 import auth_service_pb2_grpc as auth_grpc
from crm.common.v1 import common_pb2
from crm.contacts.v1 import contact_pb2
from crm.contacts.v1 import contacts_service_pb2 as contacts_pb2
from crm.contacts.v1 import contacts_service_pb2_grpc as contacts_grpc
from google.api import httpbody_pb2
from google.protobuf import empty_pb2, struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

LIST_PAGINATION_TRAILER = {"page": 1, "limit": 2, "total": 5, "hasNext": True, "hasPrev": False}
VALIDATION_ERRORS = [
    {"code": "REQUIRED", "message": "firstName is required", "field": "firstName"},
    {"code": "INVALID_FORMAT", "message": "email is not an address", "field": "email"},
]
SECRET = "db password is hunter2"  # must never reach a client
CSV_HEAD = b"id,firstName\r\n"
CSV_ROW = b"c-1,Ada\r\n"
EXPORT_PAUSE = 0.6  # seconds between the two CSV chunks (the tests check it streams)
JWKS_BODY = b'{"keys":[]}'
HUGE = 5 * 1024 * 1024
TRICKY = 'a"}],\\"pagination":{[,\\'
TOKEN_MEMBERS = {"access_token": "tok", "token_type": "Bearer", "expires_in": 900}
TOKEN_ERROR_MEMBERS = {"error": "invalid_client", "error_description": "unknown client"}
REDIRECT_TO = "https://app.example.com/cb?code=c-1&state=s-1"

# GetContact ids that answer with an error.
ERRORS: dict[str, tuple[grpc.StatusCode, str]] = {
    "missing": (grpc.StatusCode.NOT_FOUND, "contact missing not found"),
    "forbidden": (grpc.StatusCode.PERMISSION_DENIED, "contacts:read required"),
    "conflict": (grpc.StatusCode.ALREADY_EXISTS, "email already used"),
    "aborted": (grpc.StatusCode.ABORTED, "concurrent update"),
    "precondition": (grpc.StatusCode.FAILED_PRECONDITION, "contact is archived"),
    "invalid": (grpc.StatusCode.INVALID_ARGUMENT, 'id "invalid" is not a UUID (ü, 100%)'),
    "busy": (grpc.StatusCode.RESOURCE_EXHAUSTED, "quota used up"),
    "unavailable": (grpc.StatusCode.UNAVAILABLE, "database restarting"),
    "cancelled": (grpc.StatusCode.CANCELLED, "CANCELLED"),  # as a stopping server drops a call
    "unauthenticated": (grpc.StatusCode.UNAUTHENTICATED, "session revoked"),
    "deadline": (grpc.StatusCode.DEADLINE_EXCEEDED, "took too long"),
    "internal": (grpc.StatusCode.INTERNAL, SECRET),
}


def _md(context: grpc.aio.ServicerContext, key: str) -> str:
    return str(next((v for k, v in context.invocation_metadata() or () if k == key), ""))


def _echo(context: grpc.aio.ServicerContext) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(
        {
            "tenantHeader": _md(context, "x-jwt-tenant-id"),
            "requestId": _md(context, "x-request-id"),
            "hasAuthorization": bool(_md(context, "authorization")),
        }
    )
    return s


def _contact(cid: str, context: grpc.aio.ServicerContext) -> contact_pb2.Contact:
    return contact_pb2.Contact(
        id=cid, first_name="Ada", last_name="Lovelace", email="ada@example.com", custom_fields=_echo(context)
    )


class Contacts(contacts_grpc.ContactsServiceServicer):
    async def GetContact(self, request: contacts_pb2.GetContactRequest, context: grpc.aio.ServicerContext) -> contact_pb2.Contact:
        if request.id == "boom":
            raise RuntimeError(SECRET)  # unhandled: grpc answers UNKNOWN with this text
        if request.id in ERRORS:
            code, message = ERRORS[request.id]
            await context.abort(code, message)
        return _contact(request.id, context)

    async def ListContacts(
        self, request: contacts_pb2.ListContactsRequest, context: grpc.aio.ServicerContext
    ) -> contacts_pb2.ListContactsResponse:
        if request.search != "body-only":
            context.set_trailing_metadata((("x-crm-pagination", json.dumps(LIST_PAGINATION_TRAILER)),))
        first = _contact("c-1", context)
        if request.search == "huge":
            first.title = "x" * HUGE  # larger than the edge buffers for one answer
        if request.search == "tricky":
            first.first_name = TRICKY  # the envelope's unwrapping must not stop inside a string
        if request.search == "long":
            first.title = "t" * 5000  # a page longer than an error message: unwrapped whole
        return contacts_pb2.ListContactsResponse(
            contacts=[first, _contact("c-2", context)],
            pagination=common_pb2.PageInfo(page=9, limit=2, total=18, has_next=False, has_prev=True),
        )

    async def CreateContact(
        self, request: contacts_pb2.CreateContactRequest, context: grpc.aio.ServicerContext
    ) -> contact_pb2.Contact:
        if not request.contact.first_name:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "validation failed",
                trailing_metadata=(("x-crm-http-status", "422"), ("x-crm-errors", json.dumps(VALIDATION_ERRORS))),
            )
        context.set_trailing_metadata((("x-crm-http-status", "201"),))
        created = contact_pb2.Contact()
        created.CopyFrom(request.contact)
        created.id = "new-id"
        return created

    async def DeleteContact(self, request: contacts_pb2.DeleteContactRequest, context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        return empty_pb2.Empty()

    async def BulkDeleteContacts(
        self, request: contacts_pb2.BulkDeleteContactsRequest, context: grpc.aio.ServicerContext
    ) -> contacts_pb2.BulkDeleteContactsResponse:
        return contacts_pb2.BulkDeleteContactsResponse(
            results=[contacts_pb2.BulkContactResult(index=i, success=True, id=cid) for i, cid in enumerate(request.ids)],
            succeeded=len(request.ids),
        )

    async def ExportContacts(
        self, request: contacts_pb2.ExportContactsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        if request.format == "broken":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "unknown format broken")
        yield httpbody_pb2.HttpBody(content_type="text/csv; charset=utf-8", data=CSV_HEAD)
        await asyncio.sleep(EXPORT_PAUSE)
        yield httpbody_pb2.HttpBody(data=CSV_ROW)

    async def ImportContacts(
        self, request: contacts_pb2.ImportContactsRequest, context: grpc.aio.ServicerContext
    ) -> common_pb2.Job:
        context.set_trailing_metadata((("x-crm-http-status", "202"),))
        return common_pb2.Job(
            job_id="job-1",
            kind="contacts.import",
            status="queued",
            counts=common_pb2.JobCounts(total=len(request.file.data)),
            failure_reason=request.file.content_type,
        )


class Auth(auth_grpc.AuthServiceServicer):
    async def Register(self, request: auth_pb2.RegisterRequest, context: grpc.aio.ServicerContext) -> auth_pb2.RegisterResponse:
        # No x-crm-http-status: the edge answers 201 from the rpc's policy (success_status).
        return auth_pb2.RegisterResponse(tenant_id="t-new", user=auth_pb2.User(email=request.email, roles=["admin"]))

    async def Login(self, request: auth_pb2.LoginRequest, context: grpc.aio.ServicerContext) -> auth_pb2.TokenResponse:
        return auth_pb2.TokenResponse(
            access_token="access", refresh_token="refresh", token_type="Bearer", expires_in=900,
            tenant_id=_md(context, "x-jwt-tenant-id"),  # echo: must be empty on a public call
        )

    async def GetUserInfo(self, request: auth_pb2.GetUserInfoRequest, context: grpc.aio.ServicerContext) -> auth_pb2.UserInfo:
        return auth_pb2.UserInfo(sub="u-1", tenant_id=_md(context, "x-jwt-tenant-id"), email="ada@example.com")

    async def Token(self, request: auth_pb2.TokenRequest, context: grpc.aio.ServicerContext) -> auth_pb2.TokenResponse:
        # What the kernel sends for context.set_response_header / set_envelope_members.
        body = request.form.data.decode()
        if "bad-client" in body:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "unknown client", trailing_metadata=(
                ("x-crm-errors", json.dumps([{"code": "INVALID_CLIENT", "message": "unknown client", "field": ""}])),
                ("x-crm-members", json.dumps(TOKEN_ERROR_MEMBERS)),
                ("x-crm-header-www-authenticate", 'Basic realm="crm-api"'),
                ("x-crm-header-cache-control", "no-store"),
            ))
        if "throttled" in body:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many attempts",
                                trailing_metadata=(("x-crm-header-retry-after", "42"),))
        if "expired" in body:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "session has ended")
        context.set_trailing_metadata((
            ("x-crm-header-cache-control", "no-store"),
            ("x-crm-header-set-cookie", "session=stolen"),  # not on the edge's list: dropped
            ("x-crm-members", json.dumps(TOKEN_MEMBERS)),
        ))
        return auth_pb2.TokenResponse(access_token="tok", token_type="Bearer", expires_in=900)

    async def Authorize(self, request: auth_pb2.AuthorizeRequest,
                        context: grpc.aio.ServicerContext) -> auth_pb2.AuthorizeResponse:
        context.set_trailing_metadata((("x-crm-http-status", "302"), ("x-crm-header-location", REDIRECT_TO)))
        return auth_pb2.AuthorizeResponse(redirect_uri=REDIRECT_TO, code="c-1", state=request.state)

    async def GetJwks(self, request: auth_pb2.GetJwksRequest, context: grpc.aio.ServicerContext) -> httpbody_pb2.HttpBody:
        return httpbody_pb2.HttpBody(content_type="application/jwk-set+json", data=JWKS_BODY)


class FakeUpstream:
    """Runs the fake servers on a grpc.aio server (port 0) in a thread of its own."""

    def __init__(self) -> None:
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: grpc.aio.Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None

    def start(self) -> FakeUpstream:
        ready = threading.Event()

        async def serve() -> None:
            self._server = grpc.aio.server()
            # The fakes implement a few rpcs; grpc's generated base answers the rest UNIMPLEMENTED,
            # though mypy-protobuf's stubs declare every rpc abstract.
            contacts_grpc.add_ContactsServiceServicer_to_server(Contacts(), self._server)  # type: ignore[abstract]
            auth_grpc.add_AuthServiceServicer_to_server(Auth(), self._server)  # type: ignore[abstract]
            health = HealthServicer()
            await health.set("", health_pb2.HealthCheckResponse.SERVING)
            health_pb2_grpc.add_HealthServicer_to_server(health, self._server)
            self.port = self._server.add_insecure_port("127.0.0.1:0")
            await self._server.start()
            self._stopping = asyncio.Event()
            ready.set()
            await self._stopping.wait()
            await self._server.stop(0)

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(serve())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="fake-upstream", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake upstream did not start")
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._loop is None or self._server is None or self._thread is None:
            return
        assert self._stopping is not None
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(10)
        if self._thread.is_alive():
            raise RuntimeError("fake upstream did not stop")
        self._server = None
