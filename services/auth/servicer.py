"""gRPC adapter of the auth service: decode, call the domain, encode.

Token-bearing answers carry `Cache-Control: no-store` (RFC 6749 §5.1); the OAuth endpoints
also answer RFC 6749's top-level members beside the envelope (see the Token rpc's comment).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import grpc
from crm.auth.v1 import auth_service_pb2 as pb
from crm.auth.v1 import auth_service_pb2_grpc as pb_grpc
from google.api import httpbody_pb2
from google.protobuf import empty_pb2, timestamp_pb2
from google.protobuf.message import Message
from sqlalchemy.engine import RowMapping

from services.auth.domain import AuthDomain, Tokens
from services.auth.mfa import MfaDomain
from services.auth.oauth import OAuthDomain, OAuthError, as_oauth, basic_credentials, parse_body
from services.auth.recovery import RecoveryDomain
from services.kernel import context
from services.kernel.errors import DomainError

Ctx = grpc.aio.ServicerContext[Any, Any]

TOKEN_FIELDS = ("grant_type", "code", "redirect_uri", "code_verifier", "client_id", "client_secret", "refresh_token",
                "scope")
REVOKE_FIELDS = ("token", "token_type_hint", "client_id", "client_secret")


def _ts(value: dt.datetime | float | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    out = timestamp_pb2.Timestamp()
    if isinstance(value, dt.datetime):
        out.FromDatetime(value)
    else:
        out.FromSeconds(int(value))
    return out


def _no_store() -> None:
    context.set_response_header("cache-control", "no-store")
    context.set_response_header("pragma", "no-cache")


def _md(ctx: Ctx, key: str) -> str:
    return str(next((v for k, v in ctx.invocation_metadata() or () if k == key), ""))


def user_to_proto(row: RowMapping) -> pb.User:
    user = pb.User(
        id=str(row["id"]), tenant_id=str(row["tenant_id"]), email=row["email"], first_name=row["first_name"],
        last_name=row["last_name"], roles=list(row["roles"]), active=row["active"],
        email_verified=row["email_verified"],
    )
    user.created_at.FromDatetime(row["created_at"])
    return user


def tokens_to_proto(tokens: Tokens) -> pb.TokenResponse:
    if tokens.mfa_token:
        return pb.TokenResponse(tenant_id=tokens.tenant_id, mfa_required=True, mfa_token=tokens.mfa_token)
    out = pb.TokenResponse(access_token=tokens.access_token, token_type="Bearer", expires_in=tokens.expires_in,
                           tenant_id=tokens.tenant_id)
    if tokens.refresh_token:
        out.refresh_token = tokens.refresh_token
    if tokens.scope:
        out.scope = tokens.scope
    return out


def session_to_proto(row: RowMapping, current_id: str) -> pb.Session:
    out = pb.Session(id=str(row["id"]), user_id=str(row["user_id"]), user_agent=row["user_agent"],
                     client_ip=row["client_ip"], current=str(row["id"]) == current_id,
                     client_id=str(row["client_id"] or ""), mfa=bool(row["mfa"]))
    for name in ("created_at", "last_used_at", "expires_at"):
        ts = _ts(row[name])
        if ts is not None:
            getattr(out, name).CopyFrom(ts)
    return out


def client_to_proto(row: RowMapping) -> pb.Client:
    out = pb.Client(id=str(row["id"]), name=row["name"], redirect_uris=list(row["redirect_uris"]),
                    grant_types=list(row["grant_types"]), permissions=list(row["permissions"]),
                    confidential=row["confidential"], created_by=str(row["created_by"] or ""))
    out.created_at.FromDatetime(row["created_at"])
    return out


def _params(request: Message, names: tuple[str, ...], ctx: Ctx) -> dict[str, str]:
    """The OAuth parameters of a request: the raw REST body's, then the typed fields', then
    HTTP Basic client credentials."""
    form: httpbody_pb2.HttpBody = getattr(request, "form")  # noqa: B009 - every such request has one
    params = parse_body(form.content_type, form.data) if form.data else {}
    for name in names:
        value = getattr(request, name)
        if value and name not in params:
            params[name] = value
    basic = basic_credentials(_md(ctx, "authorization"))
    if basic is not None:
        if params.get("client_secret") or params.get("client_id", basic[0]) != basic[0]:
            raise OAuthError("invalid_request", "use one client authentication method")
        params["client_id"], params["client_secret"] = basic
    return params


def _oauth_failure(err: DomainError) -> DomainError:
    """RFC 6749 §5.2 members beside the envelope, and the challenge of invalid_client."""
    err = as_oauth(err)
    if isinstance(err, OAuthError):
        context.set_envelope_members(error=err.error, error_description=err.message)
        if err.error == "invalid_client":
            context.set_response_header("www-authenticate", 'Basic realm="crm-api"')
    return err


class AuthServicer(pb_grpc.AuthServiceServicer):
    def __init__(self, domain: AuthDomain, oauth: OAuthDomain, mfa: MfaDomain, recovery: RecoveryDomain) -> None:
        self.domain = domain
        self.oauth = oauth
        self.mfa = mfa
        self.recovery = recovery
        self._jwks = json.dumps(domain.key.jwks()).encode()

    # --- sign-up, login, tokens ------------------------------------------------------------
    async def Register(self, request: pb.RegisterRequest, context_: Ctx) -> pb.RegisterResponse:
        tenant_id, user = await self.domain.register(
            email=request.email, password=request.password, first_name=request.first_name,
            last_name=request.last_name, tenant_name=request.tenant_name,
        )
        return pb.RegisterResponse(tenant_id=tenant_id, user=user_to_proto(user))

    async def Login(self, request: pb.LoginRequest, context_: Ctx) -> pb.TokenResponse:
        _no_store()
        tenant = request.tenant_id or _md(context_, "x-tenant-id")
        return tokens_to_proto(await self.domain.login(email=request.email, password=request.password, tenant_id=tenant))

    async def RefreshToken(self, request: pb.RefreshTokenRequest, context_: Ctx) -> pb.TokenResponse:
        _no_store()
        return tokens_to_proto(await self.domain.refresh(request.refresh_token))

    async def Logout(self, request: pb.LogoutRequest, context_: Ctx) -> empty_pb2.Empty:
        await self.domain.logout(request.refresh_token)
        return empty_pb2.Empty()

    async def GetUserInfo(self, request: pb.GetUserInfoRequest, context_: Ctx) -> pb.UserInfo:
        user, permissions, mfa = await self.domain.userinfo()
        ctx = context.current()
        return pb.UserInfo(
            sub=str(user["id"]), tenant_id=str(user["tenant_id"]), email=user["email"],
            name=f"{user['first_name']} {user['last_name']}".strip(), given_name=user["first_name"],
            family_name=user["last_name"], roles=list(user["roles"]),
            permissions=sorted(ctx.permissions) if ctx.client_id else permissions,
            session_id=ctx.session_id, email_verified=user["email_verified"], mfa_enabled=mfa,
            client_id=ctx.client_id,
        )

    async def GetJwks(self, request: pb.GetJwksRequest, context_: Ctx) -> httpbody_pb2.HttpBody:
        return httpbody_pb2.HttpBody(content_type="application/jwk-set+json", data=self._jwks)

    # --- OAuth 2.0 -------------------------------------------------------------------------
    async def Authorize(self, request: pb.AuthorizeRequest, context_: Ctx) -> pb.AuthorizeResponse:
        result = await self.oauth.authorize(
            response_type=request.response_type, client_id=request.client_id, redirect_uri=request.redirect_uri,
            scope=request.scope, state=request.state, code_challenge=request.code_challenge,
            code_challenge_method=request.code_challenge_method,
        )
        _no_store()
        context.set_response_header("location", result.redirect_uri)  # the 302 is the rpc's policy
        return pb.AuthorizeResponse(redirect_uri=result.redirect_uri, code=result.code, state=result.state,
                                    error=result.error, error_description=result.error_description)

    async def Token(self, request: pb.TokenRequest, context_: Ctx) -> pb.TokenResponse:
        _no_store()
        try:
            tokens = await self.oauth.token(_params(request, TOKEN_FIELDS, context_))
        except DomainError as err:
            raise _oauth_failure(err) from None
        members: dict[str, object] = {"access_token": tokens.access_token, "token_type": "Bearer",
                                      "expires_in": tokens.expires_in}
        if tokens.refresh_token:
            members["refresh_token"] = tokens.refresh_token
        if tokens.scope:
            members["scope"] = tokens.scope
        context.set_envelope_members(**members)
        return tokens_to_proto(tokens)

    async def RevokeToken(self, request: pb.RevokeTokenRequest, context_: Ctx) -> pb.RevokeTokenResponse:
        _no_store()
        try:
            await self.oauth.revoke(_params(request, REVOKE_FIELDS, context_))
        except DomainError as err:
            raise _oauth_failure(err) from None
        return pb.RevokeTokenResponse(revoked=True)

    # --- password, email -------------------------------------------------------------------
    async def RequestPasswordReset(self, request: pb.RequestPasswordResetRequest,
                                   context_: Ctx) -> pb.RequestPasswordResetResponse:
        await self.recovery.request_reset(request.email, request.tenant_id or _md(context_, "x-tenant-id"))
        return pb.RequestPasswordResetResponse(
            accepted=True, message="If the address has an account, a reset link is on its way.")

    async def ConfirmPasswordReset(self, request: pb.ConfirmPasswordResetRequest,
                                   context_: Ctx) -> pb.ConfirmPasswordResetResponse:
        email, tenant_id = await self.recovery.confirm_reset(request.token, request.password)
        return pb.ConfirmPasswordResetResponse(email=email, tenant_id=tenant_id)

    async def VerifyEmail(self, request: pb.VerifyEmailRequest, context_: Ctx) -> pb.VerifyEmailResponse:
        return pb.VerifyEmailResponse(email=await self.recovery.verify_email(request.token), email_verified=True)

    async def ResendVerificationEmail(self, request: pb.ResendVerificationEmailRequest,
                                      context_: Ctx) -> pb.ResendVerificationEmailResponse:
        return pb.ResendVerificationEmailResponse(sent=await self.recovery.resend_verification())

    # --- sessions --------------------------------------------------------------------------
    async def ListSessions(self, request: pb.ListSessionsRequest, context_: Ctx) -> pb.ListSessionsResponse:
        current = context.current().session_id
        return pb.ListSessionsResponse(sessions=[session_to_proto(r, current) for r in await self.domain.list_sessions()])

    async def DeleteSession(self, request: pb.DeleteSessionRequest, context_: Ctx) -> empty_pb2.Empty:
        await self.domain.delete_session(request.id)
        return empty_pb2.Empty()

    async def ValidateSession(self, request: pb.ValidateSessionRequest, context_: Ctx) -> pb.ValidateSessionResponse:
        found = await self.domain.validate(request.token)
        out = pb.ValidateSessionResponse(
            active=found["active"], token_type=found.get("token_type", ""), session_id=found.get("session_id", ""),
            user_id=found.get("user_id", ""), tenant_id=found.get("tenant_id", ""),
            client_id=found.get("client_id", ""), permissions=found.get("permissions", []),
            roles=found.get("roles", []),
        )
        for name in ("expires_at", "issued_at"):
            ts = _ts(found.get(name))
            if ts is not None:
                getattr(out, name).CopyFrom(ts)
        return out

    async def GetCurrentSession(self, request: pb.GetCurrentSessionRequest, context_: Ctx) -> pb.Session:
        return session_to_proto(await self.domain.current_session(), context.current().session_id)

    # --- MFA -------------------------------------------------------------------------------
    async def SetupMfa(self, request: pb.SetupMfaRequest, context_: Ctx) -> pb.SetupMfaResponse:
        _no_store()
        secret, uri = await self.mfa.setup()
        return pb.SetupMfaResponse(secret=secret, otpauth_uri=uri)

    async def VerifyMfa(self, request: pb.VerifyMfaRequest, context_: Ctx) -> pb.VerifyMfaResponse:
        _no_store()
        if request.mfa_token:
            tokens, remaining = await self.mfa.complete_login(request.mfa_token, request.code)
            out = pb.VerifyMfaResponse(mfa_enabled=True, access_token=tokens.access_token,
                                       refresh_token=tokens.refresh_token, token_type="Bearer",
                                       expires_in=tokens.expires_in, tenant_id=tokens.tenant_id)
            if remaining is not None:
                out.backup_codes_remaining = remaining
            return out
        return pb.VerifyMfaResponse(mfa_enabled=True, backup_codes=await self.mfa.enable(request.code))

    async def DisableMfa(self, request: pb.DisableMfaRequest, context_: Ctx) -> empty_pb2.Empty:
        await self.mfa.disable(request.code, request.password)
        return empty_pb2.Empty()

    async def GetBackupCodes(self, request: pb.GetBackupCodesRequest, context_: Ctx) -> pb.GetBackupCodesResponse:
        codes, mfa = await self.mfa.backup_codes()
        out = pb.GetBackupCodesResponse(
            remaining=sum(1 for c in codes if c["used_at"] is None), total=len(codes),
            codes=[pb.BackupCode(position=c["position"], used=c["used_at"] is not None, used_at=_ts(c["used_at"]))
                   for c in codes],
        )
        ts = _ts(mfa["backup_generated_at"]) if mfa is not None else None
        if ts is not None:
            out.generated_at.CopyFrom(ts)
        return out

    async def RegenerateBackupCodes(self, request: pb.RegenerateBackupCodesRequest,
                                    context_: Ctx) -> pb.RegenerateBackupCodesResponse:
        _no_store()
        return pb.RegenerateBackupCodesResponse(backup_codes=await self.mfa.regenerate(request.code, request.password))

    # --- OAuth clients ---------------------------------------------------------------------
    async def CreateClient(self, request: pb.CreateClientRequest, context_: Ctx) -> pb.CreateClientResponse:
        _no_store()
        row, secret = await self.oauth.create_client(
            name=request.name, redirect_uris=list(request.redirect_uris), grant_types=list(request.grant_types),
            permissions=list(request.permissions), confidential=request.confidential,
        )
        return pb.CreateClientResponse(client=client_to_proto(row), client_secret=secret)

    async def ListClients(self, request: pb.ListClientsRequest, context_: Ctx) -> pb.ListClientsResponse:
        return pb.ListClientsResponse(clients=[client_to_proto(r) for r in await self.oauth.list_clients()])

    async def GetClient(self, request: pb.GetClientRequest, context_: Ctx) -> pb.Client:
        return client_to_proto(await self.oauth.get_client(request.id))

    async def DeleteClient(self, request: pb.DeleteClientRequest, context_: Ctx) -> empty_pb2.Empty:
        await self.oauth.delete_client(request.id)
        return empty_pb2.Empty()
