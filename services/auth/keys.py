"""The auth service's signing key (Ed25519) and the JWKS that publishes its public half."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise TypeError(f"{path} is not an Ed25519 private key")
        return cls(key)

    @classmethod
    def ensure(cls, path: Path) -> SigningKey:
        """Load the key, creating it (mode 0600) on first use."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            pem = cls.generate().private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
        return cls.load(path)

    @property
    def public_raw(self) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def kid(self) -> str:
        """RFC 7638-style thumbprint, stable for the key."""
        return _b64(hashlib.sha256(self.public_raw).digest())[:16]

    def jwks(self) -> dict[str, Any]:
        return {
            "keys": [
                {"kty": "OKP", "crv": "Ed25519", "x": _b64(self.public_raw), "kid": self.kid, "alg": "EdDSA", "use": "sig"}
            ]
        }
