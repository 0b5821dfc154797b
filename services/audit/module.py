"""The audit service as the kernel hosts it: its rpcs and its consumer of every event."""

from __future__ import annotations

from pathlib import Path

import grpc
from crm.audit.v1 import audit_service_pb2, audit_service_pb2_grpc

from services.audit.domain import AuditDomain
from services.audit.servicer import AuditServicer
from services.audit.tables import SCHEMA
from services.kernel.host import Runtime, ServiceModule

# Every event of every service, once each, in order per subject.
AUDITED_SUBJECTS = "crm.>"


async def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    domain = AuditDomain(runtime.db, runtime.jobs(SCHEMA))
    # Runs of a tenant's events in one transaction: appended one after another under the chain
    # head's lock, each seeing the head the previous one left; a failed run leaves no link.
    runtime.consume(SCHEMA, "audit", AUDITED_SUBJECTS, domain.record_event, runs=True)
    audit_service_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(domain), server)


MODULE = ServiceModule(
    name="audit",
    schema=SCHEMA,
    migrations=Path(__file__).parent / "migrations",
    descriptors=(audit_service_pb2.DESCRIPTOR.services_by_name["AuditService"],),
    register=register,
)
