"""Which budget a call counts against, and how large it is.

Budgets are per user (or per client address on public routes) per endpoint class: the
`standard` class takes its size from the caller's tier (JWT claim `tier`), the `bulk` class
(bulk writes, imports, exports: `rate_class: "bulk"` in an rpc's policy) has one size for every
tier, because those calls cost the same whoever makes them.

A spec names the sizes, e.g. `standard=1000/h,premium=5000/h,api_integration=10000/h,bulk=100/h`
(the seed's tiers, the default); a partial spec overrides only what it names. A window is a
count and a unit (`s`, `m`, `h`, `d`): `3/2s` is three calls per two seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TIERS = ("standard", "premium", "api_integration")
DEFAULT_TIER = "standard"
STANDARD_CLASS = "standard"
BULK_CLASS = "bulk"
CLASSES = (STANDARD_CLASS, BULK_CLASS)
DEFAULT_SPEC = "standard=1000/h,premium=5000/h,api_integration=10000/h,bulk=100/h"

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_LIMIT = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")


@dataclass(frozen=True)
class Limit:
    """`requests` calls per `window` seconds, under the budget `name`."""

    requests: int
    window: int
    name: str = ""


def parse_limit(text: str, name: str = "") -> Limit:
    m = _LIMIT.match(text)
    if not m:
        raise ValueError(f"{name or 'limit'}: {text!r} is not COUNT/[N]UNIT (unit s, m, h or d), e.g. 1000/h")
    requests, count, unit = int(m.group(1)), int(m.group(2) or "1"), m.group(3)
    if requests < 1 or count < 1:
        raise ValueError(f"{name or 'limit'}: {text!r} must allow at least one call in a window of at least 1{unit}")
    return Limit(requests, count * _UNITS[unit], name)


@dataclass(frozen=True)
class Limits:
    """The size of every budget."""

    tiers: dict[str, Limit]  # every tier of TIERS
    bulk: Limit

    @classmethod
    def parse(cls, spec: str | None = None) -> Limits:
        """The default sizes, overridden by `spec` (`name=COUNT/WINDOW`, comma-separated)."""
        sizes: dict[str, Limit] = {}
        for text in (DEFAULT_SPEC, spec or ""):
            for item in (s.strip() for s in text.split(",")):
                if not item:
                    continue
                name, sep, value = item.partition("=")
                name = name.strip()
                if not sep:
                    raise ValueError(f"{item!r}: want NAME=COUNT/WINDOW, e.g. premium=5000/h")
                if name not in (*TIERS, BULK_CLASS):
                    raise ValueError(f"{name!r} is not a tier ({', '.join(TIERS)}) nor {BULK_CLASS!r}")
                sizes[name] = parse_limit(value, name)
        return cls(tiers={t: sizes[t] for t in TIERS}, bulk=sizes[BULK_CLASS])

    def for_call(self, rate_class: str, tier: str) -> Limit:
        """The budget of a call of this class by a caller of this tier (unknown tier: standard)."""
        if rate_class == BULK_CLASS:
            return self.bulk
        return self.tiers.get(tier) or self.tiers[DEFAULT_TIER]

    def describe(self) -> str:
        return ",".join(f"{n}={lim.requests}/{lim.window}s" for n, lim in (*self.tiers.items(), (BULK_CLASS, self.bulk)))
