"""Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP), as authenticator apps make them.

SHA-1, 6 digits, 30-second steps: the parameters every authenticator app supports. A code is
accepted for the current step and one step either side (clock drift), and only for a step
later than the last one accepted, so each code works once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from urllib.parse import quote, urlencode

STEP = 30
DIGITS = 6
WINDOW = 1  # steps accepted either side of now
SECRET_BYTES = 20  # 160 bits, RFC 4226's recommendation for SHA-1

_ALGORITHMS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}


def hotp(secret: bytes, counter: int, digits: int = DIGITS, algorithm: str = "SHA1") -> str:
    """RFC 4226 §5.3: HMAC, dynamic truncation, modulo 10^digits."""
    mac = hmac.new(secret, struct.pack(">Q", counter), _ALGORITHMS[algorithm]).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def step_at(unix_time: float, step: int = STEP) -> int:
    return int(unix_time // step)


def totp(secret: bytes, unix_time: float, digits: int = DIGITS, algorithm: str = "SHA1", step: int = STEP) -> str:
    """RFC 6238 §4.2: HOTP with the counter T = floor(time / step)."""
    return hotp(secret, step_at(unix_time, step), digits, algorithm)


def match(secret: bytes, code: str, *, after_step: int, now: float | None = None) -> int | None:
    """The step a code belongs to if it is valid now and newer than `after_step`, else None."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    current = step_at(time.time() if now is None else now)
    found = None
    for s in range(current - WINDOW, current + WINDOW + 1):
        # Every candidate is compared (constant work), the newest match wins.
        if hmac.compare_digest(hotp(secret, s), code) and s > after_step:
            found = s
    return found


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def b32(secret: bytes) -> str:
    """Base32 without padding, as authenticator apps take it."""
    return base64.b32encode(secret).decode().rstrip("=")


def otpauth_uri(secret: bytes, account: str, issuer: str) -> str:
    """Key URI format of Google Authenticator (otpauth://totp/Issuer:account?secret=...)."""
    label = quote(f"{issuer}:{account}", safe="@:")
    query = urlencode({"secret": b32(secret), "issuer": issuer, "algorithm": "SHA1", "digits": DIGITS,
                       "period": STEP})
    return f"otpauth://totp/{label}?{query}"
