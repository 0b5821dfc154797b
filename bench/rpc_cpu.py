"""CPU per rpc of the services process, measured in-process: `python -m bench.rpc_cpu`.

The contacts service is hosted in this process (as tests/integration/test_inprocess_grpc.py
does) beside a DevStack's PostgreSQL and NATS; a client in a child process calls it over gRPC.
This process's CPU time (time.process_time) between the child's start and end of a measured
phase, divided by the calls made, is the server-side CPU per rpc: framework, kernel interceptor,
token checks, domain and driver, not the client. `--profile` prints the phase's cProfile.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import multiprocessing
import multiprocessing.connection
import pstats
import sys
import tempfile
import time
import uuid
from pathlib import Path

import grpc
import uvloop
from crm.contacts.v1 import contact_pb2, contacts_service_pb2, contacts_service_pb2_grpc

from services.devstack import DevStack, free_port
from services.kernel.host import Host, load_modules
from services.kernel.settings import Settings

PHASES = ("get", "create")


def _token(key_file: Path, tenant: str) -> str:
    import jwt

    from services.auth.keys import SigningKey

    key = SigningKey.load(key_file)
    now = int(time.time())
    claims = {"iss": "crm-auth", "aud": "crm-api", "sub": str(uuid.uuid4()), "tid": tenant, "sid": str(uuid.uuid4()),
              "roles": ["admin"], "perms": ["*"], "iat": now, "nbf": now, "exp": now + 3600}
    return jwt.encode(claims, key.private, algorithm="EdDSA", headers={"kid": key.kid})


def _client(port: int, token: str, tenant: str, phase: str, calls: int, concurrency: int,
            pipe: multiprocessing.connection.Connection) -> None:
    """The child: warm up, say "go", make `calls` rpcs `concurrency` at a time, say "done"."""
    md = (("authorization", f"Bearer {token}"), ("x-tenant-id", tenant))

    async def run() -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = contacts_service_pb2_grpc.ContactsServiceStub(channel)
            seed = await stub.CreateContact(contacts_service_pb2.CreateContactRequest(contact=contact_pb2.Contact(
                first_name="Ada", last_name="Lovelace", email="ada@example.com", phone="+44 20 7946 0000",
                company="Analytical", tags=["vip"])), metadata=md)
            counter = iter(range(calls + 200))

            async def one(i: int) -> None:
                if phase == "get":
                    await stub.GetContact(contacts_service_pb2.GetContactRequest(id=seed.id), metadata=md)
                else:
                    await stub.CreateContact(contacts_service_pb2.CreateContactRequest(contact=contact_pb2.Contact(
                        first_name=f"N{i}", last_name="Bench", email=f"n{i}.{uuid.uuid4().hex[:6]}@example.com",
                        phone="+1 555 010 0000", company="Bench Inc", tags=["bench"])), metadata=md)

            async def worker(limit: int) -> None:
                for i in counter:
                    if i >= limit:
                        return
                    await one(i)

            await asyncio.gather(*(worker(200) for _ in range(concurrency)))  # warm-up
            counter = iter(range(calls))
            pipe.send("go")
            pipe.recv()
            await asyncio.gather(*(worker(calls) for _ in range(concurrency)))
            pipe.send("done")

    uvloop.run(run())


async def measure(host: Host, stack: DevStack, phase: str, calls: int, concurrency: int, profile: bool) -> float:
    tenant = str(uuid.uuid4())
    token = _token(stack.key_file, tenant)
    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.get_context("spawn").Process(
        target=_client, args=(host.port, token, tenant, phase, calls, concurrency, theirs))
    child.start()
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, ours.recv) == "go"
    profiler = cProfile.Profile() if profile else None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    ours.send("start")
    assert await loop.run_in_executor(None, ours.recv) == "done"
    if profiler:
        profiler.disable()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await loop.run_in_executor(None, child.join)
    per_call = cpu / calls * 1e6
    print(f"{phase}: {calls} rpcs, concurrency {concurrency}: {per_call:,.0f} µs CPU per rpc "
          f"({calls / wall:,.0f} rpc/s, server CPU {cpu / wall:.0%} of one core)", flush=True)
    if profiler:
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(35)
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(50)
    return per_call


async def main_async(args: argparse.Namespace, stack: DevStack) -> None:
    settings = Settings.from_env(stack.service_env(CRM_GRPC_LISTEN="127.0.0.1:0", CRM_SERVICES="contacts"))
    host = Host(settings, load_modules(("contacts",)))
    await host.start()
    try:
        for phase in args.phases:
            for _ in range(args.repeat):
                await measure(host, stack, phase, args.calls, args.concurrency, args.profile)
    finally:
        await host.stop(grace=1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="measured runs per phase")
    parser.add_argument("--profile", action="store_true", help="print each run's cProfile")
    parser.add_argument("phases", nargs="*", default=list(PHASES), help=f"of {PHASES}")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crm-rpc-cpu-") as data:
        stack = DevStack(Path(data), grpc_port=free_port(), nats_port=free_port(), admin_port=free_port())
        try:
            stack.start_postgres()
            stack.start_nats()
            stack.start_mail()
            stack.ensure_keys()
            stack.start_services()  # runs the migrations
            uvloop.run(main_async(args, stack))
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
