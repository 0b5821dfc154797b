"""A deactivation or role change made in one process reaches the others over NATS: a second
process (hosting only contacts, as a separate Deployment would) refuses the user's token."""

from __future__ import annotations

import asyncio
import time

import grpc
import httpx
from crm.contacts.v1 import contacts_service_pb2, contacts_service_pb2_grpc

from services.devstack import DevStack
from services.kernel.host import Host, load_modules
from services.kernel.settings import Settings
from tests.integration.conftest import sign_up
from tests.integration.users_support import h, make_user


async def _status(stub: contacts_service_pb2_grpc.ContactsServiceAsyncStub, tokens: dict[str, str]) -> grpc.StatusCode:
    try:
        await stub.ListContacts(contacts_service_pb2.ListContactsRequest(limit=1), metadata=tuple(h(tokens).items()))
        return grpc.StatusCode.OK
    except grpc.aio.AioRpcError as err:
        return err.code()


async def _until(stub: contacts_service_pb2_grpc.ContactsServiceAsyncStub, tokens: dict[str, str],
                 wanted: grpc.StatusCode, timeout: float = 10.0) -> grpc.StatusCode:
    deadline = time.monotonic() + timeout
    code = await _status(stub, tokens)
    while code != wanted and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        code = await _status(stub, tokens)
    return code


async def test_other_process_refuses_tokens_after_deactivation_and_role_change(api: httpx.Client, stack: DevStack) -> None:
    env = stack.service_env(CRM_GRPC_LISTEN="127.0.0.1:0", CRM_SERVICES="contacts")
    host = Host(Settings.from_env(env), load_modules(("contacts",)))
    port = await host.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = contacts_service_pb2_grpc.ContactsServiceStub(channel)
            admin = await asyncio.to_thread(sign_up, api)
            user, tokens = await asyncio.to_thread(make_user, api, admin, ["sales_rep"])
            assert await _status(stub, tokens) == grpc.StatusCode.OK

            # A role change in the users service: this process learns it from NATS only.
            r = await asyncio.to_thread(api.post, f"/v1/users/{user['id']}/roles", headers=h(admin), json={"roleId": "read_only"})
            assert r.status_code == 200
            assert await _until(stub, tokens, grpc.StatusCode.UNAUTHENTICATED) == grpc.StatusCode.UNAUTHENTICATED
            await asyncio.sleep(1.1)  # whole-second `iat`: the next token must be minted after the revocation
            r = await asyncio.to_thread(api.post, "/v1/auth/token/refresh", json={"refreshToken": tokens["refresh"]})
            assert r.status_code == 200
            data = r.json()["data"]
            tokens = {"authorization": f"Bearer {data['accessToken']}", "x-tenant-id": data["tenantId"],
                      "refresh": data["refreshToken"]}
            assert await _status(stub, tokens) == grpc.StatusCode.OK

            # Deactivation: refused here too, and the refresh token is dead.
            r = await asyncio.to_thread(api.post, f"/v1/users/{user['id']}/deactivate", headers=h(admin), json={})
            assert r.status_code == 200
            assert await _until(stub, tokens, grpc.StatusCode.UNAUTHENTICATED) == grpc.StatusCode.UNAUTHENTICATED
            r = await asyncio.to_thread(api.post, "/v1/auth/token/refresh", json={"refreshToken": tokens["refresh"]})
            assert r.status_code == 401
    finally:
        await host.stop(grace=1.0)
