"""What the Activities service asks the services that own the records activities link to:
does this id exist for the caller (link validation), and which records relate to it (timelines).

Calls go over gRPC with the caller's token, so each owning service authorizes the caller and
answers only within the caller's tenant (another tenant's id is a plain 404). The messages are
taken from the process's descriptor pool by name, not imported: the owning services' contracts
evolve in their own packages, and a service whose contract or deployment is absent here is
reported as `not_deployed` (links are then accepted unchecked) instead of failing.

Conventions relied on (every CRM contract follows them): `Get<Entity>` takes `id`; list rpcs take
`limit` and filters named after fields (`contact_id`, `account_id`), and answer a repeated
resource with an `id` plus `pagination`.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from services.kernel.clients import ServiceClients, remote_error
from services.kernel.errors import DomainError, FieldViolation, NotFound, PermissionDenied

log = logging.getLogger(__name__)

CALL_SECONDS = 5.0
MAX_RELATED = 100  # related records per relation a timeline takes in


@dataclass(frozen=True)
class Owner:
    package: str  # crm.contacts.v1
    service: str  # ContactsService
    entity: str  # Contact

    @property
    def full_name(self) -> str:
        return f"{self.package}.{self.service}"


CONTACTS = Owner("crm.contacts.v1", "ContactsService", "Contact")
ACCOUNTS = Owner("crm.accounts.v1", "AccountsService", "Account")
DEALS = Owner("crm.deals.v1", "DealsService", "Deal")
LEADS = Owner("crm.leads.v1", "LeadsService", "Lead")
AUTH = Owner("crm.auth.v1", "AuthService", "")
LINK_OWNERS = {"contact_id": CONTACTS, "account_id": ACCOUNTS, "deal_id": DEALS, "lead_id": LEADS}
_API_NAME = {"contact_id": "contactId", "account_id": "accountId", "deal_id": "dealId", "lead_id": "leadId"}


class NotDeployed(Exception):
    pass


@dataclass
class Related:
    """Ids found for one relation of a timeline, and how the lookup went."""

    relation: str
    link: str  # the activity column they match: contact_id, account_id, deal_id
    status: str = "included"
    ids: list[str] = field(default_factory=list)


class Relations:
    def __init__(self, clients: ServiceClients) -> None:
        self.clients = clients

    def _method(self, owner: Owner, name: str) -> MethodDescriptor:
        if not self.clients.deployed(owner.full_name):
            raise NotDeployed(owner.full_name)
        short = owner.package.split(".")[1]
        try:
            importlib.import_module(f"{owner.package}.{short}_service_pb2")
        except ImportError:
            raise NotDeployed(owner.full_name) from None
        try:
            return descriptor_pool.Default().FindMethodByName(f"{owner.full_name}.{name}")
        except KeyError:
            raise NotDeployed(f"{owner.full_name}.{name}") from None

    async def call(self, owner: Owner, name: str, values: dict[str, Any]) -> Message:
        """One unary call as the current caller; DomainErrors as the callee answered them."""
        method = self._method(owner, name)
        request_cls = message_factory.GetMessageClass(method.input_type)
        response_cls = message_factory.GetMessageClass(method.output_type)
        known = request_cls.DESCRIPTOR.fields_by_name
        missing = [k for k in values if k not in known]
        if missing:
            raise NotDeployed(f"{owner.full_name}.{name} has no {', '.join(missing)}")
        channel: grpc.aio.Channel = self.clients.stub(owner.full_name, lambda ch: ch)
        rpc = channel.unary_unary(f"/{owner.full_name}/{name}", request_serializer=lambda m: m.SerializeToString(),
                                  response_deserializer=response_cls.FromString)
        try:
            response: Message = await rpc(request_cls(**values), metadata=ServiceClients.as_caller(),
                                          timeout=CALL_SECONDS)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNIMPLEMENTED:
                raise NotDeployed(f"{owner.full_name}.{name}") from None
            raise remote_error(err) from None
        return response

    async def check_links(self, links: dict[str, str]) -> tuple[list[FieldViolation], list[str]]:
        """Each link (column -> id) checked with its owning service, concurrently. Returns the
        problems (422 material: unknown in the caller's tenant, or not readable by the caller)
        and the links that could not be checked because their service is not deployed."""

        async def one(column: str, value: str) -> tuple[str, str]:
            owner = LINK_OWNERS[column]
            try:
                await self.call(owner, f"Get{owner.entity}", {"id": value})
            except NotDeployed:
                return column, "unverified"
            except NotFound:
                return column, "missing"
            except PermissionDenied:
                return column, "forbidden"
            return column, "ok"

        results = await asyncio.gather(*(one(c, v) for c, v in links.items()))
        problems: list[FieldViolation] = []
        unverified: list[str] = []
        for column, outcome in results:
            noun = LINK_OWNERS[column].entity.lower()
            if outcome == "missing":
                problems.append(FieldViolation(_API_NAME[column], f"no such {noun}", "NOT_FOUND"))
            elif outcome == "forbidden":
                problems.append(FieldViolation(_API_NAME[column], f"you may not read this {noun}", "NOT_ACCESSIBLE"))
            elif outcome == "unverified":
                unverified.append(_API_NAME[column])
        return problems, sorted(unverified)

    async def _lookup(self, relation: str, link: str, owner: Owner, name: str, values: dict[str, Any]) -> Related:
        """One list call: the ids of the records it answers."""
        out = Related(relation, link)
        try:
            response = await self.call(owner, name, values)
        except NotDeployed:
            out.status = "not_deployed"
            return out
        except PermissionDenied:
            out.status = "forbidden"
            return out
        except DomainError as exc:
            log.info("timeline: %s lookup failed: %s", relation, exc.message)
            out.status = "unavailable"
            return out
        for fd, value in response.ListFields():
            if fd.is_repeated and fd.message_type is not None and "id" in fd.message_type.fields_by_name:
                out.ids = [str(item.id) for item in value if item.id]
                break
        return out

    async def anchor(self, owner: Owner, anchor_id: str, picks: list[tuple[str, str, str]]) -> list[Related]:
        """Fields of the anchor record itself (a contact's account ...): one Get call."""
        try:
            response = await self.call(owner, f"Get{owner.entity}", {"id": anchor_id})
        except NotDeployed:
            return [Related(rel, link, "not_deployed") for rel, link, _ in picks]
        except PermissionDenied:
            return [Related(rel, link, "forbidden") for rel, link, _ in picks]
        except NotFound:
            raise NotFound(f"{owner.entity.lower()} not found") from None
        out = []
        for relation, link, attr in picks:
            value = str(getattr(response, attr, "") or "")
            out.append(Related(relation, link, ids=[value] if value else []))
        return out

    async def for_contact(self, contact_id: str) -> list[Related]:
        anchor, deals = await asyncio.gather(
            self.anchor(CONTACTS, contact_id, [("account", "account_id", "account_id")]),
            self._lookup("deals", "deal_id", DEALS, "ListDeals", {"contact_id": contact_id, "limit": MAX_RELATED}),
        )
        return [*anchor, deals]

    async def for_account(self, account_id: str) -> list[Related]:
        contacts, deals = await asyncio.gather(
            self._lookup("contacts", "contact_id", CONTACTS, "ListContacts", {"account_id": account_id, "limit": MAX_RELATED}),
            self._lookup("deals", "deal_id", DEALS, "ListDeals", {"account_id": account_id, "limit": MAX_RELATED}),
        )
        return [contacts, deals]

    async def for_deal(self, deal_id: str) -> list[Related]:
        return await self.anchor(DEALS, deal_id, [("contact", "contact_id", "contact_id"),
                                                  ("account", "account_id", "account_id")])
