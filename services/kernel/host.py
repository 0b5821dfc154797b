"""Hosting service modules in one grpc.aio server: the process's start and stop.

A service package exposes `MODULE: ServiceModule`; `Host` migrates its schema, builds its
servicers with the shared `Runtime`, and serves them behind the kernel interceptor with
health and reflection. One process can host any set of modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from services.kernel import migrations, policy
from services.kernel.access_log import AccessLog
from services.kernel.authn import RevokedSessions, TokenVerifier
from services.kernel.clients import ServiceClients
from services.kernel.consumers import DurableConsumer, Handler
from services.kernel.db import Database
from services.kernel.events import EventBus, OutboxRelay
from services.kernel.idempotency import IdempotencyKeys
from services.kernel.interceptor import KernelInterceptor
from services.kernel.jobs import JobRunner
from services.kernel.settings import Settings
from services.kernel.usage import ApiCallMeter

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 80 * 1024 * 1024  # room for 64 MiB imports after base64-free HttpBody framing
SESSION_REVOKED = "crm.auth.session.revoked"  # data: {sessionId, until}
USER_TOKENS_REVOKED = "crm.auth.user.revoked"  # data: {userId, before, until}
DEPENDENCY_CHECK_SECONDS = 1.0
RELAY_FLUSH_SECONDS = 5.0  # at shutdown, for the events of the last rpcs


@dataclass
class Runtime:
    """What the kernel hands every service: shared, process-wide, built once."""

    settings: Settings
    db: Database
    bus: EventBus
    revoked: RevokedSessions
    verifier: TokenVerifier
    address: str = ""  # where this process serves, for calls to co-hosted services
    job_runners: list[JobRunner] = field(default_factory=list)
    clients: ServiceClients | None = None  # calls to other services (set once the port is known)
    # Long-running work of the hosted services (event consumers, periodic checks), started once
    # the server serves and cancelled when it stops.
    background_work: dict[str, Callable[[], Awaitable[None]]] = field(default_factory=dict)

    def client(self, service: str, factory: Callable[[grpc.aio.Channel], Any]) -> Any:
        assert self.clients is not None
        return self.clients.stub(service, factory)

    consumers: list[DurableConsumer] = field(default_factory=list)

    def consume(self, schema: str, name: str, subject: str, handler: Handler,
                accepts: Callable[[dict[str, Any]], bool] | None = None, *, runs: bool = False) -> None:
        """Run `handler` once per event on `subject` that `accepts` lets through; with `runs`, a
        tenant's consecutive events share a transaction (see services/kernel/consumers.py)."""
        self.consumers.append(DurableConsumer(self.db, self.bus, schema=schema, name=name, subject=subject,
                                              handler=handler, accepts=accepts, runs=runs))

    # Called when the process stops, before job runners and consumers (a module's own
    # background loops, e.g. a scheduler that starts jobs).
    stop_hooks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def on_stop(self, hook: Callable[[], Awaitable[None]]) -> None:
        self.stop_hooks.append(hook)

    def jobs(self, schema: str) -> JobRunner:
        runner = JobRunner(self.db, schema)
        self.job_runners.append(runner)
        return runner

    def background(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        """Run `work()` for the life of the process (it should loop until cancelled)."""
        self.background_work[name] = work


@dataclass(frozen=True)
class ServiceModule:
    name: str
    schema: str
    migrations: Path
    descriptors: tuple[ServiceDescriptor, ...]
    register: Callable[[grpc.aio.Server, Runtime], Awaitable[None]]
    # Modules that share a schema (auth, users and tenants share `auth`: identity is one
    # consistency boundary) keep separate migration histories in separate version tables.
    version_table: str = "alembic_version"


def load_modules(names: tuple[str, ...]) -> list[ServiceModule]:
    from services import ALL_SERVICES

    chosen = names or ALL_SERVICES
    unknown = set(chosen) - set(ALL_SERVICES)
    if unknown:
        raise SystemExit(f"unknown services: {', '.join(sorted(unknown))}")
    return [importlib.import_module(f"services.{name}.module").MODULE for name in chosen]


def load_jwks(settings: Settings) -> dict[str, object]:
    if settings.jwks_file is not None:
        loaded: dict[str, object] = json.loads(settings.jwks_file.read_text())
        return loaded
    from services.auth.keys import SigningKey

    assert settings.auth_signing_key_file is not None
    return SigningKey.load(settings.auth_signing_key_file).jwks()


def _service_signer(settings: Settings) -> Any:
    """The key background work signs its service tokens with (absent: no acting on its own)."""
    if settings.auth_signing_key_file is None or not settings.auth_signing_key_file.exists():
        return None
    from services.auth.keys import SigningKey

    return SigningKey.load(settings.auth_signing_key_file)


async def _forever(name: str, work: Callable[[], Awaitable[None]]) -> None:
    """Keep background work alive: an unexpected end or error restarts it after a pause."""
    while True:
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background work %s failed; restarting", name)
        await asyncio.sleep(1.0)


class Host:
    def __init__(self, settings: Settings, modules: list[ServiceModule]) -> None:
        self.settings = settings
        self.modules = modules
        self.server: grpc.aio.Server | None = None
        self.relay: OutboxRelay | None = None
        self.runtime: Runtime | None = None
        self.health = health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()
        self.meter = ApiCallMeter()
        self.port = 0
        self.tasks: list[asyncio.Task[None]] = []
        self.access_log: AccessLog | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._served: list[str] = [""]

    async def start(self) -> int:
        s = self.settings
        for module in self.modules:
            await asyncio.to_thread(migrations.upgrade, module.schema, module.migrations, s.migration_database_url,
                                    s.database_url, module.version_table)
        db = Database(s.database_url, pool_size=s.db_pool_size)
        await db.check_runtime_role()
        bus = EventBus(s.nats_url)
        await bus.connect()
        revoked = RevokedSessions()
        verifier = TokenVerifier(load_jwks(s), issuer=s.token_issuer, audience=s.token_audience, revoked=revoked)
        runtime = self.runtime = Runtime(settings=s, db=db, bus=bus, revoked=revoked, verifier=verifier)
        await self._follow_revocations(runtime)
        access_log = self.access_log = AccessLog(bus)
        access_log.start()

        descriptors = [d for m in self.modules for d in m.descriptors]
        server = self.server = grpc.aio.server(
            interceptors=[KernelInterceptor(policy.policies(descriptors), verifier, [access_log.observe], self.meter,
                                            IdempotencyKeys(bus), policy.post_responses(descriptors),
                                            policy.versioned_records(descriptors))],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
            ],
        )
        self.port = server.add_insecure_port(s.grpc_listen)
        host = s.grpc_listen.rsplit(":", 1)[0]
        runtime.address = f"{host}:{self.port}"
        runtime.clients = ServiceClients(s, runtime.address, {d.full_name for d in descriptors}, _service_signer(s))
        for module in self.modules:
            await module.register(server, runtime)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        names = [d.full_name for d in descriptors] + [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]
        reflection.enable_server_reflection(names, server)
        await server.start()
        self.relay = OutboxRelay(s.database_url, list(dict.fromkeys(m.schema for m in self.modules)), bus)
        self.relay.start()
        self.meter.start(bus, s.usage_flush_seconds)
        for runner in runtime.job_runners:
            await runner.resume()
        for consumer in runtime.consumers:
            await consumer.start()
        for name, work in runtime.background_work.items():
            self.tasks.append(asyncio.create_task(_forever(name, work), name=name))
        self._served = [""] + [d.full_name for d in descriptors]
        for name in self._served + ["crm.dependency.database", "crm.dependency.nats"]:
            await self._set_health(name, health_pb2.HealthCheckResponse.SERVING)
        self._watcher = asyncio.create_task(self._watch_dependencies(runtime), name="dependency-watch")
        log.info("serving %s on %s", ", ".join(m.name for m in self.modules), runtime.address)
        return self.port

    async def _watch_dependencies(self, runtime: Runtime) -> None:
        """Readiness follows the database: without it no rpc can succeed, so Envoy's health
        checks should take this process out (callers get 503 with Retry-After, not 500s).
        NATS is reported apart (`crm.dependency.nats`): while it is down writes still
        succeed and their events wait in the outbox, so the process stays in service."""
        serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
        db_up: bool | None = True
        while True:
            await asyncio.sleep(DEPENDENCY_CHECK_SECONDS)
            up = await runtime.db.ping(timeout=DEPENDENCY_CHECK_SECONDS)
            if up != db_up:
                log.warning("database %s", "reachable again" if up else "unreachable: not serving")
                for name in self._served:
                    await self._set_health(name, serving if up else not_serving)
                await self._set_health("crm.dependency.database", serving if up else not_serving)
                db_up = up
            nats_up = runtime.bus.nc is not None and runtime.bus.nc.is_connected
            await self._set_health("crm.dependency.nats", serving if nats_up else not_serving)

    async def _set_health(self, name: str, status: int) -> None:
        result = self.health.set(name, status)
        if asyncio.iscoroutine(result):
            await result

    async def _follow_revocations(self, runtime: Runtime) -> None:
        """Replay recent revocations (sessions and users), then follow new ones as they happen."""
        assert runtime.bus.js is not None
        since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.settings.access_token_ttl_seconds + 60)

        async def on_revoked(msg: Msg) -> None:
            try:
                event = json.loads(msg.data)
                data = event["data"]
                if "sessionId" in data:
                    runtime.revoked.add(data["sessionId"], float(data["until"]))
                else:
                    runtime.revoked.add_user(data["userId"], float(data["before"]), float(data["until"]))
            except (KeyError, ValueError, TypeError):
                log.warning("ignoring malformed revocation event")

        await runtime.bus.js.subscribe(
            "crm.auth.*.revoked",
            cb=on_revoked,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=since),
        )

    async def stop(self, grace: float = 10.0) -> None:
        """Stop gracefully (SIGTERM): readiness goes NOT_SERVING first, so health checks take
        the process out; new rpcs are refused (callers get UNAVAILABLE, through Envoy 503 with
        Retry-After) while in-flight ones get `grace` seconds to finish; then background work
        stops and what the process owes goes out: consumers finish the batch in hand and ack it,
        the outbox relay publishes what the last rpcs wrote, API-call counts and access-log
        entries are flushed. Jobs cut short resume in the next process (services/kernel/jobs.py)."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        with contextlib.suppress(Exception):
            # Every name, "" included, and later sets (the watcher's) are ignored.
            result = self.health.enter_graceful_shutdown()
            if asyncio.iscoroutine(result):
                await result
        if self.runtime is not None:
            # Jobs first: they call services of this process, which are about to refuse new
            # rpcs, and a job failing on that would fail for good; cut short, it resumes in the
            # next process.
            for runner in self.runtime.job_runners:
                await runner.stop()
        if self.server is not None:
            await self.server.stop(grace)
        if self.runtime is not None:
            for hook in self.runtime.stop_hooks:
                await hook()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()
        if self.runtime is not None:
            # Each waits for at most one fetch; together, not one after the other.
            await asyncio.gather(*(consumer.stop() for consumer in self.runtime.consumers))
        if self.relay is not None:
            await self.relay.stop(flush_seconds=RELAY_FLUSH_SECONDS)
        if self.runtime is not None:
            await self.meter.stop(self.runtime.bus)
            if self.access_log is not None:
                await self.access_log.stop()
            if self.runtime.clients is not None:
                await self.runtime.clients.close()
            await self.runtime.bus.close()
            await self.runtime.db.close()
