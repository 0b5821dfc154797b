"""Throttling of guessable secrets: passwords per account and per client address, MFA codes
per user.

Every attempt is counted before the secret is checked (so a burst of parallel guesses cannot
slip past the limit) and forgiven when it succeeds. Past `free` failures inside the window each
further attempt blocks the key for an exponentially growing time, up to `cap`; a blocked key is
answered 429 with Retry-After without looking at the secret. Counters live in PostgreSQL so
every process and replica shares them, keyed by a hash (no addresses stored in clear). The same
answer comes for an unknown account, so throttling reveals nothing about which accounts exist.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import secrets
from dataclasses import dataclass

from sqlalchemy import text

from services.kernel import context
from services.kernel.db import Database
from services.kernel.errors import ResourceExhausted


@dataclass(frozen=True)
class Rule:
    free: int  # failures allowed inside the window before blocking starts
    base: float  # seconds of the first block
    cap: float  # longest block
    window: float  # seconds after which a key's failures are forgotten

    def block_for(self, failures: int) -> float:
        """Seconds to block after the `failures`-th failure (0 while still free)."""
        if failures <= self.free:
            return 0.0
        return min(self.base * 2 ** (failures - self.free - 1), self.cap)


# An account gets 5 free tries, then 1 s, 2 s, 4 s ... up to 15 min between tries. An address
# gets many more (offices, schools and mobile carriers put many people behind one address)
# before the same backoff: it stops one machine spraying guesses over many accounts.
ACCOUNT = Rule(free=5, base=1.0, cap=900.0, window=900.0)
ADDRESS = Rule(free=100, base=1.0, cap=900.0, window=900.0)
MFA_CODE = Rule(free=5, base=2.0, cap=900.0, window=900.0)


class Throttled(ResourceExhausted):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many attempts; try again in {retry_after} s", reason="TOO_MANY_ATTEMPTS",
                         metadata={"retryAfter": str(retry_after)})
        self.retry_after = retry_after


def _key(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


class Throttle:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def attempt(self, keys: list[tuple[str, Rule]]) -> None:
        """Count one attempt on every key, or raise Throttled if any of them is blocked now."""
        retry = 0.0
        async with self.db.transaction(tenant_id="") as conn:
            now: dt.datetime = (await conn.execute(text("SELECT now()"))).scalar_one()
            if secrets.randbelow(100) == 0:  # now and then, forget keys long quiet
                await conn.execute(text("DELETE FROM auth.throttle WHERE window_start < now() - interval '1 day' "
                                        "AND (blocked_until IS NULL OR blocked_until < now())"))
            rows = []
            for name, rule in sorted(keys):  # fixed lock order: no deadlocks between attempts
                key = _key(name)
                await conn.execute(text("INSERT INTO auth.throttle (key) VALUES (:k) ON CONFLICT DO NOTHING"),
                                   {"k": key})
                row = (await conn.execute(text("SELECT * FROM auth.throttle WHERE key = :k FOR UPDATE"),
                                          {"k": key})).mappings().one()
                rows.append((key, rule, row))
                if row["blocked_until"] is not None and row["blocked_until"] > now:
                    retry = max(retry, (row["blocked_until"] - now).total_seconds())
            if retry <= 0:
                for key, rule, row in rows:
                    expired = (now - row["window_start"]).total_seconds() > rule.window
                    failures = 1 if expired else row["failures"] + 1
                    block = rule.block_for(failures)
                    await conn.execute(
                        text("UPDATE auth.throttle SET failures = :f, window_start = :w, blocked_until = :b "
                             "WHERE key = :k"),
                        {"f": failures, "w": now if expired else row["window_start"],
                         "b": now + dt.timedelta(seconds=block) if block else None, "k": key},
                    )
        if retry > 0:
            seconds = max(1, math.ceil(retry))
            context.set_response_header("retry-after", str(seconds))
            raise Throttled(seconds)

    async def succeeded(self, keys: list[tuple[str, Rule]], *, forget: tuple[str, ...] = ()) -> None:
        """The secret was right: forget the keys in `forget`, take one failure off the others."""
        async with self.db.transaction(tenant_id="") as conn:
            for name, rule in sorted(keys):
                if name in forget:
                    await conn.execute(text("DELETE FROM auth.throttle WHERE key = :k"), {"k": _key(name)})
                    continue
                await conn.execute(
                    text("UPDATE auth.throttle SET failures = greatest(failures - 1, 0), "
                         "blocked_until = CASE WHEN failures - 1 <= :free THEN NULL ELSE blocked_until END "
                         "WHERE key = :k"),
                    {"k": _key(name), "free": rule.free},
                )
