"""The services leads calls: Contacts (conversion), Accounts and Deals (conversion), Users
(team members for assignment), through their generated stubs. gRPC stays here, out of the
domain.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import grpc
from crm.accounts.v1 import account_pb2, accounts_service_pb2, accounts_service_pb2_grpc
from crm.contacts.v1 import contact_pb2, contacts_service_pb2, contacts_service_pb2_grpc
from crm.deals.v1 import deal_pb2, deals_service_pb2, deals_service_pb2_grpc
from crm.users.v1 import user_pb2, users_service_pb2, users_service_pb2_grpc
from google.protobuf import struct_pb2
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
    def _accounts(self) -> accounts_service_pb2_grpc.AccountsServiceAsyncStub:
        return cast("accounts_service_pb2_grpc.AccountsServiceAsyncStub",
                    self.clients.stub(ACCOUNTS, accounts_service_pb2_grpc.AccountsServiceStub))

    async def create_account(self, name: str, domain: str, owner_id: str, md: Any) -> str:
        request = accounts_service_pb2.CreateAccountRequest(
            account=account_pb2.Account(name=name, domain=domain, owner_id=owner_id))
        created = await self._call(self._accounts().CreateAccount, request, md)
        return cast(account_pb2.Account, created).id

    async def get_account(self, account_id: str) -> str:
        found = await self._call(self._accounts().GetAccount, accounts_service_pb2.GetAccountRequest(id=account_id),
                                 ServiceClients.as_caller())
        return cast(account_pb2.Account, found).id

    async def delete_account(self, account_id: str) -> None:
        await _forgiving_delete(self._call(self._accounts().DeleteAccount,
                                           accounts_service_pb2.DeleteAccountRequest(id=account_id),
                                           self.service_md(*_UNDO["accounts"])))

    # --- deals ---------------------------------------------------------------------------
    def _deals(self) -> deals_service_pb2_grpc.DealsServiceAsyncStub:
        return cast("deals_service_pb2_grpc.DealsServiceAsyncStub",
                    self.clients.stub(DEALS, deals_service_pb2_grpc.DealsServiceStub))

    async def create_deal(self, draft: DealDraft, md: Any) -> str:
        deal = deal_pb2.Deal(name=draft.name, pipeline_id=draft.pipeline_id, stage_id=draft.stage_id,
                             amount=draft.amount, currency=draft.currency, account_id=draft.account_id,
                             contact_id=draft.contact_id, owner_id=draft.owner_id)
        created = await self._call(self._deals().CreateDeal, deals_service_pb2.CreateDealRequest(deal=deal), md)
        return cast(deal_pb2.Deal, created).id

    async def delete_deal(self, deal_id: str) -> None:
        await _forgiving_delete(self._call(self._deals().DeleteDeal, deals_service_pb2.DeleteDealRequest(id=deal_id),
                                           self.service_md(*_UNDO["deals"])))

    # --- users ---------------------------------------------------------------------------
    def _users(self) -> users_service_pb2_grpc.UsersServiceAsyncStub:
        return cast("users_service_pb2_grpc.UsersServiceAsyncStub",
                    self.clients.stub(USERS, users_service_pb2_grpc.UsersServiceStub))

    async def team_members(self, team_id: str, *, as_service: bool) -> list[str]:
        """Member ids of a team, sorted (the round robin's order)."""
        md = self.service_md("teams:read") if as_service else ServiceClients.as_caller()
        team = await self._call(self._users().GetTeam, users_service_pb2.GetTeamRequest(id=team_id), md)
        return sorted(str(m) for m in cast(user_pb2.Team, team).member_ids)

    async def user_exists(self, user_id: str) -> bool:
        try:
            await self._call(self._users().GetUser, users_service_pb2.GetUserRequest(id=user_id),
                             ServiceClients.as_caller())
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
