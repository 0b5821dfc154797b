"""The contacts service as the kernel hosts it."""

from __future__ import annotations

from pathlib import Path

import grpc
from crm.contacts.v1 import contacts_service_pb2, contacts_service_pb2_grpc

from services.contacts.accounts import missing_accounts
from services.contacts.domain import ContactsDomain
from services.contacts.servicer import ContactsServicer
from services.contacts.tables import SCHEMA
from services.kernel.host import Runtime, ServiceModule


async def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    assert runtime.clients is not None
    domain = ContactsDomain(runtime.db, runtime.jobs(SCHEMA), missing_accounts(runtime))
    contacts_service_pb2_grpc.add_ContactsServiceServicer_to_server(ContactsServicer(domain, runtime.clients), server)


MODULE = ServiceModule(
    name="contacts",
    schema=SCHEMA,
    migrations=Path(__file__).parent / "migrations",
    descriptors=(contacts_service_pb2.DESCRIPTOR.services_by_name["ContactsService"],),
    register=register,
)
