"""Permission checks and revocations as every service applies them."""

from __future__ import annotations

import time

from services.kernel.authn import RevokedSessions, permissions_of
from services.kernel.context import RequestContext


def ctx(*perms: str) -> RequestContext:
    return RequestContext(tenant_id="t", user_id="u", permissions=frozenset(perms))


def test_wildcards_grant_within_a_resource_and_star_grants_every_tenant_permission() -> None:
    assert ctx("contacts:*").can("contacts:write") and not ctx("contacts:*").can("deals:read")
    assert ctx("*").can("deals:delete")
    assert ctx("contacts:read").can("contacts:read") and not ctx("contacts:read").can("contacts:write")


def test_star_never_implies_operating_the_platform() -> None:
    assert not ctx("*").can("platform:tenants")
    assert ctx("platform:*").can("platform:tenants") and not ctx("platform:*").can("contacts:read")
    assert permissions_of(["admin"]) == frozenset({"*"})
    assert not RequestContext(tenant_id="t", user_id="u", permissions=permissions_of(["admin"])).can("platform:x")


def test_read_only_role_cannot_write() -> None:
    ro = RequestContext(tenant_id="t", user_id="u", permissions=permissions_of(["read_only"]))
    assert ro.can("contacts:read") and not ro.can("contacts:write")


def test_user_revocation_covers_tokens_issued_before_it_only() -> None:
    revoked = RevokedSessions()
    now = time.time()
    revoked.add_user("u1", before=now, until=now + 60)
    assert revoked.user_token_revoked("u1", now - 1)
    assert not revoked.user_token_revoked("u1", now + 1)
    assert not revoked.user_token_revoked("u2", now - 1)
    # A later revocation moves the line forward; an older one arriving late does not move it back.
    revoked.add_user("u1", before=now + 10, until=now + 60)
    revoked.add_user("u1", before=now - 100, until=now + 60)
    assert revoked.user_token_revoked("u1", now + 5)


def test_revocations_are_forgotten_once_the_tokens_they_cover_have_expired() -> None:
    revoked = RevokedSessions()
    now = time.time()
    revoked.add_user("u1", before=now, until=now - 1)
    revoked.add("s1", until=now - 1)
    assert not revoked.user_token_revoked("u1", now - 10)
    assert "s1" not in revoked
