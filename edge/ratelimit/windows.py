"""Fixed windows per key, held in this process's memory.

A key's window opens at its first counted call and lasts the limit's window, so windows of
different users do not all reset on the same clock tick (no herd at the top of the hour). The
known cost of fixed windows: a caller can spend a full budget at the end of one window and
another at the start of the next. For hourly budgets that is acceptable; a sliding window would
need per-call timestamps or a weighted previous window for the same guarantee.

One process counts for every Envoy instance, which is what makes the budget global. To run
several replicas of the service, the two dict operations below become one atomic call on a
shared store (Redis `INCRBY` + `PEXPIRE` in a script, keyed the same way); nothing else changes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge.ratelimit.limits import Limit

SWEEP_EVERY = 10_000  # calls between sweeps of expired windows (bounds memory to active keys)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    remaining: int  # calls left in the window after this one (0 when refused)
    reset_after: int  # whole seconds until the window closes (rounded up, at least 1)


class FixedWindows:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, list[float]] = {}  # key -> [closes_at, count]
        self._calls = 0

    def __len__(self) -> int:
        return len(self._windows)

    def peek(self, key: str, limit: Limit, hits: int = 1) -> Verdict:
        """Would `hits` more calls fit? Counts nothing."""
        now = self._clock()
        window = self._windows.get(key)
        if window is None or window[0] <= now:
            closes_at, count = now + limit.window, 0
        else:
            closes_at, count = window[0], int(window[1])
        reset_after = max(1, math.ceil(closes_at - now))
        if count + hits > limit.requests:
            return Verdict(False, max(0, limit.requests - count), reset_after)
        return Verdict(True, limit.requests - count - hits, reset_after)

    def take(self, key: str, limit: Limit, hits: int = 1) -> None:
        """Count `hits` calls (after peek() allowed them)."""
        now = self._clock()
        window = self._windows.get(key)
        if window is None or window[0] <= now:
            self._windows[key] = [now + limit.window, hits]
        else:
            window[1] += hits
        self._calls += 1
        if self._calls % SWEEP_EVERY == 0:
            self.sweep()

    def hit(self, key: str, limit: Limit, hits: int = 1) -> Verdict:
        """Count the calls if they fit; refused calls are not counted."""
        verdict = self.peek(key, limit, hits)
        if verdict.allowed:
            self.take(key, limit, hits)
        return verdict

    def sweep(self) -> None:
        """Forget windows that have closed."""
        now = self._clock()
        for key in [k for k, w in self._windows.items() if w[0] <= now]:
            del self._windows[key]
