"""TOTP multi-factor authentication through Envoy: enrolment, login with a second factor,
replay and guessing defences, backup codes, disabling."""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

import httpx

from services.devstack import DevStack
from tests.integration.auth_helpers import account, bearer, events, h, sql, totp_now


def enrol(api: httpx.Client, acct: dict[str, str]) -> tuple[str, list[str]]:
    r = api.post("/v1/auth/mfa/setup", headers=h(acct), json={})
    assert r.status_code == 200, r.text
    secret = r.json()["data"]["secret"]
    r = api.post("/v1/auth/mfa/verify", headers=h(acct), json={"code": totp_now(secret)})
    assert r.status_code == 200, r.text
    return secret, r.json()["data"]["backupCodes"]


def mfa_login(api: httpx.Client, acct: dict[str, str]) -> str:
    r = api.post("/v1/auth/login", json={"email": acct["email"], "password": acct["password"]})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["mfaRequired"] is True and data["mfaToken"]
    assert data["accessToken"] == data["refreshToken"] == "" and data["expiresIn"] == 0  # no tokens yet
    return str(data["mfaToken"])


def second_factor(api: httpx.Client, mfa_token: str, code: str) -> httpx.Response:
    return api.post("/v1/auth/mfa/verify", json={"mfaToken": mfa_token, "code": code})


def test_enrolment_then_login_needs_the_second_factor(api: httpx.Client, stack: DevStack) -> None:
    acct = account(api)
    r = api.post("/v1/auth/mfa/setup", headers=h(acct), json={})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    setup = r.json()["data"]
    secret = setup["secret"]
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    assert setup["otpauthUri"].startswith("otpauth://totp/CRM:") and f"secret={secret}" in setup["otpauthUri"]
    # Not on until a code confirms the app has the secret.
    assert api.get("/v1/auth/userinfo", headers=h(acct)).json()["data"]["mfaEnabled"] is False
    r = api.post("/v1/auth/mfa/verify", headers=h(acct), json={"code": "000000" if totp_now(secret) != "000000" else "111111"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "code"
    r = api.post("/v1/auth/mfa/verify", headers=h(acct), json={"code": totp_now(secret)})
    assert r.status_code == 200
    codes = r.json()["data"]["backupCodes"]
    assert r.json()["data"]["mfaEnabled"] is True and len(set(codes)) == 10
    assert all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", c) for c in codes)
    assert api.get("/v1/auth/userinfo", headers=h(acct)).json()["data"]["mfaEnabled"] is True
    assert api.post("/v1/auth/mfa/setup", headers=h(acct), json={}).status_code == 409
    # The secret is sealed at rest.
    raw = base64.b32decode(secret + "=" * (-len(secret) % 8))
    sealed = bytes(sql(stack, "SELECT secret_enc FROM auth.mfa WHERE user_id = $1", uuid.UUID(acct["userId"]))[0][0])
    assert raw not in sealed and len(sealed) > len(raw)
    # Login: the password alone gives an MFA token, the code completes it.
    mfa_token = mfa_login(api, acct)
    code = totp_now(secret, offset_steps=1)  # the enrolment spent this step's code
    r = second_factor(api, mfa_token, code)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["accessToken"] and data["refreshToken"] and data["tokenType"] == "Bearer" and data["expiresIn"] == 900
    assert r.headers["cache-control"] == "no-store"
    session = api.get("/v1/auth/sessions/current", headers=bearer(data["accessToken"])).json()["data"]
    assert session["mfa"] is True
    # The same code does not work twice, and an MFA token is single-use.
    r = second_factor(api, mfa_login(api, acct), code)
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == "INVALID_MFA_CODE"
    r = second_factor(api, mfa_token, totp_now(secret))
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == "INVALID_MFA_TOKEN"
    assert second_factor(api, "garbage", code).status_code == 401
    assert events(stack, "crm.auth.mfa.enabled", lambda e: e["data"]["userId"] == acct["userId"])
    failed = events(stack, "crm.auth.mfa.failed", lambda e: e["data"]["userId"] == acct["userId"])
    assert failed[0]["data"]["clientIp"] and failed[0]["tenantid"] == acct["tenant"]


def test_verify_without_token_or_mfa_token_is_401(api: httpx.Client) -> None:
    assert api.post("/v1/auth/mfa/verify", json={"code": "123456"}).status_code == 401
    acct = account(api)
    r = api.post("/v1/auth/mfa/verify", headers=h(acct), json={"code": "123456"})
    assert r.status_code == 409 and r.json()["errors"][0]["code"] == "MFA_NOT_SET_UP"
    assert api.post("/v1/auth/mfa/verify", headers=h(acct), json={}).status_code == 422


def test_backup_codes_are_single_use_listed_and_regenerated(api: httpx.Client, stack: DevStack) -> None:
    acct = account(api)
    _, codes = enrol(api, acct)
    listed = api.get("/v1/auth/mfa/backup-codes", headers=h(acct)).json()["data"]
    assert listed["remaining"] == 10 and listed["total"] == 10 and listed["generatedAt"]
    assert [c["position"] for c in listed["codes"]] == list(range(1, 11))
    assert not any(c["used"] for c in listed["codes"]) and codes[0] not in str(listed)
    r = second_factor(api, mfa_login(api, acct), codes[0].upper())  # typed as shown, any case
    assert r.status_code == 200 and r.json()["data"]["backupCodesRemaining"] == 9
    r = second_factor(api, mfa_login(api, acct), codes[0])
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == "INVALID_MFA_CODE"
    listed = api.get("/v1/auth/mfa/backup-codes", headers=h(acct)).json()["data"]
    assert listed["remaining"] == 9 and listed["codes"][0]["used"] is True and listed["codes"][0]["usedAt"]
    assert events(stack, "crm.auth.mfa.backup_code_used", lambda e: e["data"]["userId"] == acct["userId"])
    # Regenerating needs re-authentication, and the old codes stop working.
    r = api.post("/v1/auth/mfa/backup-codes/regenerate", headers=h(acct), json={"password": "wrong-password-1"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "password"
    r = api.post("/v1/auth/mfa/backup-codes/regenerate", headers=h(acct), json={"password": acct["password"]})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    fresh = r.json()["data"]["backupCodes"]
    assert len(fresh) == 10 and not set(fresh) & set(codes)
    assert second_factor(api, mfa_login(api, acct), codes[1]).status_code == 401
    assert second_factor(api, mfa_login(api, acct), fresh[1]).status_code == 200


def test_wrong_codes_are_throttled(api: httpx.Client) -> None:
    acct = account(api)
    secret, _ = enrol(api, acct)
    mfa_token = mfa_login(api, acct)
    right = totp_now(secret, offset_steps=1)
    wrong = [f"{(int(right) + n) % 1_000_000:06d}" for n in range(1, 8)]
    wrong = [w for w in wrong if w not in {totp_now(secret, offset_steps=s) for s in (-1, 0, 1, 2)}]
    for code in wrong[:6]:
        assert second_factor(api, mfa_token, code).status_code == 401
    r = second_factor(api, mfa_token, right)
    assert r.status_code == 429, r.text
    assert int(r.headers["retry-after"]) >= 1 and r.json()["errors"][0]["code"] == "TOO_MANY_ATTEMPTS"
    assert r.json()["success"] is False


def test_disable_needs_a_code_or_the_password(api: httpx.Client, stack: DevStack) -> None:
    acct = account(api)
    enrol(api, acct)
    r = api.post("/v1/auth/mfa/disable", headers=h(acct), json={})
    assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"code", "password"}
    r = api.post("/v1/auth/mfa/disable", headers=h(acct), json={"password": "not-the-password"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "password"
    r = api.post("/v1/auth/mfa/disable", headers=h(acct), json={"code": "12345"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "code"
    assert api.post("/v1/auth/mfa/disable", headers=h(acct), json={"password": acct["password"]}).status_code == 200
    assert api.get("/v1/auth/userinfo", headers=h(acct)).json()["data"]["mfaEnabled"] is False
    r = api.post("/v1/auth/login", json={"email": acct["email"], "password": acct["password"]})
    assert r.json()["data"]["accessToken"] and r.json()["data"]["mfaRequired"] is False
    assert api.get("/v1/auth/mfa/backup-codes", headers=h(acct)).status_code == 409
    # On again, then off with a current code.
    secret, _ = enrol(api, acct)
    r = api.post("/v1/auth/mfa/disable", headers=h(acct), json={"code": totp_now(secret, offset_steps=1)})
    assert r.status_code == 200
    found: list[dict[str, Any]] = events(stack, "crm.auth.mfa.disabled", lambda e: e["data"]["userId"] == acct["userId"],
                                         count=2)
    assert len(found) == 2 and found[0]["actorid"] == acct["userId"]
