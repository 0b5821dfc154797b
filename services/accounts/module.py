"""The accounts service as the kernel hosts it."""

from __future__ import annotations

from pathlib import Path

import grpc
from crm.accounts.v1 import accounts_service_pb2, accounts_service_pb2_grpc

from services.accounts.domain import AccountsDomain
from services.accounts.peers import GrpcPeers
from services.accounts.servicer import AccountsServicer
from services.accounts.tables import SCHEMA
from services.kernel.host import Runtime, ServiceModule


async def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    peers = GrpcPeers(runtime)
    domain = AccountsDomain(runtime.db, runtime.jobs(SCHEMA), peers)
    accounts_service_pb2_grpc.add_AccountsServiceServicer_to_server(AccountsServicer(domain, peers), server)


MODULE = ServiceModule(
    name="accounts",
    schema=SCHEMA,
    migrations=Path(__file__).parent / "migrations",
    descriptors=(accounts_service_pb2.DESCRIPTOR.services_by_name["AccountsService"],),
    register=register,
)
