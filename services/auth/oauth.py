"""OAuth 2.0: registered clients, the authorization code grant with PKCE, client credentials,
refresh at the token endpoint, and revocation (RFC 6749, 7636, 7009).

Decisions:
- Clients belong to a tenant and are registered by its admins (`auth:clients`). A client may be
  granted at most the permissions of who registered it. Secrets are 256-bit random values shown
  once and stored as SHA-256 (a slow hash buys nothing for secrets that cannot be guessed).
- The `client_id` is a UUID; `auth.oauth_client_index` maps it to its tenant for the token
  endpoint, which is called before any tenant is known.
- Redirect URIs are compared as exact strings with the registered ones, never prefixes.
- A client credentials token is the client's own: `sub` is the client id (RFC 9068 §2.2), `cid`
  too, `tier` is `api_integration`, and `sid` is a fresh id per token. So revoking that token
  (RFC 7009) ends that `sid` through the same revocation every service follows, and deleting
  the client revokes all its tokens as a user's are revoked (by `sub`). It carries no refresh
  token (RFC 6749 §4.4.3): the client simply asks again.
- Tokens of the authorization code grant are the user's, narrowed to the granted scope, with
  `cid` naming the client; their session is bound to the client, and only that client can
  refresh it. Refresh rotation and reuse detection are the core's (domain.AuthDomain.refresh).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hmac
import json
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

import grpc
from sqlalchemy import text
from sqlalchemy.engine import RowMapping

from services.auth import identity, opaque, pkce
from services.auth.audit import security_event
from services.auth.domain import AuthDomain, Tokens, acting_as, narrow, require_active_tenant
from services.kernel import context
from services.kernel.errors import (
    DomainError,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    validation,
)

CODE_TTL = 60
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
DEFAULT_GRANTS = ["authorization_code", "refresh_token"]
PERMISSION_RE = re.compile(r"^(\*|[a-z][a-z0-9_-]*:(\*|[a-z][a-z0-9_.-]*))$")
LOOPBACK = {"localhost", "127.0.0.1", "::1"}
MAX_REDIRECT_URIS = 10
MAX_BODY_PARAMS = 20


class OAuthError(DomainError):
    """An RFC 6749 §5.2 error: `error` travels as the ErrorInfo metadata and, for REST, at the
    top level of the answer. 400, except invalid_client (401)."""

    def __init__(self, error: str, description: str, *, field: str = "") -> None:
        super().__init__(description, reason=error.upper(), metadata={"error": error},
                         violations=[FieldViolation(field, description, error.upper())] if field else None)
        self.error = error
        self.code = grpc.StatusCode.UNAUTHENTICATED if error == "invalid_client" else grpc.StatusCode.INVALID_ARGUMENT


def as_oauth(err: DomainError) -> DomainError:
    """The token endpoint answers RFC errors only (throttling stays a 429)."""
    if isinstance(err, OAuthError | ResourceExhausted):
        return err
    if err.metadata.get("error") == "invalid_grant" or err.reason == "INVALID_GRANT":
        return OAuthError("invalid_grant", err.message)
    if isinstance(err, InvalidArgument):
        return OAuthError("invalid_request", err.message, field=err.violations[0].field if err.violations else "")
    if isinstance(err, NotFound | Unauthenticated | PermissionDenied):
        return OAuthError("invalid_grant", err.message)
    return err


def parse_body(content_type: str, data: bytes) -> dict[str, str]:
    """Parameters of a token or revocation request: form-encoded (RFC 6749 §3.2) or JSON."""
    if not data:
        return {}
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/json":
        try:
            loaded = json.loads(data)
        except ValueError:
            raise OAuthError("invalid_request", "the body is not valid JSON") from None
        if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
            raise OAuthError("invalid_request", "the JSON body must be an object of strings")
        return {str(k): v for k, v in loaded.items()}
    if kind in ("application/x-www-form-urlencoded", ""):
        try:
            pairs = parse_qsl(data.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                              max_num_fields=MAX_BODY_PARAMS)
        except (UnicodeDecodeError, ValueError):
            raise OAuthError("invalid_request", "the form body cannot be parsed") from None
        out: dict[str, str] = {}
        for key, value in pairs:
            if key in out:  # RFC 6749 §3.2: parameters must not repeat
                raise OAuthError("invalid_request", f"parameter {key} is repeated", field=key)
            out[key] = value
        return out
    raise OAuthError("invalid_request", f"unsupported content type {kind}; send application/x-www-form-urlencoded")


def basic_credentials(authorization: str) -> tuple[str, str] | None:
    """client_id and secret of `Authorization: Basic` (each form-encoded, RFC 6749 §2.3.1)."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise OAuthError("invalid_client", "malformed Basic credentials") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "malformed Basic credentials")
    return unquote_plus(client_id), unquote_plus(secret)


def _valid_redirect(uri: str) -> str | None:
    """Why a redirect URI cannot be registered, or None (RFC 6749 §3.1.2, RFC 8252 §7)."""
    if len(uri) > 2000 or any(c.isspace() for c in uri):
        return "must be at most 2000 characters without spaces"
    parts = urlsplit(uri)
    if parts.fragment or "#" in uri:
        return "must not have a fragment"
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname in LOOPBACK:
        return None
    if "." in parts.scheme and not parts.netloc and parts.path:  # private-use scheme of a native app
        return None
    return "must be https, http on a loopback address, or a reverse-domain scheme of a native app"


def _scope_list(scope: str) -> list[str]:
    return [s for s in scope.split(" ") if s]


@dataclass(frozen=True)
class AuthorizeResult:
    redirect_uri: str
    code: str = ""
    state: str = ""
    error: str = ""
    error_description: str = ""


class OAuthDomain:
    def __init__(self, core: AuthDomain) -> None:
        self.core = core
        self.db = core.db

    # --- clients ---------------------------------------------------------------------------
    async def create_client(self, *, name: str, redirect_uris: list[str], grant_types: list[str],
                            permissions: list[str], confidential: bool) -> tuple[RowMapping, str]:
        ctx = context.current()
        grants = list(dict.fromkeys(grant_types or DEFAULT_GRANTS))
        problems: list[FieldViolation] = []
        if not name.strip() or len(name) > 200:
            problems.append(FieldViolation("name", "must be 1 to 200 characters"))
        for i, grant in enumerate(grants):
            if grant not in GRANT_TYPES:
                problems.append(FieldViolation(f"grantTypes[{i}]", f"must be one of {', '.join(GRANT_TYPES)}"))
        if "client_credentials" in grants and not confidential:
            problems.append(FieldViolation("confidential", "client_credentials needs a confidential client"))
        if "authorization_code" in grants and not redirect_uris:
            problems.append(FieldViolation("redirectUris", "authorization_code needs at least one", "REQUIRED"))
        if len(redirect_uris) > MAX_REDIRECT_URIS:
            problems.append(FieldViolation("redirectUris", f"at most {MAX_REDIRECT_URIS}", "TOO_MANY"))
        for i, uri in enumerate(redirect_uris):
            why = _valid_redirect(uri)
            if why:
                problems.append(FieldViolation(f"redirectUris[{i}]", why, "INVALID_REDIRECT_URI"))
        if not permissions:
            problems.append(FieldViolation("permissions", "name at least one", "REQUIRED"))
        for i, perm in enumerate(permissions):
            if not PERMISSION_RE.match(perm):
                problems.append(FieldViolation(f"permissions[{i}]", "must be resource:action", "INVALID_PERMISSION"))
            elif not ctx.can(perm):
                problems.append(FieldViolation(f"permissions[{i}]", "you cannot grant what you do not hold",
                                               "PERMISSION_NOT_HELD"))
        if problems:
            raise validation(problems)
        client_id = uuid.uuid4()
        secret = secrets.token_urlsafe(32) if confidential else ""
        async with self.db.transaction() as conn:
            row = (await conn.execute(
                text("INSERT INTO auth.oauth_clients (id, tenant_id, name, redirect_uris, grant_types, permissions, "
                     "confidential, secret_hash, created_by) VALUES (:id, :t, :n, :r, :g, :p, :c, :h, :by) RETURNING *"),
                {"id": client_id, "t": uuid.UUID(ctx.tenant_id), "n": name.strip(), "r": list(redirect_uris),
                 "g": grants, "p": sorted(set(permissions)), "c": confidential,
                 "h": opaque.digest(secret.encode()) if confidential else None, "by": uuid.UUID(ctx.user_id)},
            )).mappings().one()
            await conn.execute(text("INSERT INTO auth.oauth_client_index (client_id, tenant_id) VALUES (:c, :t)"),
                               {"c": client_id, "t": uuid.UUID(ctx.tenant_id)})
            await security_event(conn, "crm.auth.client.created", str(client_id),
                                 {"clientId": str(client_id), "name": row["name"], "grantTypes": grants,
                                  "permissions": list(row["permissions"]), "confidential": confidential},
                                 tenant_id=ctx.tenant_id)
        return row, secret

    async def list_clients(self) -> list[RowMapping]:
        async with self.db.transaction() as conn:
            return list((await conn.execute(
                text("SELECT * FROM auth.oauth_clients ORDER BY created_at DESC, id"))).mappings().all())

    async def get_client(self, client_id: str) -> RowMapping:
        async with self.db.transaction() as conn:
            row = await self._client(conn, client_id)
        if row is None:
            raise NotFound("client not found")
        return row

    @staticmethod
    async def _client(conn: Any, client_id: str) -> RowMapping | None:
        try:
            key = uuid.UUID(client_id)
        except ValueError:
            return None
        return (await conn.execute(text("SELECT * FROM auth.oauth_clients WHERE id = :id"), {"id": key})
                ).mappings().first()

    async def delete_client(self, client_id: str) -> None:
        ctx = context.current()
        ended: list[str] = []
        async with self.db.transaction() as conn:
            row = await self._client(conn, client_id)
            if row is None:
                raise NotFound("client not found")
            sessions = (await conn.execute(
                text("SELECT s.id, s.user_id FROM auth.session_details d JOIN auth.sessions s ON s.id = d.session_id "
                     "WHERE d.client_id = :c AND s.revoked_at IS NULL"), {"c": row["id"]})).all()
            for sid, uid in sessions:
                await self.core.end_session(conn, str(sid), str(uid), "client_deleted")
                ended.append(str(sid))
            # Its client credentials tokens: `sub` is the client id.
            await identity.revoke_user_tokens(conn, self.core.settings, user_id=str(row["id"]),
                                              reason="client_deleted", end_sessions=False)
            await conn.execute(text("DELETE FROM auth.oauth_clients WHERE id = :id"), {"id": row["id"]})
            await security_event(conn, "crm.auth.client.deleted", str(row["id"]),
                                 {"clientId": str(row["id"]), "name": row["name"], "sessionsEnded": len(ended)},
                                 tenant_id=ctx.tenant_id)
        for sid in ended:
            self.core._revoked_here(session_id=sid)
        self.core._revoked_here(user_id=str(row["id"]))

    # --- authorization endpoint ------------------------------------------------------------
    async def authorize(self, *, response_type: str, client_id: str, redirect_uri: str, scope: str, state: str,
                        code_challenge: str, code_challenge_method: str) -> AuthorizeResult:
        self.core.require_first_party()
        ctx = context.current()
        async with self.db.transaction() as conn:
            client = await self._client(conn, client_id)
        # Until client and redirect URI are known good, errors go to the user, never to a URI.
        if client is None:
            raise InvalidArgument("unknown client", reason="INVALID_CLIENT",
                                  violations=[FieldViolation("clientId", "no such client in this tenant",
                                                             "INVALID_CLIENT")])
        registered = list(client["redirect_uris"])
        if redirect_uri:
            if redirect_uri not in registered:
                raise InvalidArgument("redirect_uri is not registered for this client", reason="INVALID_REDIRECT_URI",
                                      violations=[FieldViolation("redirectUri", "must be one of the client's "
                                                                 "registered redirect URIs, exactly",
                                                                 "INVALID_REDIRECT_URI")])
            target = redirect_uri
        elif len(registered) == 1:
            target = registered[0]
        else:
            raise InvalidArgument("redirect_uri is required", reason="INVALID_REDIRECT_URI",
                                  violations=[FieldViolation("redirectUri", "required: the client has several",
                                                             "REQUIRED")])

        def refuse(error: str, description: str) -> AuthorizeResult:
            return AuthorizeResult(_with_query(target, error=error, error_description=description, state=state),
                                   state=state, error=error, error_description=description)

        if "authorization_code" not in client["grant_types"]:
            return refuse("unauthorized_client", "the client may not use the authorization code grant")
        if response_type != "code":
            return refuse("unsupported_response_type", "response_type must be code")
        if code_challenge_method != pkce.METHOD:
            return refuse("invalid_request", "PKCE is required with code_challenge_method=S256 (plain is refused)")
        if not pkce.valid_challenge(code_challenge):
            return refuse("invalid_request", "code_challenge must be the 43-character BASE64URL SHA-256 of the verifier")
        allowed = context.RequestContext(permissions=frozenset(client["permissions"]))
        requested = _scope_list(scope) or list(client["permissions"])
        if not all(allowed.can(p) for p in requested):
            return refuse("invalid_scope", "the scope asks for more than the client may have")
        code_id = uuid.uuid4()
        code, code_hash = opaque.issue(uuid.UUID(ctx.tenant_id), code_id)
        async with self.db.transaction() as conn:
            await conn.execute(
                text("INSERT INTO auth.authorization_codes (id, tenant_id, client_id, user_id, code_hash, redirect_uri, "
                     "redirect_uri_given, code_challenge, scope, expires_at) VALUES (:id, :t, :c, :u, :h, :r, :rg, "
                     ":cc, :s, now() + make_interval(secs => :ttl))"),
                {"id": code_id, "t": uuid.UUID(ctx.tenant_id), "c": client["id"], "u": uuid.UUID(ctx.user_id),
                 "h": code_hash, "r": target, "rg": bool(redirect_uri), "cc": code_challenge, "s": requested,
                 "ttl": CODE_TTL},
            )
            await security_event(conn, "crm.auth.authorization.granted", str(client["id"]),
                                 {"clientId": str(client["id"]), "userId": ctx.user_id, "scope": requested},
                                 tenant_id=ctx.tenant_id)
        return AuthorizeResult(_with_query(target, code=code, state=state), code=code, state=state)

    # --- token endpoint --------------------------------------------------------------------
    async def authenticate_client(self, client_id: str, secret: str) -> RowMapping | None:
        """The calling client (None when none is named); invalid_client when it does not check out."""
        if not client_id:
            if secret:
                raise OAuthError("invalid_client", "client_secret without client_id")
            return None
        try:
            key = uuid.UUID(client_id)
        except ValueError:
            raise OAuthError("invalid_client", "unknown client or wrong secret") from None
        async with self.db.transaction(tenant_id="") as conn:
            tenant = (await conn.execute(text("SELECT tenant_id FROM auth.oauth_client_index WHERE client_id = :c"),
                                         {"c": key})).scalar_one_or_none()
        client = None
        if tenant is not None:
            async with self.db.transaction(tenant_id=str(tenant)) as conn:
                client = await self._client(conn, client_id)
        expected = bytes(client["secret_hash"]) if client is not None and client["confidential"] else None
        presented = opaque.digest(secret.encode())
        if client is None or (expected is None and secret) or (
                expected is not None and not hmac.compare_digest(expected, presented)):
            raise OAuthError("invalid_client", "unknown client or wrong secret")
        return client

    async def token(self, params: dict[str, str]) -> Tokens:
        """Run one grant. `params` holds the request's parameters, client credentials included."""
        grant = params.get("grant_type", "")
        if not grant:
            raise OAuthError("invalid_request", "grant_type is required", field="grant_type")
        if grant not in GRANT_TYPES:
            raise OAuthError("unsupported_grant_type", f"grant_type {grant} is not supported", field="grant_type")
        client = await self.authenticate_client(params.get("client_id", ""), params.get("client_secret", ""))
        if client is not None and grant not in client["grant_types"]:
            raise OAuthError("unauthorized_client", f"the client may not use {grant}")
        if grant == "authorization_code":
            if client is None:
                raise OAuthError("invalid_client", "client authentication or client_id is required")
            return await self._exchange_code(client, params)
        if grant == "client_credentials":
            if client is None or not client["confidential"]:
                raise OAuthError("invalid_client", "client_credentials needs a confidential client's credentials")
            return await self._client_credentials(client, params.get("scope", ""))
        refresh = params.get("refresh_token", "")
        if not refresh:
            raise OAuthError("invalid_request", "refresh_token is required", field="refresh_token")
        try:
            return await self.core.refresh(refresh, client_id=str(client["id"]) if client is not None else "")
        except DomainError as err:
            raise as_oauth(err) from None

    async def _exchange_code(self, client: RowMapping, params: dict[str, str]) -> Tokens:
        parsed = opaque.parse(params.get("code", ""))
        if parsed is None:
            raise OAuthError("invalid_grant", "invalid authorization code")
        tenant_id, code_id, presented = parsed
        verifier = params.get("code_verifier", "")
        replayed: RowMapping | None = None
        with acting_as(str(tenant_id)):
            async with self.db.transaction() as conn:
                row = (await conn.execute(text("SELECT * FROM auth.authorization_codes WHERE id = :id FOR UPDATE"),
                                          {"id": code_id})).mappings().first()
                if row is None or not hmac.compare_digest(bytes(row["code_hash"]), presented):
                    raise OAuthError("invalid_grant", "invalid authorization code")
                if row["client_id"] != client["id"]:
                    raise OAuthError("invalid_grant", "the code was issued to another client")
                if row["used_at"] is not None:
                    # RFC 6749 §4.1.2: a code used twice is stolen; what it granted is revoked.
                    replayed = row
                    if row["session_id"] is not None:
                        await self.core.end_session(conn, str(row["session_id"]), str(row["user_id"]),
                                                    "authorization_code_replay")
                    await security_event(conn, "crm.auth.code.replayed", str(row["id"]),
                                         {"clientId": str(client["id"]), "userId": str(row["user_id"]),
                                          "sessionId": str(row["session_id"] or "")},
                                         tenant_id=str(tenant_id), actor_id=str(row["user_id"]))
                else:
                    if row["expires_at"] <= dt.datetime.now(dt.UTC):
                        raise OAuthError("invalid_grant", "the authorization code has expired")
                    given = params.get("redirect_uri", "")
                    if (row["redirect_uri_given"] or given) and given != row["redirect_uri"]:
                        raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request")
                    if not verifier:
                        raise OAuthError("invalid_request", "code_verifier is required", field="code_verifier")
                    if not pkce.verify(verifier, row["code_challenge"]):
                        raise OAuthError("invalid_grant", "code_verifier does not match the code challenge")
                    user = (await conn.execute(text("SELECT * FROM auth.users WHERE id = :id"),
                                               {"id": row["user_id"]})).mappings().first()
                    if user is None or not user["active"]:
                        raise OAuthError("invalid_grant", "the user can no longer sign in")
                    with acting_as(str(tenant_id), str(user["id"])):
                        tokens = await self.core.open_session(user, method="authorization_code",
                                                              client_id=str(client["id"]), scope=list(row["scope"]),
                                                              conn=conn)
                    await conn.execute(text("UPDATE auth.authorization_codes SET used_at = now(), session_id = :s "
                                            "WHERE id = :id"), {"s": uuid.UUID(tokens.session_id), "id": code_id})
                    if "refresh_token" not in client["grant_types"]:
                        tokens = dataclasses.replace(tokens, refresh_token="")
                    return tokens
        if replayed is not None and replayed["session_id"] is not None:
            self.core._revoked_here(session_id=str(replayed["session_id"]))
        raise OAuthError("invalid_grant", "the authorization code was already used")

    async def _client_credentials(self, client: RowMapping, scope: str) -> Tokens:
        allowed = list(client["permissions"])
        requested = _scope_list(scope)
        holder = context.RequestContext(permissions=frozenset(allowed))
        if requested and not all(holder.can(p) for p in requested):
            raise OAuthError("invalid_scope", "the scope asks for more than the client may have", field="scope")
        perms = narrow(allowed, requested) if requested else sorted(allowed)
        tenant_id = str(client["tenant_id"])
        session_id = str(uuid.uuid4())
        with acting_as(tenant_id, str(client["id"])):
            async with self.db.transaction() as conn:
                try:
                    await require_active_tenant(conn, tenant_id)
                except PermissionDenied as err:
                    raise OAuthError("invalid_client", err.message) from None
                await security_event(conn, "crm.auth.client.token_issued", str(client["id"]),
                                     {"clientId": str(client["id"]), "sessionId": session_id, "scope": perms},
                                     tenant_id=tenant_id, actor_id=str(client["id"]))
        access = self.core.sign(sub=str(client["id"]), tenant_id=tenant_id, session_id=session_id, perms=perms,
                                tier=identity.tier_for("", client=True), cid=str(client["id"]), roles=[])
        return Tokens(access, "", self.core.settings.access_token_ttl_seconds, tenant_id, scope=" ".join(perms),
                      session_id=session_id)

    # --- revocation ------------------------------------------------------------------------
    async def revoke(self, params: dict[str, str]) -> None:
        """RFC 7009: end the token's session; unknown and dead tokens are no error."""
        client = await self.authenticate_client(params.get("client_id", ""), params.get("client_secret", ""))
        token = params.get("token", "").strip()
        if not token:
            raise OAuthError("invalid_request", "token is required", field="token")
        if token.count(".") == 2:
            try:
                claims = self.core.verifier.claims(token)
            except DomainError:
                return  # expired, revoked already, or not ours: nothing left to do
            if client is not None and claims.get("cid") and claims["cid"] != str(client["id"]):
                return  # another client's token: not this client's to revoke
            with acting_as(claims["tid"], claims["sub"]):
                async with self.db.transaction() as conn:
                    await self.core.end_session(conn, claims["sid"], claims["sub"], "token_revoked")
            self.core._revoked_here(session_id=claims["sid"])
            return
        parsed = opaque.parse(token)
        if parsed is None:
            return
        tenant_id, session_id, presented = parsed
        with acting_as(str(tenant_id)):
            async with self.db.transaction() as conn:
                row = (await conn.execute(
                    text("SELECT s.*, d.client_id FROM auth.sessions s LEFT JOIN auth.session_details d "
                         "ON d.session_id = s.id WHERE s.id = :id FOR UPDATE OF s"), {"id": session_id})
                       ).mappings().first()
                if row is None or row["revoked_at"] is not None or not hmac.compare_digest(
                        bytes(row["refresh_hash"]), presented):
                    return
                if client is not None and row["client_id"] is not None and row["client_id"] != client["id"]:
                    return
                with acting_as(str(tenant_id), str(row["user_id"])):
                    await self.core.end_session(conn, str(session_id), str(row["user_id"]), "token_revoked")
        self.core._revoked_here(session_id=str(session_id))


def _with_query(uri: str, **params: str) -> str:
    """The redirect URI with parameters added to its query (RFC 6749 §3.1.2: keep its own)."""
    extra = urlencode({k: v for k, v in params.items() if v})
    return uri + ("&" if urlsplit(uri).query else ("" if uri.endswith("?") else "?")) + extra

