"""The auth service's building blocks against their RFCs' test vectors, and its parsers."""

from __future__ import annotations

import base64
import uuid

import pytest

from services.auth import opaque, pkce, totp
from services.auth.domain import narrow
from services.auth.mfa import new_backup_code, normalize_backup
from services.auth.oauth import OAuthError, _valid_redirect, _with_query, basic_credentials, parse_body
from services.auth.throttle import ACCOUNT, Rule
from services.auth.vault import DataKey
from services.kernel import context

# RFC 6238 Appendix B: the seeds are ASCII digits, 20/32/64 bytes for SHA-1/256/512; 8 digits.
SEEDS = {"SHA1": b"12345678901234567890", "SHA256": b"12345678901234567890123456789012",
         "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234"}
RFC6238 = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]
# RFC 4226 Appendix D: HOTP of the same SHA-1 seed, counters 0..9.
RFC4226 = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]


@pytest.mark.parametrize(("when", "sha1", "sha256", "sha512"), RFC6238)
def test_totp_matches_rfc6238_vectors(when: int, sha1: str, sha256: str, sha512: str) -> None:
    assert totp.totp(SEEDS["SHA1"], when, digits=8) == sha1
    assert totp.totp(SEEDS["SHA256"], when, digits=8, algorithm="SHA256") == sha256
    assert totp.totp(SEEDS["SHA512"], when, digits=8, algorithm="SHA512") == sha512


def test_hotp_matches_rfc4226_vectors() -> None:
    assert [totp.hotp(SEEDS["SHA1"], c) for c in range(10)] == RFC4226


def test_codes_are_accepted_once_and_within_one_step() -> None:
    secret, now = totp.new_secret(), 1_700_000_015.0
    code = totp.totp(secret, now)
    step = totp.match(secret, code, after_step=0, now=now)
    assert step == totp.step_at(now)
    assert totp.match(secret, code, after_step=step, now=now) is None  # replay
    assert totp.match(secret, totp.totp(secret, now - 30), after_step=0, now=now) == step - 1  # clock drift
    assert totp.match(secret, totp.totp(secret, now + 30), after_step=step, now=now) == step + 1
    assert totp.match(secret, totp.totp(secret, now - 60), after_step=0, now=now) is None  # too old
    for bad in ("", "12345", "1234567", "abcdef"):
        assert totp.match(secret, bad, after_step=0, now=now) is None


def test_otpauth_uri_for_authenticator_apps() -> None:
    uri = totp.otpauth_uri(b"\x00" * 20, "ann@acme.io", "CRM")
    assert uri == ("otpauth://totp/CRM:ann@acme.io?secret=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&issuer=CRM"
                   "&algorithm=SHA1&digits=6&period=30")


def test_pkce_s256_matches_rfc7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert pkce.s256(verifier) == challenge
    assert pkce.verify(verifier, challenge) and pkce.valid_challenge(challenge)
    assert not pkce.verify(challenge, challenge)  # `plain`: the challenge as verifier fails
    assert not pkce.verify("short", pkce.s256("short"))  # under 43 characters
    assert not pkce.verify("a" * 129, pkce.s256("a" * 129))
    assert not pkce.valid_challenge(verifier + "x") and not pkce.valid_challenge("a=" * 21 + "a")


def test_opaque_tokens_name_tenant_and_record_and_store_only_a_hash() -> None:
    tenant, record = uuid.uuid4(), uuid.uuid4()
    token, stored = opaque.issue(tenant, record)
    assert opaque.parse(token) == (tenant, record, stored)
    assert opaque.parse(token[:-2]) is None and opaque.parse("not a token") is None
    assert opaque.parse(token.replace(token[-3], "A" if token[-3] != "A" else "B"))[2] != stored  # type: ignore[index]


def test_sealed_secrets_open_only_with_their_key_and_context(tmp_path: object) -> None:
    key = DataKey(b"k" * 32)
    sealed = key.seal(b"seed", "totp:t:u1")
    assert b"seed" not in sealed and key.open(sealed, "totp:t:u1") == b"seed"
    with pytest.raises(ValueError):
        key.open(sealed, "totp:t:u2")  # moved to another user
    with pytest.raises(ValueError):
        DataKey(b"x" * 32).open(sealed, "totp:t:u1")
    assert key.mac("abc", "u1") == key.mac("abc", "u1") != key.mac("abc", "u2")


def test_backup_codes_read_off_paper() -> None:
    code = new_backup_code()
    assert len(code) == 11 and code[5] == "-" and not set(code) & set("01lio")
    assert normalize_backup(f" {code.upper()} ") == code.replace("-", "")


def test_token_request_bodies() -> None:
    assert parse_body("application/x-www-form-urlencoded; charset=utf-8",
                      b"grant_type=authorization_code&redirect_uri=https%3A%2F%2Fa.example%2Fcb&scope=a+b") == {
        "grant_type": "authorization_code", "redirect_uri": "https://a.example/cb", "scope": "a b"}
    assert parse_body("application/json", b'{"grant_type": "refresh_token"}') == {"grant_type": "refresh_token"}
    for content_type, body in (("application/x-www-form-urlencoded", b"a=1&a=2"), ("application/json", b"[1]"),
                               ("application/json", b'{"a": 1}'), ("text/plain", b"a=1")):
        with pytest.raises(OAuthError) as err:
            parse_body(content_type, body)
        assert err.value.error == "invalid_request"


def test_basic_client_credentials_are_form_decoded() -> None:
    raw = base64.b64encode(b"my%20client:s%3Acret").decode()
    assert basic_credentials(f"Basic {raw}") == ("my client", "s:cret")
    assert basic_credentials("Bearer abc") is None
    with pytest.raises(OAuthError):
        basic_credentials("Basic !!!")


@pytest.mark.parametrize(("uri", "ok"), [
    ("https://app.example.com/cb", True), ("http://127.0.0.1:7777/cb", True), ("http://localhost/cb", True),
    ("com.example.app:/oauth2redirect", True), ("http://app.example.com/cb", False),
    ("https://app.example.com/cb#x", False), ("javascript:alert(1)", False), ("https:///nohost", False),
])
def test_redirect_uris_that_can_be_registered(uri: str, ok: bool) -> None:
    assert (_valid_redirect(uri) is None) is ok


def test_redirect_keeps_the_registered_query() -> None:
    assert _with_query("https://a.example/cb", code="c", state="s") == "https://a.example/cb?code=c&state=s"
    assert _with_query("https://a.example/cb?t=1", code="c", state="") == "https://a.example/cb?t=1&code=c"


def test_delegated_permissions_are_what_both_hold() -> None:
    assert narrow(["*"], ["contacts:read"]) == ["contacts:read"]
    assert narrow(["contacts:read", "deals:read"], ["contacts:*"]) == ["contacts:read"]
    assert narrow(["contacts:*"], ["contacts:read", "deals:read"]) == ["contacts:read"]
    assert narrow(["*"], ["platform:tenants"]) == []  # '*' never implies platform permissions


def test_backoff_grows_after_the_free_attempts() -> None:
    assert [ACCOUNT.block_for(n) for n in range(1, 10)] == [0, 0, 0, 0, 0, 1, 2, 4, 8]
    assert Rule(free=0, base=1, cap=5, window=60).block_for(10) == 5


def test_response_extras_are_checked() -> None:
    token = context.bind_extras()
    try:
        context.set_response_header("Cache-Control", "no-store")
        context.set_envelope_members(access_token="x")
        assert context.extras() == context.ResponseExtras({"cache-control": "no-store"}, {"access_token": "x"})
        with pytest.raises(ValueError):
            context.set_response_header("set-cookie", "a=b")
        with pytest.raises(ValueError):
            context.set_response_header("location", "x\r\nset-cookie: a")
        with pytest.raises(ValueError):
            context.set_envelope_members(data=1)
    finally:
        context.reset_extras(token)
