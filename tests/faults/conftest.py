"""A stack of its own for fault injection: these tests kill and restart its parts.

The leads service runs in a process of its own ("leads"), apart from the services it calls
("services"), so a conversion can lose either side. Sagas left running count as dead after 4 s
and the recovery pass looks every half second (120 s and 30 s in production), so the tests
see a crashed conversion settle in seconds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.devstack import DevStack, free_port
from tests.integration.conftest import STACK_RATE_LIMITS

FAULT_ENV = {"CRM_LEADS_CONVERSION_TIMEOUT": "4", "CRM_LEADS_RECOVERY_SECONDS": "0.5"}


@pytest.fixture(scope="package")
def fragile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    data = Path(tmp_path_factory.mktemp("fragile"))
    s = DevStack(data, http_port=free_port(), grpc_port=free_port(), nats_port=free_port(), admin_port=free_port(),
                 apart={"leads": ("leads",)}, env=dict(FAULT_ENV), rate_limits=STACK_RATE_LIMITS)
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="package")
def client(fragile: DevStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fragile.base_url, timeout=30) as c:
        yield c


@pytest.fixture(autouse=True)
def revive(fragile: DevStack) -> Iterator[None]:
    """A test that fails between killing a component and restarting it must not fail the next
    ones too: bring back whatever process it left down."""
    yield
    for name in ("nats", "services", *fragile.apart, "ratelimit", "envoy"):
        if name not in fragile.named:
            fragile.restart(name)
