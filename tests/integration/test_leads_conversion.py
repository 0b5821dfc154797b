"""Lead conversion as a saga across services (and team assignment), through real Envoy.

The leads service runs in this process (so its peers are chosen here), behind its own Envoy; it
reaches the stack's real contacts service and, for accounts and deals (whose services are built
elsewhere), test peers speaking their contracts: they verify the forwarded token like a service
does, keep records per tenant, answer 404 for other tenants' ids and 422 for unknown stages. A
users peer gives team members for round-robin assignment the same way.
Contacts left behind are looked for in the real contacts service. Conversions across the
stack's real accounts and deals services are tested in test_leads_conversion_live.py.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import httpx
import pytest
from crm.accounts.v1 import account_pb2, accounts_service_pb2
from crm.contacts.v1 import contact_pb2, contacts_service_pb2, contacts_service_pb2_grpc
from crm.deals.v1 import deal_pb2, deals_service_pb2
from crm.users.v1 import user_pb2, users_service_pb2
from google.protobuf import any_pb2, empty_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from edge.envoy_config import render
from services.devstack import ROOT, DevStack, binary, free_port
from services.kernel.authn import RevokedSessions, TokenVerifier
from services.kernel.context import RequestContext
from services.kernel.db import asyncpg_dsn
from services.kernel.errors import DomainError
from services.kernel.host import Host, load_modules
from services.kernel.settings import Settings
from services.leads.peers import ACCOUNTS, CONTACTS, DEALS, USERS
from tests.integration.conftest import mint, sign_up
from tests.integration.test_contacts_rest import h

PIPELINE, STAGE, SLOW_STAGE = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
Account, Deal = account_pb2.Account, deal_pb2.Deal


@dataclass
class FakePeers:
    """Accounts and deals services as the contracts describe them, in memory."""

    verifier: TokenVerifier
    accounts: dict[str, dict[str, Message]] = field(default_factory=dict)  # tenant -> id -> account
    deals: dict[str, dict[str, Message]] = field(default_factory=dict)
    teams: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # tenant -> team id -> member ids
    calls: list[tuple[str, str]] = field(default_factory=list)  # (method, tenant)
    port: int = 0

    def caller(self, ctx: grpc.aio.ServicerContext[Any, Any], permission: str) -> RequestContext:
        md = {k: v for k, v in (ctx.invocation_metadata() or ()) if isinstance(v, str)}
        caller = self.verifier.context(md, RequestContext())
        caller.require(permission)
        return caller

    async def fail(self, ctx: grpc.aio.ServicerContext[Any, Any], err: DomainError, http: str = "") -> None:
        info = any_pb2.Any()
        info.Pack(error_details_pb2.ErrorInfo(reason=err.reason, domain="crm"))
        details = [info]
        if err.violations:
            bad = any_pb2.Any()
            bad.Pack(error_details_pb2.BadRequest(field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.message, reason=v.code)
                for v in err.violations]))
            details.append(bad)
        trailers: list[tuple[str, str | bytes]] = [("grpc-status-details-bin", status_pb2.Status(
            code=err.code.value[0], message=err.message, details=details).SerializeToString())]
        if http:
            trailers.append(("x-crm-http-status", http))
        await ctx.abort(err.code, err.message, trailing_metadata=tuple(trailers))

    async def guarded(self, ctx: grpc.aio.ServicerContext[Any, Any], permission: str) -> str:
        try:
            return self.caller(ctx, permission).tenant_id
        except DomainError as err:
            await self.fail(ctx, err)
            raise

    async def create_account(self, request: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> Message:
        tenant = await self.guarded(ctx, "accounts:write")
        self.calls.append(("CreateAccount", tenant))
        from services.kernel.errors import FieldViolation, validation
        if not request.account.name:
            await self.fail(ctx, validation([FieldViolation("name", "required", "REQUIRED")]), "422")
        account = Account(id=str(uuid.uuid4()), name=request.account.name, domain=request.account.domain,
                          owner_id=request.account.owner_id)
        self.accounts.setdefault(tenant, {})[account.id] = account
        return account

    async def get_account(self, request: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> Message:
        tenant = await self.guarded(ctx, "accounts:read")
        self.calls.append(("GetAccount", tenant))
        found = self.accounts.get(tenant, {}).get(request.id)
        if found is None:
            from services.kernel.errors import NotFound
            await self.fail(ctx, NotFound("account not found"))
        assert found is not None
        return found

    async def delete_account(self, request: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> Message:
        tenant = await self.guarded(ctx, "accounts:delete")
        self.calls.append(("DeleteAccount", tenant))
        if self.accounts.get(tenant, {}).pop(request.id, None) is None:
            from services.kernel.errors import NotFound
            await self.fail(ctx, NotFound("account not found"))
        return empty_pb2.Empty()

    async def create_deal(self, request: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> Message:
        tenant = await self.guarded(ctx, "deals:write")
        self.calls.append(("CreateDeal", tenant))
        from services.kernel.errors import FieldViolation, validation
        d = request.deal
        if d.stage_id == SLOW_STAGE:
            await asyncio.sleep(0.8)
        problems = []
        if d.pipeline_id != PIPELINE:
            problems.append(FieldViolation("pipelineId", "no such pipeline", "NOT_FOUND"))
        elif d.stage_id not in (STAGE, SLOW_STAGE, ""):
            problems.append(FieldViolation("stageId", "no such stage in this pipeline", "NOT_FOUND"))
        if d.account_id and d.account_id not in self.accounts.get(tenant, {}):
            problems.append(FieldViolation("accountId", "no such account", "NOT_FOUND"))
        if problems:
            await self.fail(ctx, validation(problems), "422")
        deal = Deal()
        deal.CopyFrom(d)
        deal.id = str(uuid.uuid4())
        self.deals.setdefault(tenant, {})[deal.id] = deal
        return deal

    async def delete_deal(self, request: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> Message:
        tenant = await self.guarded(ctx, "deals:delete")
        self.calls.append(("DeleteDeal", tenant))
        self.deals.get(tenant, {}).pop(request.id, None)
        return empty_pb2.Empty()

    async def get_team(self, request: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> Message:
        tenant = await self.guarded(ctx, "teams:read")
        members = self.teams.get(tenant, {}).get(request.id)
        if members is None:
            from services.kernel.errors import NotFound
            await self.fail(ctx, NotFound("team not found"))
        assert members is not None
        return user_pb2.Team(id=request.id, member_ids=members)

    async def get_user(self, request: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> Message:
        tenant = await self.guarded(ctx, "users:read")
        if not any(request.id in members for members in self.teams.get(tenant, {}).values()):
            from services.kernel.errors import NotFound
            await self.fail(ctx, NotFound("user not found"))
        return user_pb2.User(id=request.id)

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        def unary(fn: Any, request: type[Message]) -> grpc.RpcMethodHandler[Any, Any]:
            return grpc.unary_unary_rpc_method_handler(fn, request_deserializer=request.FromString,
                                                       response_serializer=lambda m: m.SerializeToString())
        return [
            grpc.method_handlers_generic_handler(ACCOUNTS, {
                "CreateAccount": unary(self.create_account, accounts_service_pb2.CreateAccountRequest),
                "GetAccount": unary(self.get_account, accounts_service_pb2.GetAccountRequest),
                "DeleteAccount": unary(self.delete_account, accounts_service_pb2.DeleteAccountRequest)}),
            grpc.method_handlers_generic_handler(DEALS, {
                "CreateDeal": unary(self.create_deal, deals_service_pb2.CreateDealRequest),
                "DeleteDeal": unary(self.delete_deal, deals_service_pb2.DeleteDealRequest)}),
            grpc.method_handlers_generic_handler(USERS, {
                "GetTeam": unary(self.get_team, users_service_pb2.GetTeamRequest),
                "GetUser": unary(self.get_user, users_service_pb2.GetUserRequest)}),
        ]


@dataclass
class SagaEdge:
    base_url: str
    host: Host
    peers: FakePeers


def _addresses(stack: DevStack, peers_port: int, *, deals: bool = True) -> str:
    items = [f"{CONTACTS}=127.0.0.1:{stack.grpc_port}", f"{ACCOUNTS}=127.0.0.1:{peers_port}",
             f"{USERS}=127.0.0.1:{peers_port}"]
    if deals:
        items.append(f"{DEALS}=127.0.0.1:{peers_port}")
    return ",".join(items)


async def _leads_host(stack: DevStack, addresses: str) -> Host:
    settings = Settings.from_env(stack.service_env(CRM_GRPC_LISTEN="127.0.0.1:0", CRM_SERVICES="leads",
                                                   CRM_SERVICE_ADDRESSES=addresses))
    host = Host(settings, load_modules(("leads",)))
    await host.start()
    return host


@pytest.fixture(scope="module")
async def saga(stack: DevStack, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SagaEdge]:
    saved = {k: os.environ.get(k) for k in ("CRM_LEADS_CONVERSION_TIMEOUT", "CRM_LEADS_RECOVERY_SECONDS")}
    os.environ.update(CRM_LEADS_CONVERSION_TIMEOUT="5", CRM_LEADS_RECOVERY_SECONDS="0.5")
    verifier = TokenVerifier.from_file(stack.jwks_file, issuer="crm-auth", audience="crm-api", revoked=RevokedSessions())
    peers = FakePeers(verifier)
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(peers.handlers())
    peers.port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    host = await _leads_host(stack, _addresses(stack, peers.port))
    work = Path(tmp_path_factory.mktemp("saga-edge"))
    port, admin = free_port(), free_port()
    config = work / "envoy.yaml"
    config.write_text(render(str(ROOT / "gen" / "descriptor.binpb"), listen=f"127.0.0.1:{port}", upstreams={},
                             default_upstream=f"127.0.0.1:{host.port}", jwks_file=str(stack.jwks_file), admin_port=admin,
                             transcoder_path=str(work / "transcoder.binpb"), rate_limit_service=None))
    log = open(work / "envoy.log", "ab")  # noqa: SIM115, ASYNC230 - the child owns it; a local file
    envoy = subprocess.Popen([binary("envoy"), "-c", str(config), "--log-level", "warn", "--base-id", str(admin),  # noqa: ASYNC220
                              "--concurrency", "1"], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base) as client:
        deadline = time.monotonic() + 60
        while True:
            try:
                if (await client.get("/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and envoy.poll() is None, f"envoy did not start; see {work}/envoy.log"
            await asyncio.sleep(0.1)
    yield SagaEdge(base, host, peers)
    envoy.terminate()
    envoy.wait(timeout=15)
    log.close()
    await host.stop(grace=1.0)
    await server.stop(None)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture()
async def edge(saga: SagaEdge) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=saga.base_url, timeout=30) as client:
        yield client


async def _lead(edge: httpx.AsyncClient, t: dict[str, str], **fields: Any) -> dict[str, Any]:
    r = await edge.post("/v1/leads", headers=h(t), json={"firstName": "Jane", "lastName": "Doe", **fields})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


async def _contacts_of(api: httpx.Client, t: dict[str, str], email: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await asyncio.to_thread(
        lambda: api.get(f"/v1/contacts?email={email}", headers=h(t)).json()["data"])
    return found


async def test_missing_permission_or_service_refuses_before_anything(saga: SagaEdge, edge: httpx.AsyncClient,
                                                                     api: httpx.Client, stack: DevStack) -> None:
    t = await asyncio.to_thread(sign_up, api)
    tenant = t["x-tenant-id"]
    x = await _lead(edge, t, email="perm@stark.example", company="Stark")
    no_deals = {"authorization": f"Bearer {mint(stack, tenant_id=tenant, perms=['leads:*', 'contacts:write', 'accounts:write'])}",
                "x-tenant-id": tenant}
    r = await edge.post(f"/v1/leads/{x['id']}/convert", headers=no_deals,
                        json={"createDeal": True, "pipelineId": PIPELINE, "stageId": STAGE})
    assert r.status_code == 403 and "deals:write" in r.json()["errors"][0]["message"]
    # Deals not deployed (a leads process that knows no deals service): 503 before any account.
    host = await _leads_host(stack, _addresses(stack, saga.peers.port, deals=False))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
            from crm.leads.v1 import leads_service_pb2, leads_service_pb2_grpc

            stub = leads_service_pb2_grpc.LeadsServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.ConvertLead(leads_service_pb2.ConvertLeadRequest(id=x["id"], create_deal=True, pipeline_id=PIPELINE),
                                       metadata=(("authorization", t["authorization"]), ("x-tenant-id", tenant)))
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "deals" in (err.value.details() or "")
    finally:
        await host.stop(grace=1.0)
    assert saga.peers.accounts.get(tenant, {}) == {} and [c for c in saga.peers.calls if c[1] == tenant] == []
    assert await _contacts_of(api, t, "perm@stark.example") == []
    assert (await edge.get(f"/v1/leads/{x['id']}", headers=h(t))).json()["data"]["status"] == "new"


async def _owner(stack: DevStack) -> asyncpg.Connection:
    return await asyncpg.connect(asyncpg_dsn(stack.migration_database_url))


async def test_recovery_undoes_a_conversion_that_crashed(edge: httpx.AsyncClient, saga: SagaEdge, api: httpx.Client,
                                                         stack: DevStack) -> None:
    t = await asyncio.to_thread(sign_up, api)
    tenant = t["x-tenant-id"]
    x = await _lead(edge, t, email="crash@wayne.example", company="Wayne")
    await edge.post(f"/v1/leads/{x['id']}/qualify", headers=h(t), json={})
    # What a process that died after two steps leaves: a reserved lead, a contact, an account.
    contact = await asyncio.to_thread(lambda: api.post("/v1/contacts", headers=h(t), json={"email": "crash@wayne.example"})
                                      .json()["data"]["id"])
    account = str(uuid.uuid4())
    saga.peers.accounts.setdefault(tenant, {})[account] = Account(id=account, name="Wayne")
    cid = uuid.uuid4()
    owner = await _owner(stack)
    try:
        async with owner.transaction():
            await owner.execute("UPDATE leads.leads SET status = 'converting', conversion_id = $1 WHERE id = $2", cid,
                                uuid.UUID(x["id"]))
            await owner.execute(
                "INSERT INTO leads.conversions (id, tenant_id, lead_id, state, previous_status, contact_id, account_id, "
                "account_created, started_at) VALUES ($1, $2, $3, 'running', 'qualified', $4, $5, true, now() - interval '1 hour')",
                cid, uuid.UUID(tenant), uuid.UUID(x["id"]), uuid.UUID(contact), uuid.UUID(account))
            await owner.execute("INSERT INTO leads.conversion_queue (conversion_id, tenant_id) VALUES ($1, $2)",
                                cid, uuid.UUID(tenant))
        lead: dict[str, Any] = {}
        for _ in range(100):
            lead = (await edge.get(f"/v1/leads/{x['id']}", headers=h(t))).json()["data"]
            if lead["status"] != "converting":
                break
            await asyncio.sleep(0.2)
        assert lead["status"] == "qualified" and lead["conversionId"] == ""
        assert await asyncio.to_thread(lambda: api.get(f"/v1/contacts/{contact}", headers=h(t)).status_code) == 404
        assert account not in saga.peers.accounts[tenant]
        state = await owner.fetchval("SELECT state FROM leads.conversions WHERE id = $1", cid)
        assert state == "compensated"
        assert await owner.fetchval("SELECT count(*) FROM leads.conversion_queue WHERE conversion_id = $1", cid) == 0
    finally:
        await owner.close()


async def test_a_record_whose_id_never_reached_the_log_is_found_by_its_event(edge: httpx.AsyncClient, api: httpx.Client,
                                                                            stack: DevStack) -> None:
    t = await asyncio.to_thread(sign_up, api)
    tenant = t["x-tenant-id"]
    x = await _lead(edge, t, email="ghost@acme.example")
    cid = uuid.uuid4()
    owner = await _owner(stack)
    try:
        # A saga already undone, which never learnt of a contact its last call made.
        await owner.execute(
            "INSERT INTO leads.conversions (id, tenant_id, lead_id, state, previous_status) "
            "VALUES ($1, $2, $3, 'compensated', 'new')", cid, uuid.UUID(tenant), uuid.UUID(x["id"]))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.grpc_port}") as channel:
            stub = contacts_service_pb2_grpc.ContactsServiceStub(channel)
            created = await stub.CreateContact(
                contacts_service_pb2.CreateContactRequest(contact=contact_pb2.Contact(email="ghost@acme.example")),
                metadata=(("authorization", t["authorization"]), ("x-tenant-id", tenant),
                          ("x-request-id", f"req-1.leadconv.{cid}.contact")))
        status = 200
        for _ in range(100):
            status = await asyncio.to_thread(lambda: api.get(f"/v1/contacts/{created.id}", headers=h(t)).status_code)
            if status == 404:
                break
            await asyncio.sleep(0.2)
        assert status == 404, "the orphaned contact was not deleted"
        # An ordinary contact (no conversion step in its request id) is left alone.
        plain = await asyncio.to_thread(lambda: api.post("/v1/contacts", headers=h(t), json={"email": "keep@acme.example"})
                                        .json()["data"]["id"])
        await asyncio.sleep(1.0)
        assert await asyncio.to_thread(lambda: api.get(f"/v1/contacts/{plain}", headers=h(t)).status_code) == 200
    finally:
        await owner.close()


async def test_team_round_robin_for_new_web_form_leads(edge: httpx.AsyncClient, saga: SagaEdge, api: httpx.Client) -> None:
    t, other = await asyncio.to_thread(sign_up, api), await asyncio.to_thread(sign_up, api)
    team, foreign_team = str(uuid.uuid4()), str(uuid.uuid4())
    members = sorted(str(uuid.uuid4()) for _ in range(3))
    saga.peers.teams[t["x-tenant-id"]] = {team: [members[2], members[0], members[1]]}
    saga.peers.teams[other["x-tenant-id"]] = {foreign_team: [str(uuid.uuid4())]}
    r = await edge.post("/v1/leads/assignment-rules", headers=h(t), json={"name": "Team", "teamId": foreign_team})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "teamId"  # another tenant's team does not exist here
    r = await edge.post("/v1/leads/assignment-rules", headers=h(t), json={"name": "Ghost", "userIds": [str(uuid.uuid4())]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "userIds[0]"
    r = await edge.post("/v1/leads/assignment-rules", headers=h(t), json={"name": "Team", "teamId": team})
    assert r.status_code == 201, r.text
    key = (await edge.post("/v1/leads/forms", headers=h(t), json={"name": "Site"})).json()["data"]["key"]
    owners = []
    for i in range(4):
        # No token: the capture asks the users service as the leads service itself.
        r = await edge.post("/v1/leads/capture/web-form", json={"formKey": key, "fields": {"email": f"t{i}@x.example"}})
        assert r.status_code == 202, r.text
        got = (await edge.get(f"/v1/leads/{r.json()['data']['receiptId']}", headers=h(t))).json()["data"]
        owners.append(got["ownerId"])
    assert owners == members + members[:1]  # the team's members in a stable order, in turn
