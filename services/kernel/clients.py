"""Calls from one service to another, over gRPC only (no service reads another's tables).

Where a service lives comes from configuration (`CRM_SERVICE_ADDRESSES`), or is this process
when it hosts that service. A call on behalf of a user forwards the user's own token, so the
callee authorizes the user, not the calling service; background work (event consumers,
automation) calls with a short-lived service token for one tenant and named permissions.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import grpc
import jwt
from google.rpc import error_details_pb2, status_pb2
from opentelemetry import propagate

from services.kernel import context, errors
from services.kernel.errors import Unavailable
from services.kernel.settings import Settings

Stub = TypeVar("Stub")
SERVICE_TOKEN_SECONDS = 120
SERVICE_NAMESPACE = uuid.UUID("5b0d6f2e-4c1b-4d0e-9a51-6c1f3c8f0a11")


class ServiceClients:
    """One channel per address, shared by every stub of the process."""

    def __init__(self, settings: Settings, own_address: str, hosted: set[str], signer: Any | None = None) -> None:
        self._settings = settings
        self._own = own_address
        self._hosted = hosted
        self._signer = signer  # services.auth.keys.SigningKey, when this process may act on its own
        self._channels: dict[str, grpc.aio.Channel] = {}

    def deployed(self, service: str) -> bool:
        return service in self._hosted or service in self._settings.service_addresses

    def stub(self, service: str, factory: Callable[[grpc.aio.Channel], Stub]) -> Stub:
        """A stub for `service` ("crm.deals.v1.DealsService"), or 503 SERVICE_NOT_DEPLOYED."""
        address = self._settings.service_addresses.get(service) or (self._own if service in self._hosted else "")
        if not address:
            raise Unavailable(f"{service.split('.')[1]} service is not deployed", reason="SERVICE_NOT_DEPLOYED")
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = grpc.aio.insecure_channel(address)
        return factory(channel)

    @staticmethod
    def as_caller() -> tuple[tuple[str, str], ...]:
        """Metadata that makes the callee see the current caller (token, tenant, request id, trace)."""
        ctx = context.current()
        md = {"authorization": f"Bearer {ctx.token}", "x-tenant-id": ctx.tenant_id, "x-request-id": ctx.request_id}
        propagate.inject(md)
        return tuple(md.items())

    def as_service(self, service: str, tenant_id: str, permissions: list[str]) -> tuple[tuple[str, str], ...]:
        """Metadata for background work of `service` in one tenant, limited to `permissions`."""
        if self._signer is None:
            raise Unavailable("this process has no key to act on its own", reason="NO_SERVICE_IDENTITY")
        now = int(time.time())
        claims = {
            "iss": self._settings.token_issuer, "aud": self._settings.token_audience,
            # A stable uuid per service, so columns such as created_by take it like a user's id.
            "sub": str(uuid.uuid5(SERVICE_NAMESPACE, service)), "svc": service, "tid": tenant_id, "sid": str(uuid.uuid4()), "roles": [],
            "perms": sorted(permissions), "iat": now, "nbf": now, "exp": now + SERVICE_TOKEN_SECONDS,
        }
        token = jwt.encode(claims, self._signer.private, algorithm="EdDSA", headers={"kid": self._signer.kid})
        md = {"authorization": f"Bearer {token}", "x-tenant-id": tenant_id,
              "x-request-id": context.current().request_id or str(uuid.uuid4())}
        propagate.inject(md)
        return tuple(md.items())

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close(grace=None)
        self._channels.clear()


_BY_CODE: dict[grpc.StatusCode, type[errors.DomainError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgument,
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyExists,
    grpc.StatusCode.ABORTED: errors.Conflict,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPrecondition,
    grpc.StatusCode.UNAUTHENTICATED: errors.Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.ResourceExhausted,
}


def remote_error(err: grpc.aio.AioRpcError, service: str = "") -> errors.DomainError:
    """Another service's error as this service's own, so the caller sees the callee's status,
    reason and field violations (a 403 stays a 403, a 422 a 422). A callee that is down, too slow
    or broken answers 503: its internals are not this caller's to show."""
    trailers: dict[str, Any] = {str(k): v for k, v in cast(Any, err.trailing_metadata() or ())}
    reason = ""
    violations: list[errors.FieldViolation] = []
    raw = trailers.get("grpc-status-details-bin")
    if isinstance(raw, bytes):
        for detail in status_pb2.Status.FromString(raw).details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations = [errors.FieldViolation(v.field, v.description, v.reason or "INVALID") for v in bad.field_violations]
    cls = _BY_CODE.get(err.code())
    if cls is None:
        if err.code() == grpc.StatusCode.UNAVAILABLE and reason:
            return Unavailable(err.details() or "service unavailable", reason=reason)
        who = f"the {service} service" if service else "a service this request needs"
        return Unavailable(f"{who} did not answer", reason="UPSTREAM_UNAVAILABLE")
    if cls is errors.InvalidArgument and trailers.get("x-crm-http-status") == "422":
        cls = errors.ValidationFailed
    return cls(err.details() or "", reason=reason or None, violations=violations)


@contextmanager
def upstream() -> Iterator[None]:
    """Around calls to other services: their errors surface as DomainErrors, not as INTERNAL."""
    try:
        yield
    except grpc.aio.AioRpcError as err:
        raise remote_error(err) from None
