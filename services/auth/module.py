"""The auth service as the kernel hosts it."""

from __future__ import annotations

from pathlib import Path

import grpc
from crm.auth.v1 import auth_service_pb2, auth_service_pb2_grpc

from services.auth.domain import SCHEMA, AuthDomain
from services.auth.keys import SigningKey
from services.auth.mail import Postman
from services.auth.mfa import MfaDomain
from services.auth.oauth import OAuthDomain
from services.auth.recovery import INVITED, RecoveryDomain
from services.auth.servicer import AuthServicer
from services.auth.vault import DataKey
from services.kernel.errors import ConfigurationError
from services.kernel.host import Runtime, ServiceModule
from services.kernel.mailer import Mailer


async def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    s = runtime.settings
    if s.auth_signing_key_file is None:
        raise ConfigurationError("the auth service needs CRM_AUTH_SIGNING_KEY_FILE")
    if s.auth_data_key_file is None:
        raise ConfigurationError("the auth service needs CRM_AUTH_DATA_KEY_FILE (32 random bytes)")
    postman = Postman(Mailer(s))
    core = AuthDomain(runtime.db, s, SigningKey.load(s.auth_signing_key_file), vault=DataKey.load(s.auth_data_key_file),
                      postman=postman, revoked=runtime.revoked, verifier=runtime.verifier)
    recovery = RecoveryDomain(core)
    servicer = AuthServicer(core, OAuthDomain(core), MfaDomain(core), recovery)
    auth_service_pb2_grpc.add_AuthServiceServicer_to_server(servicer, server)
    runtime.on_stop(recovery.stop)
    runtime.on_stop(postman.stop)
    runtime.consume(SCHEMA, "auth-invitations", INVITED, recovery.on_user_invited)


MODULE = ServiceModule(
    name="auth",
    schema=SCHEMA,
    migrations=Path(__file__).parent / "migrations",
    descriptors=(auth_service_pb2.DESCRIPTOR.services_by_name["AuthService"],),
    register=register,
)
