"""The activities service as the kernel hosts it."""

from __future__ import annotations

from pathlib import Path

import grpc
from crm.activities.v1 import activities_service_pb2, activities_service_pb2_grpc

from services.activities.config import ActivitiesConfig
from services.activities.domain import ActivitiesDomain
from services.activities.relations import Relations
from services.activities.servicer import ActivitiesServicer
from services.activities.tables import SCHEMA
from services.kernel.host import Runtime, ServiceModule


async def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    assert runtime.clients is not None
    config = ActivitiesConfig.from_env(runtime.settings)
    domain = ActivitiesDomain(runtime.db, runtime.jobs(SCHEMA), Relations(runtime.clients), config)
    # Background calendar syncs (an interrupted sync leaves its job queued for the next process).
    domain.sync.start_scheduler()
    runtime.on_stop(domain.sync.stop_scheduler)
    activities_service_pb2_grpc.add_ActivitiesServiceServicer_to_server(ActivitiesServicer(domain), server)


MODULE = ServiceModule(
    name="activities",
    schema=SCHEMA,
    migrations=Path(__file__).parent / "migrations",
    descriptors=(activities_service_pb2.DESCRIPTOR.services_by_name["ActivitiesService"],),
    register=register,
)
