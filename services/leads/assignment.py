"""Which rule takes a lead, and which of its assignees is next: round robin, skipping anyone
at capacity. Pure: storage and the users service stay in the domain."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RuleView:
    id: str
    sources: tuple[str, ...]
    territories: tuple[str, ...]
    countries: tuple[str, ...]
    max_open_leads: int


def matches(rule: RuleView, lead: Mapping[Any, Any]) -> bool:
    """Every condition the rule sets holds for the lead (empty conditions hold for all)."""
    if rule.sources and str(lead.get("source") or "").lower() not in {s.lower() for s in rule.sources}:
        return False
    if rule.territories and str(lead.get("territory") or "").lower() not in {t.lower() for t in rule.territories}:
        return False
    return not (rule.countries and str(lead.get("country") or "").upper() not in {c.upper() for c in rule.countries})


def next_assignee(candidates: Sequence[str], last: str | None, open_leads: Mapping[str, int], capacity: int) -> str | None:
    """The candidate after `last` (cyclically) whose open leads are below `capacity` (0: none)."""
    if not candidates:
        return None
    start = (list(candidates).index(last) + 1) if last is not None and last in candidates else 0
    for offset in range(len(candidates)):
        candidate = candidates[(start + offset) % len(candidates)]
        if capacity <= 0 or open_leads.get(candidate, 0) < capacity:
            return candidate
    return None
