"""The auth service's data key: encrypts secrets at rest, peppers hashes of short codes.

TOTP seeds must be readable by the service (to compute codes), so they cannot be hashed; they
are sealed with AES-256-GCM under a key kept outside the database, bound to their user and
tenant (associated data), so a database dump alone reveals no second factors and a sealed seed
cannot be moved to another account. MFA backup codes (50 bits each) are stored as HMAC-SHA-256
under the same key: fast to check, useless to brute-force offline without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = b"\x01"  # format byte: lets a later key rotation tell old ciphertexts apart
KEY_BYTES = 32


@dataclass(frozen=True)
class DataKey:
    key: bytes

    @classmethod
    def load(cls, path: Path) -> DataKey:
        raw = path.read_bytes()
        if len(raw) != KEY_BYTES:
            raise ValueError(f"{path} must hold exactly {KEY_BYTES} random bytes")
        return cls(raw)

    @classmethod
    def ensure(cls, path: Path) -> DataKey:
        """Load the key, creating it (mode 0600) on first use (development stacks)."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(KEY_BYTES))
        return cls.load(path)

    def _subkey(self, purpose: bytes) -> bytes:
        return hmac.new(self.key, purpose, hashlib.sha256).digest()

    def seal(self, plaintext: bytes, context: str) -> bytes:
        nonce = secrets.token_bytes(12)
        return VERSION + nonce + AESGCM(self._subkey(b"seal")).encrypt(nonce, plaintext, context.encode())

    def open(self, sealed: bytes, context: str) -> bytes:
        if sealed[:1] != VERSION:
            raise ValueError("unknown sealed format")
        try:
            return AESGCM(self._subkey(b"seal")).decrypt(sealed[1:13], sealed[13:], context.encode())
        except InvalidTag:
            raise ValueError("sealed value does not belong here or the key is wrong") from None

    def mac(self, value: str, context: str) -> bytes:
        return hmac.new(self._subkey(b"mac"), f"{context}\x00{value}".encode(), hashlib.sha256).digest()
