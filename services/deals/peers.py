"""The services the deals service asks: Pipelines (stages and probabilities, required),
Contacts and Accounts (reference checks), Users (team membership, optional). gRPC stays here.

Pipeline structure is read as this service (`pipelines:read`): a deal's reader needs its
stages whatever their role says about editing pipelines. Contacts and accounts are checked as
the caller: one may only link a deal to records one can see.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Any

from crm.contacts.v1 import contacts_service_pb2, contacts_service_pb2_grpc
from crm.pipelines.v1 import pipeline_pb2, pipelines_service_pb2, pipelines_service_pb2_grpc

from services.kernel import context
from services.kernel.clients import ServiceClients, upstream
from services.kernel.errors import FieldViolation, NotFound, validation

log = logging.getLogger(__name__)

SELF = "crm.deals.v1.DealsService"
PIPELINES = "crm.pipelines.v1.PipelinesService"
CONTACTS = "crm.contacts.v1.ContactsService"
ACCOUNTS = "crm.accounts.v1.AccountsService"
USERS = "crm.users.v1.UsersService"
CALL_TIMEOUT = 10.0


@dataclass(frozen=True)
class StageInfo:
    id: str
    name: str
    probability: int
    position: int
    kind: str


@dataclass(frozen=True)
class PipelineInfo:
    id: str
    name: str
    is_default: bool
    stages: tuple[StageInfo, ...]

    def stage(self, stage_id: str) -> StageInfo | None:
        return next((s for s in self.stages if s.id == stage_id), None)

    def first_open(self) -> StageInfo | None:
        return next((s for s in self.stages if s.kind == "open"), None)

    @classmethod
    def of(cls, p: pipeline_pb2.Pipeline) -> PipelineInfo:
        return cls(p.id, p.name, p.is_default, tuple(StageInfo(s.id, s.name, s.probability, s.position, s.kind)
                                                      for s in sorted(p.stages, key=lambda s: s.position)))


class PipelinesPeer:
    def __init__(self, clients: ServiceClients) -> None:
        self.clients = clients

    def _call(self) -> tuple[pipelines_service_pb2_grpc.PipelinesServiceAsyncStub, tuple[tuple[str, str], ...]]:
        stub = self.clients.stub(PIPELINES, pipelines_service_pb2_grpc.PipelinesServiceStub)
        return stub, self.clients.as_service(SELF, context.tenant_id(), ["pipelines:read"])

    async def get(self, pipeline_id: str, field: str = "pipelineId") -> PipelineInfo:
        """The pipeline, or 422 naming `field` when the tenant has none with this id."""
        stub, md = self._call()
        try:
            with upstream():
                found = await stub.GetPipeline(pipelines_service_pb2.GetPipelineRequest(id=pipeline_id), metadata=md,
                                               timeout=CALL_TIMEOUT)
        except NotFound:
            raise validation([FieldViolation(field, "no such pipeline", "NOT_FOUND")]) from None
        return PipelineInfo.of(found)

    async def all(self) -> list[PipelineInfo]:
        """Every pipeline of the tenant (the first list also creates the default pipeline)."""
        stub, md = self._call()
        out: list[PipelineInfo] = []
        token = ""
        while True:
            with upstream():
                page = await stub.ListPipelines(pipelines_service_pb2.ListPipelinesRequest(limit=100, page_token=token),
                                                metadata=md, timeout=CALL_TIMEOUT)
            out.extend(PipelineInfo.of(p) for p in page.pipelines)
            token = page.pagination.next_page_token
            if not token:
                return out

    async def default(self) -> PipelineInfo:
        pipelines = await self.all()
        if not pipelines:
            raise validation([FieldViolation("pipelineId", "the tenant has no pipeline: create one first", "REQUIRED")])
        return next((p for p in pipelines if p.is_default), pipelines[0])


class ReferencesPeer:
    """Checks that a contact or account id names a record of the caller's tenant."""

    def __init__(self, clients: ServiceClients) -> None:
        self.clients = clients

    async def check_contact(self, contact_id: str, field: str = "contactId") -> None:
        stub = self.clients.stub(CONTACTS, contacts_service_pb2_grpc.ContactsServiceStub)
        try:
            with upstream():
                await stub.GetContact(contacts_service_pb2.GetContactRequest(id=contact_id),
                                      metadata=ServiceClients.as_caller(), timeout=CALL_TIMEOUT)
        except NotFound:
            raise validation([FieldViolation(field, "no such contact", "NOT_FOUND")]) from None

    def accounts_checkable(self) -> bool:
        return self.clients.deployed(ACCOUNTS) and _module("crm.accounts.v1.accounts_service_pb2") is not None

    async def check_account(self, account_id: str, field: str = "accountId") -> bool:
        """True when checked; False when the Accounts service is not deployed (accepted unchecked)."""
        messages = _module("crm.accounts.v1.accounts_service_pb2")
        stubs = _module("crm.accounts.v1.accounts_service_pb2_grpc")
        if messages is None or stubs is None or not self.clients.deployed(ACCOUNTS):
            log.info("accountId %s accepted unchecked: the accounts service is not deployed", account_id)
            return False
        stub = self.clients.stub(ACCOUNTS, stubs.AccountsServiceStub)
        try:
            with upstream():
                await stub.GetAccount(messages.GetAccountRequest(id=account_id), metadata=ServiceClients.as_caller(),
                                      timeout=CALL_TIMEOUT)
        except NotFound:
            raise validation([FieldViolation(field, "no such account", "NOT_FOUND")]) from None
        return True


class UsersPeer:
    """Team membership from crm.users.v1.UsersService, when it is deployed and in this build."""

    def __init__(self, clients: ServiceClients) -> None:
        self.clients = clients

    def unavailable(self) -> str:
        if not self.clients.deployed(USERS) or _module("crm.users.v1.users_service_pb2") is None:
            return "team membership is unknown: the users service is not deployed, so results are grouped by owner only"
        return ""

    async def teams(self) -> list[tuple[str, str, list[str]]]:
        """(team id, name, member ids) of every team of the tenant."""
        messages = _module("crm.users.v1.users_service_pb2")
        stubs = _module("crm.users.v1.users_service_pb2_grpc")
        assert messages is not None and stubs is not None
        stub = self.clients.stub(USERS, stubs.UsersServiceStub)
        md = self.clients.as_service(SELF, context.tenant_id(), ["teams:read", "users:read"])
        names: dict[str, str] = {}
        members: dict[str, list[str]] = {}
        page = 1
        while True:
            with upstream():
                answer: Any = await stub.ListTeams(messages.ListTeamsRequest(page=page, limit=100), metadata=md,
                                                   timeout=CALL_TIMEOUT)
            for team in answer.teams:
                names[team.id] = team.name
                members[team.id] = [str(m) for m in getattr(team, "member_ids", [])]
            if not answer.pagination.has_next:
                break
            page += 1
        return [(tid, names[tid], members[tid]) for tid in names]


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None
