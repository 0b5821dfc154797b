"""The accounts service hosted in this test process, with and without its peers.

It shares the stack's PostgreSQL and NATS. The contacts service it talks to is either absent
(not deployed) or a real gRPC server on an ephemeral port that stands in for it and can fail or
stall on demand, which the whole stack cannot show: a merge whose step fails loses nothing and
can be run again, a merge stopped by a shutdown resumes in the next process, and a merge in
progress keeps its accounts from being deleted or merged elsewhere.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
import jwt
import pytest
from crm.accounts.v1 import account_pb2, accounts_service_pb2, accounts_service_pb2_grpc
from crm.contacts.v1 import contact_pb2, contacts_service_pb2, contacts_service_pb2_grpc

from services.devstack import DevStack
from services.kernel.host import Host, load_modules
from services.kernel.settings import Settings
from tests.integration.conftest import mint
from tests.integration.test_inprocess_grpc import _reason

CONTACTS = "crm.contacts.v1.ContactsService"
RPC_TIMEOUT = 15.0


def bounded(test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """A test that waits on other tasks fails with a traceback instead of hanging the suite."""

    @functools.wraps(test)
    async def run(*args: Any, **kwargs: Any) -> None:
        await asyncio.wait_for(test(*args, **kwargs), 120)

    return run


class FakeContacts(contacts_service_pb2_grpc.ContactsServiceServicer):
    """Stands in for the contacts service's ReassignAccount: records calls, fails or stalls."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], str, dict[str, Any]]] = []
        self.fail = False
        self.gate: asyncio.Event | None = None  # when set, calls wait for it
        self.entered = asyncio.Event()

    async def ReassignAccount(self, request: contacts_service_pb2.ReassignAccountRequest,
                              context: grpc.aio.ServicerContext[Any, Any]) -> contacts_service_pb2.ReassignAccountResponse:
        token = dict(context.invocation_metadata() or ())["authorization"].split()[1]
        claims = jwt.decode(token, options={"verify_signature": False})
        self.calls.append((list(request.from_account_ids), request.to_account_id, claims))
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "contacts database is down")
        return contacts_service_pb2.ReassignAccountResponse(reassigned=7)


@asynccontextmanager
async def fake_contacts(fake: FakeContacts) -> AsyncIterator[int]:
    server = grpc.aio.server()
    contacts_service_pb2_grpc.add_ContactsServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield port
    finally:
        await server.stop(0)


@asynccontextmanager
async def accounts_host(stack: DevStack, **env: str) -> AsyncIterator[Host]:
    settings = Settings.from_env(stack.service_env(CRM_GRPC_LISTEN="127.0.0.1:0", CRM_SERVICES="accounts", **env))
    host = Host(settings, load_modules(("accounts",)))
    await host.start()
    try:
        yield host
    finally:
        await host.stop(grace=1.0)


def _md(stack: DevStack, tenant: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {mint(stack, tenant_id=tenant, perms=['accounts:*'])}"), ("x-tenant-id", tenant))


async def _account(stub: accounts_service_pb2_grpc.AccountsServiceAsyncStub, md: Any, name: str,
                   parent_id: str = "") -> account_pb2.Account:
    request = accounts_service_pb2.CreateAccountRequest(account=account_pb2.Account(name=name, parent_id=parent_id))
    made: account_pb2.Account = await stub.CreateAccount(request, metadata=md, timeout=RPC_TIMEOUT)
    return made


async def _finished(stub: accounts_service_pb2_grpc.AccountsServiceAsyncStub, md: Any, job_id: str) -> account_pb2.MergeJob:
    for _ in range(400):
        job: account_pb2.MergeJob = await stub.GetMergeJob(accounts_service_pb2.GetMergeJobRequest(job_id=job_id),
                                                           metadata=md, timeout=RPC_TIMEOUT)
        if job.status in ("completed", "failed"):
            return job
        await asyncio.sleep(0.025)
    raise AssertionError("merge job did not finish")


async def _exists(stub: accounts_service_pb2_grpc.AccountsServiceAsyncStub, md: Any, account_id: str) -> bool:
    try:
        await stub.GetAccount(accounts_service_pb2.GetAccountRequest(id=account_id), metadata=md, timeout=RPC_TIMEOUT)
    except grpc.aio.AioRpcError as err:
        assert err.code() == grpc.StatusCode.NOT_FOUND
        return False
    return True


def _merge_request(target: str, *sources: str) -> accounts_service_pb2.MergeAccountsRequest:
    return accounts_service_pb2.MergeAccountsRequest(target_id=target, source_ids=list(sources))


@bounded
async def test_without_contacts_the_sub_list_is_503_and_a_merge_skips_them(stack: DevStack) -> None:
    tenant = str(uuid.uuid4())
    md = _md(stack, tenant)
    async with accounts_host(stack) as host, grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
        stub = accounts_service_pb2_grpc.AccountsServiceStub(channel)
        target, source = await _account(stub, md, "Target"), await _account(stub, md, "Source")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ListAccountContacts(accounts_service_pb2.ListAccountContactsRequest(id=target.id), metadata=md, timeout=RPC_TIMEOUT)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE and _reason(err.value) == "SERVICE_NOT_DEPLOYED"
        job = await stub.MergeAccounts(_merge_request(target.id, source.id), metadata=md, timeout=RPC_TIMEOUT)
        done = await _finished(stub, md, job.job_id)
        assert done.status == "completed"
        steps = {s.name: s for s in done.steps}
        assert steps["contacts"].status == "skipped" and "contacts service is not deployed" in steps["contacts"].note
        assert steps["accounts"].status == "completed" and not await _exists(stub, md, source.id)


@bounded
async def test_a_failed_step_loses_nothing_and_the_merge_can_run_again(stack: DevStack) -> None:
    tenant = str(uuid.uuid4())
    md = _md(stack, tenant)
    fake = FakeContacts()  # type: ignore[abstract]  # a stand-in: only the rpcs accounts calls
    fake.fail = True
    async with fake_contacts(fake) as port, \
            accounts_host(stack, CRM_SERVICE_ADDRESSES=f"{CONTACTS}=127.0.0.1:{port}") as host, \
            grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
        stub = accounts_service_pb2_grpc.AccountsServiceStub(channel)
        target, source = await _account(stub, md, "Target"), await _account(stub, md, "Source")
        kid = await _account(stub, md, "Kid", parent_id=source.id)
        job = await stub.MergeAccounts(_merge_request(target.id, source.id), metadata=md, timeout=RPC_TIMEOUT)
        failed = await _finished(stub, md, job.job_id)
        assert failed.status == "failed" and failed.failure_reason == "the contacts service did not answer"
        steps = {s.name: s for s in failed.steps}
        assert steps["contacts"].status == "failed" and steps["contacts"].note == failed.failure_reason
        assert steps["accounts"].status == "pending"
        # The source is back; the child already moved stays with the target; nothing is lost.
        assert await _exists(stub, md, source.id)
        got = await stub.GetAccount(accounts_service_pb2.GetAccountRequest(id=kid.id), metadata=md, timeout=RPC_TIMEOUT)
        assert got.parent_id == target.id
        # The peer was called with a service token for this tenant that may only write contacts.
        sources, to, claims = fake.calls[0]
        assert (sources, to) == ([source.id], target.id)
        assert claims["tid"] == tenant and claims["perms"] == ["contacts:write"] and claims["svc"]
        # Once the peer is back, the same merge completes.
        fake.fail = False
        job = await stub.MergeAccounts(_merge_request(target.id, source.id), metadata=md, timeout=RPC_TIMEOUT)
        done = await _finished(stub, md, job.job_id)
        assert done.status == "completed"
        assert {s.name: (s.status, s.moved) for s in done.steps}["contacts"] == ("completed", 7)
        assert not await _exists(stub, md, source.id)


@bounded
async def test_a_merge_that_fails_while_finishing_gives_the_sources_back(stack: DevStack,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from services.accounts import rules

    def broken(*_: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(rules, "fold_sources", broken)
    tenant = str(uuid.uuid4())
    md = _md(stack, tenant)
    async with accounts_host(stack) as host, grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
        stub = accounts_service_pb2_grpc.AccountsServiceStub(channel)
        target, source = await _account(stub, md, "Target"), await _account(stub, md, "Source")
        job = await stub.MergeAccounts(_merge_request(target.id, source.id), metadata=md, timeout=RPC_TIMEOUT)
        failed = await _finished(stub, md, job.job_id)
        assert failed.status == "failed" and failed.failure_reason == "the job failed unexpectedly"
        assert {s.name: s.status for s in failed.steps}["accounts"] == "failed"
        assert await _exists(stub, md, source.id) and await _exists(stub, md, target.id)


@bounded
async def test_a_running_merge_holds_its_accounts_and_resumes_after_a_restart(stack: DevStack) -> None:
    tenant = str(uuid.uuid4())
    md = _md(stack, tenant)
    fake = FakeContacts()  # type: ignore[abstract]  # a stand-in: only the rpcs accounts calls
    fake.gate = asyncio.Event()
    env = {}
    async with fake_contacts(fake) as port:
        env["CRM_SERVICE_ADDRESSES"] = f"{CONTACTS}=127.0.0.1:{port}"
        async with accounts_host(stack, **env) as first, grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as channel:
            stub = accounts_service_pb2_grpc.AccountsServiceStub(channel)
            target, source = await _account(stub, md, "Target"), await _account(stub, md, "Source")
            other = await _account(stub, md, "Other")
            job = await stub.MergeAccounts(_merge_request(target.id, source.id), metadata=md, timeout=RPC_TIMEOUT)
            await asyncio.wait_for(fake.entered.wait(), 10)
            assert (await stub.GetMergeJob(accounts_service_pb2.GetMergeJobRequest(job_id=job.job_id),
                                           metadata=md, timeout=RPC_TIMEOUT)).status == "running"
            # The source is already gone for readers and for a second merge ...
            assert not await _exists(stub, md, source.id)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.MergeAccounts(_merge_request(other.id, source.id), metadata=md, timeout=RPC_TIMEOUT)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            # ... and the target can be neither deleted nor merged away until the merge is done.
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.DeleteAccount(accounts_service_pb2.DeleteAccountRequest(id=target.id), metadata=md, timeout=RPC_TIMEOUT)
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and _reason(err.value) == "MERGE_IN_PROGRESS"
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.MergeAccounts(_merge_request(other.id, target.id), metadata=md, timeout=RPC_TIMEOUT)
            assert _reason(err.value) == "MERGE_IN_PROGRESS"
        # The process stopped mid-merge: the job stays queued, the source stays hidden.
        fake.gate.set()
        async with accounts_host(stack, **env) as second, grpc.aio.insecure_channel(f"127.0.0.1:{second.port}") as channel:
            stub = accounts_service_pb2_grpc.AccountsServiceStub(channel)
            done = await _finished(stub, md, job.job_id)
            assert done.status == "completed" and done.counts.succeeded == 1
            assert not await _exists(stub, md, source.id) and await _exists(stub, md, target.id)
            # The contacts step ran again in the new process: idempotent, so harmless.
            assert [c[:2] for c in fake.calls] == [([source.id], target.id)] * len(fake.calls) and len(fake.calls) >= 2
            await stub.DeleteAccount(accounts_service_pb2.DeleteAccountRequest(id=target.id), metadata=md, timeout=RPC_TIMEOUT)


@bounded
async def test_contacts_without_accounts_accept_any_account_id(stack: DevStack) -> None:
    settings = Settings.from_env(stack.service_env(CRM_GRPC_LISTEN="127.0.0.1:0", CRM_SERVICES="contacts"))
    host = Host(settings, load_modules(("contacts",)))
    await host.start()
    tenant = str(uuid.uuid4())
    md = (("authorization", f"Bearer {mint(stack, tenant_id=tenant, perms=['contacts:*'])}"), ("x-tenant-id", tenant))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
            stub = contacts_service_pb2_grpc.ContactsServiceStub(channel)
            anywhere = str(uuid.uuid4())
            made = await stub.CreateContact(contacts_service_pb2.CreateContactRequest(
                contact=contact_pb2.Contact(first_name="Ann", account_id=anywhere)), metadata=md, timeout=RPC_TIMEOUT)
            assert made.account_id == anywhere
    finally:
        await host.stop(grace=1.0)
