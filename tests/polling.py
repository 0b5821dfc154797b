"""The one way tests wait for something that happens later (events over NATS, jobs, restarts):
fetch a value until it is acceptable or the time is up, then hand back the last value so the
test's own assert says what was seen. Importable from every test folder (`tests.polling`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def until(fetch: Callable[[], T], ok: Callable[[T], object] = bool, *, timeout: float = 15.0,
          interval: float = 0.05) -> T:
    """`fetch()` again every `interval` seconds until `ok(value)` holds or `timeout` passes;
    the last value fetched either way. `until(check)` waits for a truthy answer."""
    deadline = time.monotonic() + timeout
    value = fetch()
    while not ok(value) and time.monotonic() < deadline:
        time.sleep(interval)
        value = fetch()
    return value
