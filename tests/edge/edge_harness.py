"""Start real Envoy on a rendered config, and mint test tokens (Ed25519 / EdDSA)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.envoy_config import render

REPO = Path(__file__).resolve().parents[2]
DESCRIPTOR = REPO / "gen" / "descriptor.binpb"
def _find_envoy() -> Path:
    if os.environ.get("ENVOY_BIN"):
        return Path(os.environ["ENVOY_BIN"])
    for candidate in (REPO / ".venv" / "bin" / "envoy", Path(sys.prefix) / "bin" / "envoy"):
        if candidate.exists():
            return candidate
    found = shutil.which("envoy")
    return Path(found) if found else REPO / ".venv" / "bin" / "envoy"


ENVOY = _find_envoy()
KID = "edge-test-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class Signer:
    """An Ed25519 key; `jwks()` publishes its public half."""

    key: Ed25519PrivateKey
    kid: str = KID

    @classmethod
    def new(cls, kid: str = KID) -> Signer:
        return cls(Ed25519PrivateKey.generate(), kid)

    def jwks(self) -> dict[str, Any]:
        raw = self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": self.kid, "x": _b64url(raw)}]}

    def token(self, **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": "crm-auth",
            "aud": "crm-api",
            "sub": "u-1",
            "tid": "tenant-a",
            "iat": now,
            "exp": now + 600,
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.key, algorithm="EdDSA", headers={"kid": self.kid})


class Envoy:
    """One Envoy process on a config from edge.envoy_config.render()."""

    def __init__(
        self, workdir: Path, upstream: str, jwks_file: Path, *, rate_limit_service: str | None = None, **render_args: Any
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.admin_port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "envoy.yaml"
        self.config.write_text(
            render(
                DESCRIPTOR,
                listen=f"127.0.0.1:{self.port}",
                upstreams={},
                default_upstream=upstream,
                jwks_file=jwks_file,
                admin_port=self.admin_port,
                transcoder_path=workdir / "transcoder.binpb",
                rate_limit_service=rate_limit_service,  # never the default port: another stack may own it
                **render_args,
            )
        )
        self.log = workdir / "envoy.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait_healthy: bool = True, timeout: float = 30.0) -> Envoy:
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [str(ENVOY), "-c", str(self.config), "--disable-hot-restart", "--concurrency", "1",
                 "--log-level", "warn", "--log-path", str(self.workdir / "envoy.err")],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"envoy exited {self.proc.returncode}: {self.errors()}")
            try:
                r = httpx.get(f"{self.url}/healthz", timeout=1)
                if r.status_code == 200 or (not wait_healthy and r.status_code == 503):
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"envoy not ready in {timeout}s: {self.errors()}")

    def errors(self) -> str:
        err = self.workdir / "envoy.err"
        return (err.read_text() if err.exists() else "")[-4000:]

    def lua_errors(self) -> list[str]:
        """Script errors of the envelope filter (a failing script lets answers through unwrapped)."""
        err = self.workdir / "envoy.err"
        return [line for line in (err.read_text() if err.exists() else "").splitlines() if "[lua]" in line]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


class RateLimitService:
    """`python -m edge.ratelimit` in a process of its own, as devstack runs it."""

    def __init__(self, workdir: Path, limits: str = "") -> None:
        self.workdir = workdir
        self.limits = limits
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> RateLimitService:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "gen" / "python")])}
        with (self.workdir / "ratelimit.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "edge.ratelimit", "--listen", self.address, "--limits", self.limits],
                stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rate-limit service exited {self.proc.returncode}: {self.log()}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"rate-limit service not listening in {timeout}s: {self.log()}")

    def log(self) -> str:
        path = self.workdir / "ratelimit.log"
        return (path.read_text() if path.exists() else "")[-4000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


def write_jwks(path: Path, *signers: Signer) -> Path:
    path.write_text(json.dumps({"keys": [k for s in signers for k in s.jwks()["keys"]]}))
    return path


TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LEAKY_PREFIXES = ("grpc-", "x-crm-", "x-envoy-", "x-jwt-")


def leaked_headers(headers: httpx.Headers) -> list[str]:
    """Response headers the client must never see."""
    return [k for k in headers if k.lower().startswith(LEAKY_PREFIXES) or k.lower() == "server"]


def envelope(resp: httpx.Response, status: int, *, success: bool) -> dict[str, Any]:
    """Assert `resp` is the REST envelope with this status and return the parsed body."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    assert not leaked_headers(resp.headers), resp.headers
    body = resp.json()
    assert list(body) == ["success", "data", "meta", "errors"], body
    assert body["success"] is success
    meta = body["meta"]
    assert set(meta) <= {"timestamp", "version", "requestId", "pagination"}, meta
    assert TIMESTAMP.match(meta["timestamp"]), meta
    assert meta["version"] == "v1"
    assert meta["requestId"] == resp.headers["x-request-id"] != ""
    if success:
        assert body["errors"] == []
    else:
        assert body["data"] is None
        assert body["errors"], body
        for err in body["errors"]:
            assert set(err) == {"code", "message", "field"}, err
            assert re.fullmatch(r"[A-Z][A-Z0-9_]*", err["code"]), err
    return body


def error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert a one-error envelope with this status and code; return the error."""
    body = envelope(resp, status, success=False)
    assert [e["code"] for e in body["errors"]] == [code], body
    return dict(body["errors"][0])
