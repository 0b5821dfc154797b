"""A stack of its own for fault injection: these tests kill and restart its parts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.devstack import DevStack, free_port


@pytest.fixture(scope="module")
def fragile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    data = Path(tmp_path_factory.mktemp("fragile"))
    s = DevStack(data, http_port=free_port(), grpc_port=free_port(), nats_port=free_port(), admin_port=free_port())
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(fragile: DevStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fragile.base_url, timeout=30) as c:
        yield c
