"""The hash chain that makes a tenant's trail tamper-evident.

Each entry's hash is SHA-256 over the previous entry's hash and a canonical JSON of the
entry's own content, so changing, removing or reordering any entry breaks every later link.
The canonical form is computed from the values as PostgreSQL returns them, so verification
recomputes exactly what recording computed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

GENESIS = "0" * 64
CONTENT_FIELDS = ("id", "tenant_id", "seq", "event_id", "occurred_at", "actor_id", "actor_type", "action",
                  "entity_type", "entity_id", "category", "event_type", "source", "changes", "related",
                  "request_id", "client_ip", "user_agent", "metadata")


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="microseconds")
    return value


def canonical(entry: Mapping[Any, Any]) -> bytes:
    content = {name: _plain(entry[name]) for name in CONTENT_FIELDS}
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def link(prev_hash: str, entry: Mapping[Any, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(entry)).hexdigest()
