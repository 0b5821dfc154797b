"""Proof Key for Code Exchange (RFC 7636), S256 only.

`plain` is refused: it protects nothing against an attacker who can read the authorization
request, and every current client library does S256 (OAuth 2.0 Security BCP, RFC 9700 §2.1.1).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

METHOD = "S256"
# RFC 7636 §4.1: 43 to 128 characters of the unreserved set.
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
# A S256 challenge is BASE64URL(SHA-256) without padding: exactly 43 characters.
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


def s256(verifier: str) -> str:
    """RFC 7636 §4.2: BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).decode().rstrip("=")


def valid_verifier(verifier: str) -> bool:
    return bool(_VERIFIER.match(verifier))


def valid_challenge(challenge: str) -> bool:
    return bool(_CHALLENGE.match(challenge))


def verify(verifier: str, challenge: str) -> bool:
    """Whether the token request's verifier is the one the authorization request committed to."""
    if not valid_verifier(verifier):
        return False
    return hmac.compare_digest(s256(verifier), challenge)
