"""The auth service as the kernel hosts it."""

from __future__ import annotations

from pathlib import Path

import grpc
from crm.auth.v1 import auth_service_pb2, auth_service_pb2_grpc

from services.auth.domain import SCHEMA, AuthDomain
from services.auth.keys import SigningKey
from services.auth.servicer import AuthServicer
from services.kernel.errors import ConfigurationError
from services.kernel.host import Runtime, ServiceModule


async def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    path = runtime.settings.auth_signing_key_file
    if path is None:
        raise ConfigurationError("the auth service needs CRM_AUTH_SIGNING_KEY_FILE")
    domain = AuthDomain(runtime.db, runtime.settings, SigningKey.load(path))
    auth_service_pb2_grpc.add_AuthServiceServicer_to_server(AuthServicer(domain, runtime.revoked), server)


MODULE = ServiceModule(
    name="auth",
    schema=SCHEMA,
    migrations=Path(__file__).parent / "migrations",
    descriptors=(auth_service_pb2.DESCRIPTOR.services_by_name["AuthService"],),
    register=register,
)
