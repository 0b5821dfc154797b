"""gRPC adapter of the auth service: decode, call the domain, encode."""

from __future__ import annotations

import json
import time
from typing import Any

import grpc
from crm.auth.v1 import auth_service_pb2 as pb
from crm.auth.v1 import auth_service_pb2_grpc as pb_grpc
from google.api import httpbody_pb2
from google.protobuf import empty_pb2
from sqlalchemy.engine import RowMapping

from services.auth.domain import AuthDomain, Tokens
from services.kernel import context
from services.kernel.authn import RevokedSessions

Ctx = grpc.aio.ServicerContext[Any, Any]


def user_to_proto(row: RowMapping) -> pb.User:
    user = pb.User(
        id=str(row["id"]), tenant_id=str(row["tenant_id"]), email=row["email"], first_name=row["first_name"],
        last_name=row["last_name"], roles=list(row["roles"]), active=row["active"],
    )
    user.created_at.FromDatetime(row["created_at"])
    return user


def tokens_to_proto(tokens: Tokens) -> pb.TokenResponse:
    return pb.TokenResponse(
        access_token=tokens.access_token, refresh_token=tokens.refresh_token, token_type="Bearer",
        expires_in=tokens.expires_in, tenant_id=tokens.tenant_id,
    )


class AuthServicer(pb_grpc.AuthServiceServicer):
    def __init__(self, domain: AuthDomain, revoked: RevokedSessions) -> None:
        self.domain = domain
        self.revoked = revoked
        self._jwks = json.dumps(domain.key.jwks()).encode()

    async def Register(self, request: pb.RegisterRequest, context_: Ctx) -> pb.RegisterResponse:
        tenant_id, user = await self.domain.register(
            email=request.email, password=request.password, first_name=request.first_name,
            last_name=request.last_name, tenant_name=request.tenant_name,
        )
        return pb.RegisterResponse(tenant_id=tenant_id, user=user_to_proto(user))

    async def Login(self, request: pb.LoginRequest, context_: Ctx) -> pb.TokenResponse:
        md = dict(context_.invocation_metadata() or ())
        tenant = request.tenant_id or str(md.get("x-tenant-id", ""))
        return tokens_to_proto(await self.domain.login(email=request.email, password=request.password, tenant_id=tenant))

    async def RefreshToken(self, request: pb.RefreshTokenRequest, context_: Ctx) -> pb.TokenResponse:
        return tokens_to_proto(await self.domain.refresh(request.refresh_token))

    async def Logout(self, request: pb.LogoutRequest, context_: Ctx) -> empty_pb2.Empty:
        session_id = await self.domain.logout(request.refresh_token)
        # This process stops honouring the session at once; others learn it from the event.
        self.revoked.add(session_id, time.time() + self.domain.settings.access_token_ttl_seconds + 60)
        return empty_pb2.Empty()

    async def GetUserInfo(self, request: pb.GetUserInfoRequest, context_: Ctx) -> pb.UserInfo:
        user, permissions = await self.domain.userinfo()
        return pb.UserInfo(
            sub=str(user["id"]), tenant_id=str(user["tenant_id"]), email=user["email"],
            name=f"{user['first_name']} {user['last_name']}".strip(), given_name=user["first_name"],
            family_name=user["last_name"], roles=list(user["roles"]), permissions=permissions,
            session_id=context.current().session_id,
        )

    async def GetJwks(self, request: pb.GetJwksRequest, context_: Ctx) -> httpbody_pb2.HttpBody:
        return httpbody_pb2.HttpBody(content_type="application/jwk-set+json", data=self._jwks)
