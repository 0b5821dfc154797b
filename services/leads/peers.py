"""The services leads calls: Contacts (conversion), Accounts and Deals (conversion), Users
(team members for assignment). gRPC stays here, out of the domain.

Contacts' contract is in this tree, so its generated stubs are used. The accounts, deals and
users contracts are being written in parallel; until they are merged here, the few messages
this service sends them are declared below in a private descriptor pool, with the field names
and numbers of those contracts (CreateAccount{account{name=2, domain=3}}, DeleteAccount{id=1},
GetAccount{id=1}, CreateDeal{deal{...}} with crm.deals.v1.Deal's numbers, DeleteDeal{id=1},
GetTeam{id=1} -> Team{member_ids=5}, GetUser{id=1}). The pool is private, so the real
generated modules can be loaded beside it; once they are merged, these classes give way to
them (wire-compatible, so nothing else changes).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import grpc
from crm.contacts.v1 import contact_pb2, contacts_service_pb2, contacts_service_pb2_grpc
from google.protobuf import descriptor_pb2, empty_pb2, message_factory, struct_pb2
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message import Message

from services.kernel import context
from services.kernel.clients import ServiceClients, remote_error
from services.kernel.errors import NotFound

SELF = "crm.leads.v1.LeadsService"
CONTACTS = "crm.contacts.v1.ContactsService"
ACCOUNTS = "crm.accounts.v1.AccountsService"
DEALS = "crm.deals.v1.DealsService"
USERS = "crm.users.v1.UsersService"
CALL_TIMEOUT = 10.0

# Sub-request ids of a conversion step: `<request id>.leadconv.<conversion id>.<step>`. The
# callee's "created" event carries it as `requestid`, so a record whose id never reached the
# saga log (a crash right after the call) is still found and undone (see conversion.py).
STEP_REQUEST_RE = re.compile(r"leadconv\.([0-9a-f-]{36})\.(contact|account|deal)$")

# Undoing a step deletes as this service. Record scopes come from a resource's read and write
# permissions (services/kernel/context.py), so deleting any owner's record needs all three.
_UNDO = {r: (f"{r}:read", f"{r}:write", f"{r}:delete") for r in ("contacts", "accounts", "deals")}
_S, _M, _REP = 9, 11, 3  # FieldDescriptorProto TYPE_STRING, TYPE_MESSAGE, LABEL_REPEATED
_PEER_FILES: list[tuple[str, str, dict[str, list[tuple[str, int, int, str]]]]] = [
    ("crm.accounts.v1", "leads_peers/accounts.proto", {
        "Account": [("id", 1, _S, ""), ("name", 2, _S, ""), ("domain", 3, _S, ""), ("owner_id", 7, _S, "")],
        "CreateAccountRequest": [("account", 1, _M, ".crm.accounts.v1.Account")],
        "GetAccountRequest": [("id", 1, _S, "")],
        "DeleteAccountRequest": [("id", 1, _S, "")],
    }),
    ("crm.deals.v1", "leads_peers/deals.proto", {
        "Deal": [("id", 1, _S, ""), ("name", 2, _S, ""), ("amount", 3, _S, ""), ("currency", 4, _S, ""),
                 ("pipeline_id", 5, _S, ""), ("stage_id", 6, _S, ""), ("account_id", 7, _S, ""),
                 ("contact_id", 8, _S, ""), ("owner_id", 11, _S, "")],
        "CreateDealRequest": [("deal", 1, _M, ".crm.deals.v1.Deal")],
        "DeleteDealRequest": [("id", 1, _S, "")],
    }),
    ("crm.users.v1", "leads_peers/users.proto", {
        "Team": [("id", 1, _S, ""), ("member_ids", 5, -_S, "")],
        "GetTeamRequest": [("id", 1, _S, "")],
        "User": [("id", 1, _S, "")],
        "GetUserRequest": [("id", 1, _S, "")],
    }),
]


def _peer_messages() -> dict[str, type[Message]]:
    pool = DescriptorPool()
    classes: dict[str, type[Message]] = {}
    for package, name, messages in _PEER_FILES:
        proto = descriptor_pb2.FileDescriptorProto(name=name, package=package, syntax="proto3")
        for msg_name, fields in messages.items():
            msg = proto.message_type.add(name=msg_name)
            for field_name, number, ftype, type_name in fields:
                f = msg.field.add(name=field_name, number=number, type=abs(ftype), label=_REP if ftype < 0 else 1)
                if type_name:
                    f.type_name = type_name
        pool.Add(proto)
        for msg_name in messages:
            full = f"{package}.{msg_name}"
            classes[full] = message_factory.GetMessageClass(pool.FindMessageTypeByName(full))
    return classes


PEER = _peer_messages()


class _Rpc:
    """One unary method of a peer whose stubs are not generated in this tree."""

    def __init__(self, channel: grpc.aio.Channel, path: str, response: type[Message]) -> None:
        self._call = channel.unary_unary(path, request_serializer=lambda m: m.SerializeToString(),
                                         response_deserializer=response.FromString)

    def __call__(self, request: Message, *, metadata: Any, timeout: float) -> Awaitable[Message]:
        return cast(Awaitable[Message], self._call(request, metadata=metadata, timeout=timeout))


def _stub_factory(service: str, methods: dict[str, type[Message]]) -> Callable[[grpc.aio.Channel], dict[str, _Rpc]]:
    def build(channel: grpc.aio.Channel) -> dict[str, _Rpc]:
        return {name: _Rpc(channel, f"/{service}/{name}", response) for name, response in methods.items()}
    return build


_ACCOUNTS_STUB = _stub_factory(ACCOUNTS, {"CreateAccount": PEER["crm.accounts.v1.Account"],
                                          "GetAccount": PEER["crm.accounts.v1.Account"],
                                          "DeleteAccount": empty_pb2.Empty})
_DEALS_STUB = _stub_factory(DEALS, {"CreateDeal": PEER["crm.deals.v1.Deal"], "DeleteDeal": empty_pb2.Empty})
_USERS_STUB = _stub_factory(USERS, {"GetTeam": PEER["crm.users.v1.Team"], "GetUser": PEER["crm.users.v1.User"]})


@dataclass(frozen=True)
class DealDraft:
    name: str
    pipeline_id: str
    stage_id: str
    amount: str
    currency: str
    account_id: str
    contact_id: str
    owner_id: str


def step_metadata(conversion_id: uuid.UUID, step: str) -> tuple[tuple[str, str], ...]:
    """The caller's metadata with the conversion step's sub-request id."""
    md = dict(ServiceClients.as_caller())
    md["x-request-id"] = f"{md.get('x-request-id', '')}.leadconv.{conversion_id}.{step}".lstrip(".")
    return tuple(md.items())


class Peers:
    """Typed calls to the other services, their errors as this service's DomainErrors."""

    def __init__(self, clients: ServiceClients) -> None:
        self.clients = clients

    def deployed(self, service: str) -> bool:
        return self.clients.deployed(service)

    def service_md(self, *permissions: str) -> tuple[tuple[str, str], ...]:
        return self.clients.as_service(SELF, context.tenant_id(), list(permissions))

    async def _call(self, rpc: Callable[..., Awaitable[Message]], request: Message, md: Any) -> Message:
        try:
            return await rpc(request, metadata=md, timeout=CALL_TIMEOUT)
        except grpc.aio.AioRpcError as err:
            raise remote_error(err) from None

    # --- contacts ------------------------------------------------------------------------
    def _contacts(self) -> contacts_service_pb2_grpc.ContactsServiceAsyncStub:
        return cast("contacts_service_pb2_grpc.ContactsServiceAsyncStub",
                    self.clients.stub(CONTACTS, contacts_service_pb2_grpc.ContactsServiceStub))

    async def create_contact(self, contact: contact_pb2.Contact, md: Any) -> str:
        created = await self._call(self._contacts().CreateContact, contacts_service_pb2.CreateContactRequest(contact=contact), md)
        return cast(contact_pb2.Contact, created).id

    async def delete_contact(self, contact_id: str) -> None:
        await _forgiving_delete(self._call(self._contacts().DeleteContact, contacts_service_pb2.DeleteContactRequest(id=contact_id),
                                           self.service_md(*_UNDO["contacts"])))

    # --- accounts ------------------------------------------------------------------------
    async def create_account(self, name: str, domain: str, owner_id: str, md: Any) -> str:
        account_cls, request_cls = PEER["crm.accounts.v1.Account"], PEER["crm.accounts.v1.CreateAccountRequest"]
        request = request_cls(account=account_cls(name=name, domain=domain, owner_id=owner_id))
        created = await self._call(self.clients.stub(ACCOUNTS, _ACCOUNTS_STUB)["CreateAccount"], request, md)
        return str(getattr(created, "id"))  # noqa: B009 - a dynamic message class

    async def get_account(self, account_id: str) -> str:
        request = PEER["crm.accounts.v1.GetAccountRequest"](id=account_id)
        found = await self._call(self.clients.stub(ACCOUNTS, _ACCOUNTS_STUB)["GetAccount"], request, ServiceClients.as_caller())
        return str(getattr(found, "id"))  # noqa: B009

    async def delete_account(self, account_id: str) -> None:
        request = PEER["crm.accounts.v1.DeleteAccountRequest"](id=account_id)
        await _forgiving_delete(self._call(self.clients.stub(ACCOUNTS, _ACCOUNTS_STUB)["DeleteAccount"], request,
                                           self.service_md(*_UNDO["accounts"])))

    # --- deals ---------------------------------------------------------------------------
    async def create_deal(self, draft: DealDraft, md: Any) -> str:
        deal = PEER["crm.deals.v1.Deal"](name=draft.name, pipeline_id=draft.pipeline_id, stage_id=draft.stage_id,
                                        amount=draft.amount, currency=draft.currency, account_id=draft.account_id,
                                        contact_id=draft.contact_id, owner_id=draft.owner_id)
        request = PEER["crm.deals.v1.CreateDealRequest"](deal=deal)
        created = await self._call(self.clients.stub(DEALS, _DEALS_STUB)["CreateDeal"], request, md)
        return str(getattr(created, "id"))  # noqa: B009

    async def delete_deal(self, deal_id: str) -> None:
        request = PEER["crm.deals.v1.DeleteDealRequest"](id=deal_id)
        await _forgiving_delete(self._call(self.clients.stub(DEALS, _DEALS_STUB)["DeleteDeal"], request,
                                           self.service_md(*_UNDO["deals"])))

    # --- users ---------------------------------------------------------------------------
    async def team_members(self, team_id: str, *, as_service: bool) -> list[str]:
        """Member ids of a team, sorted (the round robin's order)."""
        md = self.service_md("teams:read") if as_service else ServiceClients.as_caller()
        request = PEER["crm.users.v1.GetTeamRequest"](id=team_id)
        team = await self._call(self.clients.stub(USERS, _USERS_STUB)["GetTeam"], request, md)
        return sorted(str(m) for m in getattr(team, "member_ids"))  # noqa: B009

    async def user_exists(self, user_id: str) -> bool:
        request = PEER["crm.users.v1.GetUserRequest"](id=user_id)
        try:
            await self._call(self.clients.stub(USERS, _USERS_STUB)["GetUser"], request, ServiceClients.as_caller())
        except NotFound:
            return False
        return True


async def _forgiving_delete(call: Awaitable[Message]) -> None:
    """Undoing a step: a record already gone is undone."""
    try:
        await call
    except NotFound:
        return


def contact_custom_fields(lead_id: uuid.UUID, conversion_id: uuid.UUID) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update({"leadId": str(lead_id), "leadConversionId": str(conversion_id)})
    return out
