"""The search service as the kernel hosts it: its rpcs and the consumer that keeps its index."""

from __future__ import annotations

from pathlib import Path

import grpc
from crm.search.v1 import search_service_pb2, search_service_pb2_grpc

from services.kernel.host import Runtime, ServiceModule
from services.search.domain import CONSUMER, SearchDomain
from services.search.servicer import SearchServicer
from services.search.tables import SCHEMA

# Every event: the indexer picks those of contacts, accounts, leads, deals and activities.
INDEXED_SUBJECTS = "crm.>"


async def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    assert runtime.clients is not None
    domain = SearchDomain(runtime.db, runtime.jobs(SCHEMA), runtime.bus, runtime.clients)
    # Runs of a tenant's events in one transaction: an import or a bulk change indexes many at once.
    runtime.consume(SCHEMA, CONSUMER, INDEXED_SUBJECTS, domain.on_event, runs=True)
    runtime.on_stop(domain.close)
    search_service_pb2_grpc.add_SearchServiceServicer_to_server(SearchServicer(domain), server)


MODULE = ServiceModule(
    name="search",
    schema=SCHEMA,
    migrations=Path(__file__).parent / "migrations",
    descriptors=(search_service_pb2.DESCRIPTOR.services_by_name["SearchService"],),
    register=register,
)
