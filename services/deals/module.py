"""The deals service as the kernel hosts it."""

from __future__ import annotations

from pathlib import Path

import grpc
from crm.deals.v1 import deals_service_pb2, deals_service_pb2_grpc

from services.deals.analytics import Analytics
from services.deals.domain import DealsDomain
from services.deals.peers import PipelinesPeer, ReferencesPeer, UsersPeer
from services.deals.servicer import DealsServicer
from services.deals.tables import SCHEMA
from services.kernel.host import Runtime, ServiceModule


async def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    assert runtime.clients is not None
    pipelines = PipelinesPeer(runtime.clients)
    domain = DealsDomain(runtime.db, pipelines, ReferencesPeer(runtime.clients))
    analytics = Analytics(runtime.db, pipelines, UsersPeer(runtime.clients))
    deals_service_pb2_grpc.add_DealsServiceServicer_to_server(DealsServicer(domain, analytics), server)


MODULE = ServiceModule(
    name="deals",
    schema=SCHEMA,
    migrations=Path(__file__).parent / "migrations",
    descriptors=(deals_service_pb2.DESCRIPTOR.services_by_name["DealsService"],),
    register=register,
)
