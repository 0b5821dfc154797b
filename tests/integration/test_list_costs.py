"""What reads cost the database, and lists that stay right at any depth.

Contacts and accounts are hosted in this process with their database reached through a
counting proxy (tests/integration/pgwire.py), so the statements and round trips PostgreSQL
receives per rpc are counted where they arrive: BEGIN, COMMIT and set_config included.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import asyncpg
import grpc
import httpx
import pytest
from crm.accounts.v1 import account_pb2, accounts_service_pb2, accounts_service_pb2_grpc
from crm.contacts.v1 import contact_pb2, contacts_service_pb2, contacts_service_pb2_grpc

from services.accounts.domain import LIST_SPEC as ACCOUNTS_SPEC
from services.accounts.tables import accounts
from services.contacts.domain import LIST_SPEC as CONTACTS_SPEC
from services.contacts.tables import contacts
from services.devstack import DevStack
from services.kernel import listing
from services.kernel.db import compile_for_asyncpg
from services.kernel.host import Host, load_modules
from services.kernel.settings import Settings
from tests.integration.conftest import mint, sign_up
from tests.integration.pgwire import CountingProxy, Counts
from tests.integration.test_contacts_rest import h

PERMS = ["contacts:*", "accounts:*"]


def _socket(url: str) -> Path:
    folder = Path(parse_qs(urlsplit(url).query)["host"][0])
    return next(p for p in folder.glob(".s.PGSQL.*") if not p.name.endswith(".lock"))


def _via(url: str, folder: Path) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return urlunsplit(parts._replace(query=urlencode({**query, "host": str(folder)})))


@pytest.fixture()
async def proxied(stack: DevStack, tmp_path: Path) -> AsyncIterator[tuple[Host, CountingProxy]]:
    proxy = await CountingProxy(_socket(stack.database_url), tmp_path).start()
    settings = Settings.from_env(stack.service_env(
        CRM_GRPC_LISTEN="127.0.0.1:0", CRM_SERVICES="contacts,accounts",
        CRM_DATABASE_URL=_via(stack.database_url, tmp_path)))
    host = Host(settings, load_modules(("contacts", "accounts")))
    await host.start()
    yield host, proxy
    await host.stop(grace=1.0)
    await proxy.stop()


async def _quiet(proxy: CountingProxy, gap: float = 0.05, timeout: float = 3.0) -> None:
    """Until the database has received nothing for `gap` seconds (the relay done with the last
    call's events, no readiness ping under way)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        before = proxy.snapshot().round_trips
        await asyncio.sleep(gap)
        if proxy.snapshot().round_trips == before:
            return


async def _cheapest(proxy: CountingProxy, call: object, runs: int = 5, *, settle: bool = True) -> Counts:
    """What one call costs the database: the least of several runs, each started once the
    database is quiet (`settle`), so background work (readiness pings, the relay's outbox
    polls) that falls into a run is not charged to the rpc. Writes run back to back instead:
    an idle relay wakes on a write's commit and would start its pass inside every settled run."""
    assert callable(call)
    await call()  # prepared statements and connections warm
    best: Counts | None = None
    for _ in range(runs):
        if settle:
            await _quiet(proxy)
        before = proxy.snapshot()
        await call()
        spent = proxy.snapshot().since(before)
        if best is None or spent.statements < best.statements:
            best = spent
    assert best is not None
    return best


async def test_a_get_costs_two_statements_and_a_list_page_three(proxied: tuple[Host, CountingProxy],
                                                                  stack: DevStack) -> None:
    host, proxy = proxied
    tenant = str(uuid.uuid4())
    md = (("authorization", f"Bearer {mint(stack, tenant_id=tenant, perms=PERMS)}"), ("x-tenant-id", tenant))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
        people = contacts_service_pb2_grpc.ContactsServiceStub(channel)
        firms = accounts_service_pb2_grpc.AccountsServiceStub(channel)
        ids = [(await people.CreateContact(contacts_service_pb2.CreateContactRequest(
            contact=contact_pb2.Contact(first_name=f"P{i}", email=f"p{i}@ex.com")), metadata=md)).id for i in range(3)]
        firm = [(await firms.CreateAccount(accounts_service_pb2.CreateAccountRequest(
            account=account_pb2.Account(name=f"Firm {i}")), metadata=md)).id for i in range(2)]

        async def get_contact() -> None:
            assert (await people.GetContact(contacts_service_pb2.GetContactRequest(id=ids[0]), metadata=md)).id == ids[0]

        async def list_contacts() -> None:  # a page with more after it: the page, then the count
            page = await people.ListContacts(contacts_service_pb2.ListContactsRequest(limit=2), metadata=md)
            assert len(page.contacts) == 2 and page.pagination.total == 3

        async def list_all_contacts() -> None:  # everything fits: the page tells the total
            page = await people.ListContacts(contacts_service_pb2.ListContactsRequest(limit=10), metadata=md)
            assert page.pagination.total == 3 and not page.pagination.has_next

        async def get_account() -> None:
            assert (await firms.GetAccount(accounts_service_pb2.GetAccountRequest(id=firm[0]), metadata=md)).id == firm[0]

        async def list_accounts() -> None:
            page = await firms.ListAccounts(accounts_service_pb2.ListAccountsRequest(limit=1, sort="name"), metadata=md)
            assert [a.name for a in page.accounts] == ["Firm 0"] and page.pagination.total == 2

        for call, most in ((get_contact, 2), (list_contacts, 3), (list_all_contacts, 2), (get_account, 2),
                           (list_accounts, 3)):
            spent = await _cheapest(proxy, call)
            assert 1 <= spent.statements <= most and spent.round_trips <= most, (call.__name__, spent)


async def test_totals_stop_counting_at_the_cap_and_deep_pages_keep_their_order(
        proxied: tuple[Host, CountingProxy], stack: DevStack, monkeypatch: pytest.MonkeyPatch) -> None:
    host, _ = proxied
    tenant = str(uuid.uuid4())
    md = (("authorization", f"Bearer {mint(stack, tenant_id=tenant, perms=PERMS)}"), ("x-tenant-id", tenant))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
        people = contacts_service_pb2_grpc.ContactsServiceStub(channel)
        # Twelve contacts, three sharing each last name, so the sort's id tie-break matters.
        await people.BulkUpsertContacts(contacts_service_pb2.BulkUpsertContactsRequest(items=[
            contact_pb2.Contact(first_name=f"F{i}", last_name=f"L{i % 4}") for i in range(12)]), metadata=md)

        async def page(limit: int, page: int = 0, page_token: str = "") -> contacts_service_pb2.ListContactsResponse:
            return await people.ListContacts(contacts_service_pb2.ListContactsRequest(
                sort="lastName", limit=limit, page=page, page_token=page_token), metadata=md)

        exact = await page(limit=5)
        assert (exact.pagination.total, exact.pagination.total_capped) == (12, False)
        by_offset = [c.id for n in range(1, 5) for c in (await page(limit=3, page=n)).contacts]
        assert len(set(by_offset)) == 12

        monkeypatch.setattr(listing, "COUNT_CAP", 5)
        first = await page(limit=3)
        assert (first.pagination.total, first.pagination.total_capped, first.pagination.has_next) == (5, True, True)
        third = await page(limit=3, page=3)  # rows 7-9 exist and one more: at least 10
        assert (third.pagination.total, third.pagination.total_capped) == (10, True)
        last = await page(limit=3, page=4)  # the last page tells the exact total, cap or not
        assert (last.pagination.total, last.pagination.total_capped, last.pagination.has_next) == (12, False, False)
        assert [c.id for c in last.contacts] == by_offset[9:]

        by_token, token = [], ""
        while True:
            got = await page(limit=5, page_token=token)
            by_token += [c.id for c in got.contacts]
            token = got.pagination.next_page_token
            if not token:
                break
        assert by_token == by_offset  # keyset and offset pages agree on every row and its place
        names = {c.id: c.last_name for n in range(1, 5) for c in (await page(limit=3, page=n)).contacts}
        assert by_offset == sorted(by_offset, key=lambda i: (names[i], uuid.UUID(i)))


def test_rest_pagination_says_whether_the_total_is_exact(api: httpx.Client) -> None:
    tenant = sign_up(api)
    api.post("/v1/contacts", headers=h(tenant), json={"firstName": "Only"})
    pagination = api.get("/v1/contacts", headers=h(tenant)).json()["meta"]["pagination"]
    assert pagination == {**pagination, "total": 1, "totalCapped": False, "hasNext": False}


@pytest.mark.parametrize(("table", "spec"), [(contacts, CONTACTS_SPEC), (accounts, ACCOUNTS_SPEC)],
                         ids=["contacts", "accounts"])
async def test_every_offered_sort_reads_an_index_under_row_level_security(stack: DevStack, table: object,
                                                                          spec: listing.ListSpec) -> None:
    """With sequential scans and sorts priced out, a plan that still sorts has no usable index."""
    from sqlalchemy import select

    conn = await asyncpg.connect(stack.database_url)  # the runtime role: RLS applies
    try:
        await conn.execute(f"SELECT set_config('app.tenant_id', '{uuid.uuid4()}', false), "
                           "set_config('app.read_owners', '*', false), set_config('app.write_owners', '*', false), "
                           "set_config('enable_seqscan', 'off', false), set_config('enable_sort', 'off', false)")
        for name, f in spec.fields.items():
            if not f.sortable:
                continue
            for sort in (name, f"-{name}"):
                order = listing.order_by(spec, sort)
                stmt = select(spec.id_column).select_from(table).order_by(*order).limit(51)  # type: ignore[arg-type]
                sql, args = compile_for_asyncpg(stmt)
                plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql, *args))
                assert "Index" in plan and "Sort" not in plan, (sort, plan)
    finally:
        await conn.close()


async def test_a_callers_next_get_skips_the_settings_and_a_create_begins_with_them(
        proxied: tuple[Host, CountingProxy], stack: DevStack) -> None:
    """A pooled read connection remembers whose settings its session holds: the same caller's
    next get is its one query. Another caller on the same connections still gets the settings
    (and sees nothing of the first tenant). A create sends BEGIN with the settings in one round
    trip, then its inserts and COMMIT."""
    host, proxy = proxied
    tenants = [str(uuid.uuid4()) for _ in range(2)]
    mds = [(("authorization", f"Bearer {mint(stack, tenant_id=t, perms=PERMS)}"), ("x-tenant-id", t)) for t in tenants]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
        people = contacts_service_pb2_grpc.ContactsServiceStub(channel)
        created: list[str] = []

        async def create() -> None:
            created.append((await people.CreateContact(contacts_service_pb2.CreateContactRequest(
                contact=contact_pb2.Contact(first_name="Ada", email=f"a{len(created)}@ex.com")), metadata=mds[0])).id)

        spent = await _cheapest(proxy, create, settle=False)
        # BEGIN goes out with the settings in one simple query, the inserts as prepared
        # statements, then COMMIT: no separate BEGIN or set_config round trip.
        assert [q.split(";")[0] for q in spent.queries] == ["BEGIN READ WRITE", "COMMIT"], spent
        assert "set_config('app.tenant_id'" in spent.queries[0], spent
        mine = created[0]

        async def get_mine() -> None:
            assert (await people.GetContact(contacts_service_pb2.GetContactRequest(id=mine), metadata=mds[0])).id == mine

        spent = await _cheapest(proxy, get_mine)
        assert (spent.statements, spent.round_trips) == (1, 1), spent
        for _ in range(3):  # the other tenant on the same connections: its settings, not the first's
            before = proxy.snapshot()
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await people.GetContact(contacts_service_pb2.GetContactRequest(id=mine), metadata=mds[1])
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
            assert any("set_config" in q for q in proxy.snapshot().since(before).queries)
            await get_mine()
