"""Optimistic concurrency on records: entity tags and `If-Match` (RFC 9110 §8.8.3, §13.1.1).

A record's entity tag is its `updated_at` to the microsecond: every change of a record sets it,
so the tag costs nothing to compute and needs no extra column. It versions the record's own
fields; what an answer shows from other records (a user's teams) has its own life. Records some
rpc changes conditionally (policy `conditional: true`) are "versioned": the interceptor answers
every rpc returning one of them with an `ETag` header. A conditional rpc calls `require_current`
with the row it has locked for the change: a caller's `If-Match` that names another version
answers 412 and nothing is changed. Without `If-Match` the change goes ahead (last write wins),
as HTTP has it.
"""

from __future__ import annotations

import datetime as dt
import re

import grpc
from google.protobuf import timestamp_pb2
from google.protobuf.message import Message

from services.kernel import context
from services.kernel.errors import DomainError, FieldViolation, InvalidArgument

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICRO = dt.timedelta(microseconds=1)
MAX_IF_MATCH = 1024  # bytes of If-Match worth reading; a longer header is refused
# One entity tag of the list: an optional weak prefix, then a quoted opaque string (RFC 9110 §8.8.3).
_TAG = re.compile(r'\s*(W/)?("[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|$)')


class PreconditionFailed(DomainError):
    """`If-Match` named a version of the record that is no longer current (412)."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    default_reason = "PRECONDITION_FAILED"
    http_status = 412


def entity_tag(updated_at: dt.datetime | timestamp_pb2.Timestamp) -> str:
    """The strong entity tag of a record last changed at `updated_at`, quotes included."""
    if isinstance(updated_at, timestamp_pb2.Timestamp):
        micros = updated_at.seconds * 1_000_000 + updated_at.nanos // 1000
    else:
        micros = (updated_at - _EPOCH) // _MICRO
    return f'"{micros:x}"'


def response_tag(response: Message, versioned: frozenset[str]) -> str | None:
    """The entity tag of an rpc's answer when it is one versioned record (see
    `policy.versioned_records`), else None."""
    if response.DESCRIPTOR.full_name not in versioned or not response.HasField("updated_at"):
        return None
    stamp = getattr(response, "updated_at", None)
    return entity_tag(stamp) if isinstance(stamp, timestamp_pb2.Timestamp) else None


def parse_if_match(header: str) -> frozenset[str] | None:
    """The strong tags an `If-Match` header accepts; None for `*` (any current version).

    Weak tags (`W/"..."`) are read and dropped: If-Match compares strongly, so they never match.
    """
    value = header.strip()
    if value == "*":
        return None
    if len(value) > MAX_IF_MATCH or not value:
        raise _malformed()
    tags: set[str] = set()
    pos = 0
    while pos < len(value):
        match = _TAG.match(value, pos)
        if match is None or match.end() == pos:
            raise _malformed()
        if not match.group(1):
            tags.add(match.group(2))
        pos = match.end()
    return frozenset(tags)


def _malformed() -> InvalidArgument:
    return InvalidArgument(
        "If-Match must be `*` or a list of quoted entity tags, as sent in ETag",
        violations=[FieldViolation("If-Match", 'expected `*` or `"<etag>"[, ...]`', "INVALID_PRECONDITION")],
    )


def require_current(updated_at: dt.datetime) -> None:
    """Refuse the change when the caller's `If-Match` does not name this version of the record.

    Call it with the row locked for the change (SELECT ... FOR UPDATE), so no other writer can
    slip in between the comparison and the write.
    """
    header = context.current().if_match
    if not header:
        return
    accepted = parse_if_match(header)
    current = entity_tag(updated_at)
    if accepted is not None and current not in accepted:
        context.set_response_header("etag", current)  # the version to fetch before trying again
        raise PreconditionFailed(
            "the record changed since you read it: fetch it again and reapply your change",
            metadata={"currentEtag": current},
        )
