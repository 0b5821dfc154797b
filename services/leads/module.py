"""The leads service as the kernel hosts it."""

from __future__ import annotations

from pathlib import Path

import grpc
from crm.leads.v1 import leads_service_pb2, leads_service_pb2_grpc

from services.kernel.host import Runtime, ServiceModule
from services.leads.conversion import Conversions
from services.leads.domain import LeadsDomain
from services.leads.forms import Forms
from services.leads.peers import Peers
from services.leads.routing import Routing
from services.leads.servicer import LeadsServicer
from services.leads.tables import SCHEMA

# Creation events of the records a conversion makes: the saga's safety net (conversion.py).
CREATED_EVENTS = {"contacts": "crm.contacts.contact.created", "accounts": "crm.accounts.account.created",
                  "deals": "crm.deals.deal.created"}


async def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    assert runtime.clients is not None
    peers = Peers(runtime.clients)
    domain = LeadsDomain(runtime.db)
    routing = Routing(runtime.db, peers)
    conversions = Conversions(runtime.db, domain, peers)
    forms = Forms(runtime.db, domain, routing)
    for name, subject in CREATED_EVENTS.items():
        runtime.consume(SCHEMA, f"leads-conversion-{name}", subject, conversions.on_created,
                        accepts=conversions.made_by_a_step)
    runtime.background("leads-conversion-recovery", conversions.recovery_loop)
    leads_service_pb2_grpc.add_LeadsServiceServicer_to_server(LeadsServicer(domain, conversions, forms, routing), server)


MODULE = ServiceModule(
    name="leads",
    schema=SCHEMA,
    migrations=Path(__file__).parent / "migrations",
    descriptors=(leads_service_pb2.DESCRIPTOR.services_by_name["LeadsService"],),
    register=register,
)
