"""Opaque tokens (refresh tokens, authorization codes, mailed links, MFA challenges).

A token is base64url(tenant id ‖ record id ‖ 32 random bytes): it names its tenant (so the
record is found inside that tenant's row-level security) and its record, and only the SHA-256
of the random part is stored. 256 bits of randomness need no slow hash.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid

from services.kernel.errors import DomainError

_RAW_LENGTH = 64


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def digest(secret: bytes) -> bytes:
    return hashlib.sha256(secret).digest()


def issue(tenant_id: uuid.UUID, record_id: uuid.UUID) -> tuple[str, bytes]:
    """A new token for a record, and the hash to store."""
    secret = secrets.token_bytes(32)
    return b64(tenant_id.bytes + record_id.bytes + secret), digest(secret)


def parse(token: str) -> tuple[uuid.UUID, uuid.UUID, bytes] | None:
    """(tenant id, record id, hash of the secret), or None when it is not such a token."""
    try:
        raw = unb64(token.strip())
    except (ValueError, TypeError):
        return None
    if len(raw) != _RAW_LENGTH:
        return None
    return uuid.UUID(bytes=raw[:16]), uuid.UUID(bytes=raw[16:32]), digest(raw[32:])


def parse_or(token: str, error: DomainError) -> tuple[uuid.UUID, uuid.UUID, bytes]:
    parsed = parse(token)
    if parsed is None:
        raise error
    return parsed
