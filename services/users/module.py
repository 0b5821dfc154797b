"""The users service as the kernel hosts it: schema `auth` (shared identity), own migrations."""

from __future__ import annotations

from pathlib import Path

import grpc
from crm.users.v1 import users_service_pb2, users_service_pb2_grpc

from services.kernel.host import Runtime, ServiceModule
from services.users.domain import UsersDomain
from services.users.servicer import UsersServicer
from services.users.tables import SCHEMA


async def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    domain = UsersDomain(runtime.db, runtime.settings, runtime.revoked)
    users_service_pb2_grpc.add_UsersServiceServicer_to_server(UsersServicer(domain), server)


MODULE = ServiceModule(
    name="users",
    schema=SCHEMA,
    migrations=Path(__file__).parent / "migrations",
    descriptors=(users_service_pb2.DESCRIPTOR.services_by_name["UsersService"],),
    register=register,
    version_table="alembic_version_users",
)
