"""Mailed tokens through Envoy and a real SMTP server: password reset, email verification,
and invitations sent by the durable consumer of `crm.auth.user.invited`."""

from __future__ import annotations

import statistics
import time
import uuid

import httpx

from services.devstack import DevStack
from services.mailsink import MailSink
from tests.integration.auth_helpers import (
    PASSWORD,
    account,
    body_of,
    events,
    h,
    publish,
    sql,
    token_from,
)
from tests.polling import until

NEW_PASSWORD = "a-brand-new-secret-42"


def reset(api: httpx.Client, email: str) -> httpx.Response:
    return api.post("/v1/auth/password/reset", json={"email": email})


def test_reset_request_answers_alike_for_unknown_addresses(api: httpx.Client, mailbox: MailSink) -> None:
    acct = account(api)
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    known_r, unknown_r = reset(api, acct["email"]), reset(api, unknown)
    assert known_r.status_code == unknown_r.status_code == 202
    assert known_r.json()["data"] == unknown_r.json()["data"] == {
        "accepted": True, "message": "If the address has an account, a reset link is on its way."}
    # About the same time: the account is looked up off the request path.
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    for _ in range(5):
        for kind, address in (("known", f"x{uuid.uuid4().hex[:6]}{acct['email']}"), ("unknown", unknown)):
            start = time.perf_counter()
            reset(api, acct["email"] if kind == "known" else address)
            times[kind].append(time.perf_counter() - start)
    assert abs(statistics.median(times["known"]) - statistics.median(times["unknown"])) < 0.1
    mailbox.wait_for(acct["email"], subject="reset your password")
    time.sleep(0.5)
    assert mailbox.to(unknown) == []
    r = reset(api, "not-an-address")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "email"


def test_reset_confirm_sets_the_password_and_ends_every_session(
        api: httpx.Client, mailbox: MailSink, stack: DevStack) -> None:
    acct = account(api)
    assert reset(api, acct["email"]).status_code == 202
    mail = mailbox.wait_for(acct["email"], subject="reset your password")
    token = token_from(mail)
    assert f"/reset-password?token={token}" in body_of(mail)
    r = api.post("/v1/auth/password/confirm", json={"token": token, "password": "short"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "password"
    r = api.post("/v1/auth/password/confirm", json={"token": token, "password": NEW_PASSWORD})
    assert r.status_code == 200 and r.json()["data"] == {"email": acct["email"], "tenantId": acct["tenant"]}
    # Every earlier token of the user stops working.
    assert until(lambda: api.get("/v1/auth/userinfo", headers=h(acct)).status_code == 401)
    assert api.post("/v1/auth/token/refresh", json={"refreshToken": acct["refresh"]}).status_code == 401
    assert api.post("/v1/auth/login", json={"email": acct["email"], "password": PASSWORD}).status_code == 401
    fresh = api.post("/v1/auth/login", json={"email": acct["email"], "password": NEW_PASSWORD})
    assert fresh.status_code == 200
    assert api.get("/v1/auth/userinfo", headers={"authorization": "Bearer " + fresh.json()["data"]["accessToken"]}
                   ).json()["data"]["emailVerified"] is True
    # Single use.
    r = api.post("/v1/auth/password/confirm", json={"token": token, "password": "yet-another-secret-7"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "token"
    assert api.post("/v1/auth/password/confirm", json={"token": "junk", "password": NEW_PASSWORD}).status_code == 400
    kinds = {e["type"] for e in events(stack, "crm.auth.password.*", lambda e: e["data"].get("userId") == acct["userId"],
                                       count=2)}
    assert kinds == {"crm.auth.password.reset_requested", "crm.auth.password.reset_completed"}
    stored = sql(stack, "SELECT token_hash FROM auth.user_tokens WHERE user_id = $1 AND purpose = 'password_reset'",
                 uuid.UUID(acct["userId"]))
    assert stored and all(token.encode() not in bytes(r[0]) for r in stored)


def test_reset_token_expires(api: httpx.Client, mailbox: MailSink, stack: DevStack) -> None:
    acct = account(api)
    reset(api, acct["email"])
    token = token_from(mailbox.wait_for(acct["email"], subject="reset your password"))
    sql(stack, "UPDATE auth.user_tokens SET expires_at = now() - interval '1 second' WHERE user_id = $1",
        uuid.UUID(acct["userId"]))
    r = api.post("/v1/auth/password/confirm", json={"token": token, "password": NEW_PASSWORD})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "INVALID_TOKEN"
    assert api.get("/v1/auth/userinfo", headers=h(acct)).status_code == 200


def test_email_verification(api: httpx.Client, mailbox: MailSink, stack: DevStack) -> None:
    acct = account(api)
    first = token_from(mailbox.wait_for(acct["email"], subject="confirm your email"))
    # Asking again replaces the first link.
    r = api.post("/v1/auth/email/verify/resend", headers=h(acct), json={})
    assert r.status_code == 202 and r.json()["data"]["sent"] is True
    second = token_from(mailbox.wait_for(acct["email"], subject="confirm your email", count=2))
    assert api.post("/v1/auth/email/verify", json={"token": first}).status_code == 400
    r = api.post("/v1/auth/email/verify", json={"token": second})
    assert r.status_code == 200 and r.json()["data"] == {"email": acct["email"], "emailVerified": True}
    assert api.get("/v1/auth/userinfo", headers=h(acct)).json()["data"]["emailVerified"] is True
    assert api.post("/v1/auth/email/verify", json={"token": second}).status_code == 400
    assert api.post("/v1/auth/email/verify/resend", headers=h(acct), json={}).json()["data"]["sent"] is False
    r = api.post("/v1/auth/email/verify", json={})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "token"
    assert events(stack, "crm.auth.email.verified", lambda e: e["data"]["userId"] == acct["userId"])


def _invited_user(stack: DevStack, tenant: str, *, password_hash: str | None = None) -> tuple[str, str]:
    user_id, email = uuid.uuid4(), f"invitee-{uuid.uuid4().hex[:8]}@example.com"
    sql(stack, "INSERT INTO auth.users (id, tenant_id, email, password_hash, first_name, roles) "
               "VALUES ($1, $2, $3, $4, 'Ivy', ARRAY['sales_rep'])", user_id, uuid.UUID(tenant), email, password_hash)
    sql(stack, "INSERT INTO auth.login_index (email, tenant_id, user_id) VALUES ($1, $2, $3)",
        email, uuid.UUID(tenant), user_id)
    return str(user_id), email


def _invitation(tenant: str, user_id: str, email: str) -> dict[str, object]:
    return {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "crm/users", "type": "crm.auth.user.invited",
            "subject": user_id, "tenantid": tenant, "actorid": "", "data": {"userId": user_id, "tenantId": tenant,
                                                                            "email": email}}


def test_invited_user_gets_a_set_password_link_once(api: httpx.Client, mailbox: MailSink, stack: DevStack) -> None:
    admin = account(api)
    user_id, email = _invited_user(stack, admin["tenant"])
    event = _invitation(admin["tenant"], user_id, email)
    publish(stack, "crm.auth.user.invited", event)
    mail = mailbox.wait_for(email, subject="you are invited")
    assert "/set-password?token=" in body_of(mail)
    # The same event delivered again (another relay attempt): no second mail.
    publish(stack, "crm.auth.user.invited", event)
    time.sleep(1.5)
    assert len(mailbox.to(email)) == 1
    assert api.post("/v1/auth/login", json={"email": email, "password": NEW_PASSWORD}).status_code == 401
    r = api.post("/v1/auth/password/confirm", json={"token": token_from(mail), "password": NEW_PASSWORD})
    assert r.status_code == 200 and r.json()["data"]["email"] == email
    r = api.post("/v1/auth/login", json={"email": email, "password": NEW_PASSWORD})
    assert r.status_code == 200
    info = api.get("/v1/auth/userinfo", headers={"authorization": "Bearer " + r.json()["data"]["accessToken"]})
    assert info.json()["data"]["roles"] == ["sales_rep"] and info.json()["data"]["emailVerified"] is True
    assert events(stack, "crm.auth.user.invitation_sent", lambda e: e["data"]["userId"] == user_id)


def test_invitation_of_a_user_with_a_password_sends_nothing(api: httpx.Client, mailbox: MailSink,
                                                            stack: DevStack) -> None:
    admin = account(api)
    user_id, email = _invited_user(stack, admin["tenant"], password_hash="$argon2id$v=19$m=19456,t=2,p=1$x$y")
    publish(stack, "crm.auth.user.invited", _invitation(admin["tenant"], user_id, email))
    # Another invitation after it is handled, so the first one has been seen by then.
    other_id, other = _invited_user(stack, admin["tenant"])
    publish(stack, "crm.auth.user.invited", _invitation(admin["tenant"], other_id, other))
    mailbox.wait_for(other, subject="you are invited")
    assert mailbox.to(email) == []
