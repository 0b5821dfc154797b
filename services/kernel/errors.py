"""Domain errors. Services raise these; one interceptor turns them into gRPC statuses.

Each error carries a gRPC code, an UPPER_SNAKE reason (google.rpc.ErrorInfo) and optional
field violations (google.rpc.BadRequest). `http_status` is what the REST edge answers when the
gRPC code alone cannot say it (422 for validation failures).
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import sqlalchemy.exc


@dataclass(frozen=True)
class FieldViolation:
    """One problem with one field; `field` is the lowerCamel JSON path (e.g. `items[2].email`)."""

    field: str
    message: str
    code: str = "INVALID"


class ConfigurationError(RuntimeError):
    """Settings that cannot work; raised at start, never during an rpc."""


class DomainError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    default_reason = "ERROR"
    http_status: int | None = None

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        violations: list[FieldViolation] | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.violations = violations or []
        self.metadata = metadata or {}


class InvalidArgument(DomainError):
    """The request is malformed (400)."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"


class ValidationFailed(InvalidArgument):
    """The request is well-formed but its values break the rules (422)."""

    default_reason = "VALIDATION_FAILED"
    http_status = 422


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND
    default_reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    code = grpc.StatusCode.ALREADY_EXISTS
    default_reason = "ALREADY_EXISTS"


class Conflict(DomainError):
    """The resource's state does not allow the change (409)."""

    code = grpc.StatusCode.ABORTED
    default_reason = "CONFLICT"


class FailedPrecondition(DomainError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"
    http_status = 409


class Unauthenticated(DomainError):
    code = grpc.StatusCode.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"


class PermissionDenied(DomainError):
    code = grpc.StatusCode.PERMISSION_DENIED
    default_reason = "PERMISSION_DENIED"


class ResourceExhausted(DomainError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_reason = "RESOURCE_EXHAUSTED"


class Unavailable(DomainError):
    code = grpc.StatusCode.UNAVAILABLE
    default_reason = "UNAVAILABLE"


def validation(violations: list[FieldViolation], message: str = "validation failed") -> ValidationFailed:
    """A 422 listing every offending field."""
    return ValidationFailed(message, violations=violations)


def from_database(exc: BaseException) -> DomainError | None:
    """The caller's fault hidden in a database error, when there is one.

    Row-level security refusing a row (SQLSTATE 42501) means the caller tried to write a record
    outside its scope (another owner's, with only `:own` rights): a 403, not a server error.
    """
    orig = getattr(exc, "orig", exc)  # SQLAlchemy wraps the driver's error
    state = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "__cause__", None), "sqlstate", None)
    if state == "42501":
        return PermissionDenied("the record is outside what your role may change", reason="OUT_OF_SCOPE")
    # The database went away (restart, failover, network): the pool drops the dead connection
    # and the client is told to retry, instead of a 500.
    if isinstance(exc, sqlalchemy.exc.TimeoutError):  # every pooled connection busy for pool_timeout
        return Unavailable("the service is overloaded; retry shortly", reason="OVERLOADED")
    if (getattr(exc, "connection_invalidated", False) or isinstance(orig, OSError)
            or (state or "").startswith(("08", "57P")) or type(orig).__name__ in _DISCONNECTS):
        return Unavailable("the database is unavailable; retry shortly", reason="DATABASE_UNAVAILABLE")
    return None


# asyncpg errors that mean the connection is gone (they carry no SQLSTATE of class 08).
_DISCONNECTS = {"ConnectionDoesNotExistError", "InterfaceError", "ConnectionFailureError",
                "CannotConnectNowError", "InternalClientError"}


class PayloadTooLarge(InvalidArgument):
    """An upload over its size limit (413)."""

    default_reason = "PAYLOAD_TOO_LARGE"
    http_status = 413
