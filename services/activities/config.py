"""Settings of the activities service beyond the kernel's, read once at start.

- `CRM_CALDAV_SECRET_KEY`: Fernet key that encrypts stored CalDAV passwords. Outside production
  it may be left out: a key is then derived from the auth signing key (HKDF), so `make run`
  needs no setup. Production refuses to start without it.
- `CRM_CALDAV_ALLOW_LOOPBACK=1`: calendar URLs may point at 127.0.0.0/8 and ::1 (local servers in
  development and tests). Refused in production; private, link-local and metadata addresses
  are refused always.
- `CRM_CALDAV_SYNC_INTERVAL`: seconds between background syncs of every connected calendar
  (0 turns them off; 900 by default).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.kernel.errors import ConfigurationError, FailedPrecondition
from services.kernel.settings import Settings


class SecretBox:
    """Encrypts secrets at rest; without a key it refuses to store any."""

    def __init__(self, key: bytes | None) -> None:
        self._fernet = Fernet(key) if key else None

    def seal(self, secret: str) -> bytes:
        if self._fernet is None:
            raise FailedPrecondition("this deployment cannot store passwords: set CRM_CALDAV_SECRET_KEY",
                                     reason="NO_SECRET_KEY")
        return self._fernet.encrypt(secret.encode())

    def open(self, sealed: bytes | None) -> str:
        if not sealed:
            return ""
        if self._fernet is None:
            raise FailedPrecondition("the stored password cannot be read: set CRM_CALDAV_SECRET_KEY",
                                     reason="NO_SECRET_KEY")
        try:
            return self._fernet.decrypt(sealed).decode()
        except InvalidToken:
            raise FailedPrecondition("the stored password was sealed with another key: set it again",
                                     reason="SECRET_KEY_CHANGED") from None


@dataclass(frozen=True)
class ActivitiesConfig:
    secrets: SecretBox
    allow_loopback: bool = False
    sync_interval_seconds: int = 900

    @classmethod
    def from_env(cls, settings: Settings, env: dict[str, str] | None = None) -> ActivitiesConfig:
        e = dict(os.environ if env is None else env)
        production = settings.environment == "production"
        allow_loopback = e.get("CRM_CALDAV_ALLOW_LOOPBACK", "") in ("1", "true", "yes")
        if allow_loopback and production:
            raise ConfigurationError("CRM_CALDAV_ALLOW_LOOPBACK is not allowed in production")
        key: bytes | None = e.get("CRM_CALDAV_SECRET_KEY", "").encode() or None
        if key is None and not production and settings.auth_signing_key_file and settings.auth_signing_key_file.exists():
            derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"crm-activities-caldav").derive(
                settings.auth_signing_key_file.read_bytes())
            key = base64.urlsafe_b64encode(derived)
        if key is None and production:
            raise ConfigurationError("CRM_CALDAV_SECRET_KEY is required in production")
        try:
            secrets = SecretBox(key)
        except ValueError:
            raise ConfigurationError("CRM_CALDAV_SECRET_KEY must be a Fernet key (32 url-safe base64 bytes)") from None
        interval = int(e.get("CRM_CALDAV_SYNC_INTERVAL", "900"))
        return cls(secrets=secrets, allow_loopback=allow_loopback, sync_interval_seconds=max(0, interval))
