"""The plan catalogue: the one place that says what each plan costs, includes and allows.

Identity (token tiers), the tenants service (features, limits, invoices) and anything else that
asks "what may this tenant do" read it from here. Prices are Decimals per seat (active user) and
month; money never passes through a float.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

CURRENCY = "USD"

# Feature flags a plan can include, with what they give.
FEATURES: Mapping[str, str] = MappingProxyType({
    "customFields": "Custom fields on records",
    "apiAccess": "REST and gRPC API access with API keys and OAuth clients",
    "workflows": "Workflow automation",
    "advancedReporting": "Custom reports and dashboards",
    "customRoles": "Custom roles with chosen permissions",
    "auditLog": "Audit log of every change",
    "aiInsights": "AI lead scoring and insights",
    "sso": "Single sign-on (SAML, OpenID Connect)",
    "sandbox": "A sandbox copy of the tenant",
})

# Numeric limits a plan sets a maximum for (0 never means unlimited: every limit is finite).
LIMITS: Mapping[str, str] = MappingProxyType({
    "users": "Active users (seats)",
    "records": "CRM records (contacts, accounts, leads, deals, activities ...)",
    "storageMb": "Stored files, in megabytes",
    "apiCallsPerMonth": "API calls per billing period",
})


@dataclass(frozen=True)
class Plan:
    key: str
    name: str
    price_per_seat: Decimal  # per active user and month
    tier: str  # rate-limit tier of the plan's tokens (the edge's standard/premium classes)
    features: frozenset[str]
    limits: Mapping[str, int]
    rank: int  # order of the plans: a higher rank is an upgrade


def _plan(key: str, name: str, price: str, tier: str, rank: int, features: set[str], **limits: int) -> Plan:
    assert features <= set(FEATURES) and set(limits) == set(LIMITS), key
    return Plan(key, name, Decimal(price), tier, frozenset(features), MappingProxyType(limits), rank)


_FREE = {"customFields"}
_STANDARD = _FREE | {"apiAccess", "workflows"}
_PROFESSIONAL = _STANDARD | {"advancedReporting", "customRoles", "auditLog", "aiInsights"}
_ENTERPRISE = _PROFESSIONAL | {"sso", "sandbox"}

PLANS: Mapping[str, Plan] = MappingProxyType({p.key: p for p in (
    _plan("free", "Free", "0.00", "standard", 0, _FREE,
          users=3, records=1_000, storageMb=500, apiCallsPerMonth=10_000),
    _plan("standard", "Standard", "25.00", "standard", 1, _STANDARD,
          users=50, records=100_000, storageMb=10_240, apiCallsPerMonth=500_000),
    _plan("professional", "Professional", "49.99", "premium", 2, _PROFESSIONAL,
          users=250, records=1_000_000, storageMb=102_400, apiCallsPerMonth=5_000_000),
    _plan("enterprise", "Enterprise", "99.00", "premium", 3, _ENTERPRISE,
          users=10_000, records=50_000_000, storageMb=1_048_576, apiCallsPerMonth=100_000_000),
)})

DEFAULT_PLAN = "standard"  # what sign-up gives (auth.tenants.plan's column default)


def plan(key: str) -> Plan | None:
    return PLANS.get(key)
