"""The tenants service as the kernel hosts it (schema `auth`, its own migration history)."""

from __future__ import annotations

from pathlib import Path

import grpc
from crm.tenants.v1 import tenants_service_pb2, tenants_service_pb2_grpc

from services.kernel.host import Runtime, ServiceModule
from services.tenants import consumer as usage
from services.tenants.domain import TenantsDomain
from services.tenants.servicer import TenantsServicer
from services.tenants.tables import SCHEMA


async def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    domain = TenantsDomain(runtime.db, runtime.settings, runtime.revoked)
    tenants_service_pb2_grpc.add_TenantsServiceServicer_to_server(TenantsServicer(domain), server)
    # Bulk writes and imports bring events in bursts: a tenant's run of them shares a transaction.
    runtime.consume(SCHEMA, usage.DURABLE, "crm.>", usage.on_event, accepts=usage.accepts, runs=True)


MODULE = ServiceModule(
    name="tenants",
    schema=SCHEMA,
    migrations=Path(__file__).parent / "migrations",
    descriptors=(tenants_service_pb2.DESCRIPTOR.services_by_name["TenantsService"],),
    register=register,
    version_table="alembic_version_tenants",
)
