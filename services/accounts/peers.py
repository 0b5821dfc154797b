"""The services whose records hang off an account, reached over gRPC.

Contacts, deals and activities each own their records; an account only points at them. Their
contracts are found by convention (`crm.<name>.v1.<Name>Service` in `<name>_service.proto`), so
a service whose contract is not compiled in, or that this deployment does not run, is simply
"not deployed": a list answers 503 SERVICE_NOT_DEPLOYED and a merge skips it with a note.

Each of them offers the same internal rpc, `ReassignAccount(fromAccountIds, toAccountId)`.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import grpc

from services.kernel.clients import ServiceClients, remote_error
from services.kernel.errors import Unavailable
from services.kernel.host import Runtime

SELF = "crm.accounts.v1.AccountsService"
LIST_TIMEOUT = 10.0
REASSIGN_TIMEOUT = 120.0


def service_name(peer: str) -> str:
    """`deals` -> `crm.deals.v1.DealsService`."""
    return f"crm.{peer}.v1.{peer.capitalize()}Service"


def _not_deployed(peer: str) -> Unavailable:
    return Unavailable(f"the {peer} service is not deployed", reason="SERVICE_NOT_DEPLOYED")


class GrpcPeers:
    """`services.accounts.domain.Peers` over the kernel's service clients."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    @staticmethod
    def _contract(peer: str) -> tuple[ModuleType, Any] | None:
        try:
            messages = importlib.import_module(f"crm.{peer}.v1.{peer}_service_pb2")
            stubs = importlib.import_module(f"crm.{peer}.v1.{peer}_service_pb2_grpc")
        except ImportError:
            return None
        stub_class = getattr(stubs, f"{peer.capitalize()}ServiceStub", None)
        return (messages, stub_class) if stub_class is not None else None

    def deployed(self, peer: str) -> bool:
        assert self.runtime.clients is not None
        return self._contract(peer) is not None and self.runtime.clients.deployed(service_name(peer))

    def can_reassign(self, peer: str) -> bool:
        """Deployed, with a contract that offers ReassignAccount."""
        contract = self._contract(peer)
        if contract is None or not self.deployed(peer):
            return False
        service = contract[0].DESCRIPTOR.services_by_name.get(f"{peer.capitalize()}Service")
        return service is not None and "ReassignAccount" in service.methods_by_name

    def _stub(self, peer: str) -> tuple[ModuleType, Any]:
        contract = self._contract(peer)
        if contract is None or not self.deployed(peer):
            raise _not_deployed(peer)
        messages, stub_class = contract
        return messages, self.runtime.client(service_name(peer), stub_class)

    async def reassign(self, peer: str, tenant_id: str, from_ids: Sequence[uuid.UUID], to_id: uuid.UUID) -> int:
        """Background work: a short-lived service token for this tenant, allowed `<peer>:write` only."""
        messages, stub = self._stub(peer)
        assert self.runtime.clients is not None
        metadata = self.runtime.clients.as_service(SELF, tenant_id, [f"{peer}:write"])
        request = messages.ReassignAccountRequest(from_account_ids=[str(i) for i in from_ids], to_account_id=str(to_id))
        try:
            response = await stub.ReassignAccount(request, metadata=metadata, timeout=REASSIGN_TIMEOUT)
        except grpc.aio.AioRpcError as err:
            raise remote_error(err, peer) from None
        return int(getattr(response, "reassigned", 0))

    async def list_for_account(self, peer: str, rpc: str, account_id: str, **paging: Any) -> Any:
        """`<rpc>(account_id=..., page, limit ...)` on the peer, as the caller (the peer authorizes
        the user: listing an account's contacts also needs `contacts:read`)."""
        messages, stub = self._stub(peer)
        request_class = getattr(messages, f"{rpc}Request")
        try:
            request = request_class(account_id=account_id, **{k: v for k, v in paging.items() if v})
        except ValueError:  # the peer's list has no account filter (yet)
            raise Unavailable(f"the {peer} service cannot list by account", reason="SERVICE_NOT_DEPLOYED") from None
        try:
            return await getattr(stub, rpc)(request, metadata=ServiceClients.as_caller(), timeout=LIST_TIMEOUT)
        except grpc.aio.AioRpcError as err:
            raise remote_error(err, peer) from None
