"""Whether a contact's `accountId` names an account the caller can see, asked of the accounts
service with the caller's own token (so another tenant's account, or one outside the caller's
scope, is simply not found). When this deployment runs no accounts service, any id is accepted."""

from __future__ import annotations

import asyncio
import uuid

import grpc
from crm.accounts.v1 import accounts_service_pb2, accounts_service_pb2_grpc

from services.contacts.domain import MissingAccounts
from services.kernel.clients import ServiceClients, remote_error
from services.kernel.host import Runtime

ACCOUNTS = "crm.accounts.v1.AccountsService"
TIMEOUT = 10.0
CONCURRENCY = 8  # a bulk of 500 ids must not take every database connection of the accounts service


def missing_accounts(runtime: Runtime) -> MissingAccounts:
    async def missing(ids: set[uuid.UUID]) -> set[uuid.UUID]:
        assert runtime.clients is not None
        if not ids or not runtime.clients.deployed(ACCOUNTS):
            return set()
        stub = runtime.client(ACCOUNTS, accounts_service_pb2_grpc.AccountsServiceStub)
        metadata = ServiceClients.as_caller()
        slots = asyncio.Semaphore(CONCURRENCY)

        async def absent(account_id: uuid.UUID) -> bool:
            try:
                async with slots:
                    await stub.GetAccount(accounts_service_pb2.GetAccountRequest(id=str(account_id)), metadata=metadata,
                                          timeout=TIMEOUT)
            except grpc.aio.AioRpcError as err:
                if err.code() == grpc.StatusCode.NOT_FOUND:
                    return True
                raise remote_error(err) from None
            return False

        ordered = sorted(ids)
        found = await asyncio.gather(*(absent(i) for i in ordered))
        return {i for i, gone in zip(ordered, found, strict=True) if gone}

    return missing
