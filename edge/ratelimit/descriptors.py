"""What Envoy sends the service, in one place: the edge config generator writes it, the
service reads it.

Every rate-limited route sends one descriptor:

    [("class", "standard" | "bulk"), ("tier", <JWT claim tier>)?, ("user", <JWT claim sub>)]
    [("class", "standard"), ("remote_address", <client address>)]          on public routes

`tier` is left out when the token has no such claim (the service then uses the standard tier).
The claims reach these headers only through `jwt_authn` (claim_to_headers): the envelope filter
drops any `x-jwt-*` a client sends, so neither a tier nor a user can be claimed by a header.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from edge.ratelimit.limits import BULK_CLASS, CLASSES, DEFAULT_TIER, STANDARD_CLASS

DOMAIN = "crm"
CLUSTER = "crm.edge.ratelimit"
DEFAULT_ADDRESS = "127.0.0.1:8081"
# Long enough for a Python service on a busy small machine; only a hung service costs this much
# (a stopped one refuses the connection at once). Past it the call is let through (fail open).
TIMEOUT = "0.5s"

CLASS_KEY = "class"
TIER_KEY = "tier"
USER_KEY = "user"
ADDRESS_KEY = "remote_address"  # fixed by Envoy's remote_address action

USER_HEADER = "x-jwt-user-id"
TIER_HEADER = "x-jwt-tier"
CLAIM_HEADERS = ({"header_name": USER_HEADER, "claim_name": "sub"}, {"header_name": TIER_HEADER, "claim_name": "tier"})


def rate_class_of(value: str, rpc: str) -> str:
    """The policy's `rate_class`, checked ("" means standard)."""
    if value == "":
        return STANDARD_CLASS
    if value not in CLASSES:
        raise ValueError(f"{rpc}: rate_class {value!r} is not one of {', '.join(CLASSES)}")
    return value


def route_rate_limits(*, public: bool, rate_class: str) -> list[dict[str, Any]]:
    """`rate_limits` of a route (inside `route:`) for an rpc of this kind."""
    actions: list[dict[str, Any]] = [{"generic_key": {"descriptor_key": CLASS_KEY, "descriptor_value": rate_class}}]
    if public:
        actions.append({"remote_address": {}})
    else:
        actions += [
            {"request_headers": {"header_name": TIER_HEADER, "descriptor_key": TIER_KEY, "skip_if_absent": True}},
            # No user, no descriptor: only tokens without `sub` (the auth service mints none).
            {"request_headers": {"header_name": USER_HEADER, "descriptor_key": USER_KEY}},
        ]
    return [{"actions": actions}]


def http_filter(*, cluster: str = CLUSTER) -> dict[str, Any]:
    """Envoy's global rate-limit filter asking this service (placed after jwt_authn)."""
    return {
        "name": "envoy.filters.http.ratelimit",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit",
            "domain": DOMAIN,
            "timeout": TIMEOUT,
            # The budget is a fairness guard, not a security boundary: an outage of the service
            # must not take the API down with it.
            "failure_mode_deny": False,
            "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
            "disable_x_envoy_ratelimited_header": True,
            "rate_limited_as_resource_exhausted": True,  # native gRPC callers get RESOURCE_EXHAUSTED
            "rate_limit_service": {
                "grpc_service": {"envoy_grpc": {"cluster_name": cluster}},
                "transport_api_version": "V3",
            },
        },
    }


@dataclass(frozen=True)
class Budget:
    """Whose calls of which class a descriptor counts."""

    rate_class: str
    tier: str
    principal: str

    @property
    def key(self) -> str:
        return f"{self.rate_class}|{self.principal}"


def budget_of(entries: Iterable[tuple[str, str]]) -> Budget | None:
    """The budget a descriptor names, or None for one this service does not limit."""
    values = dict(entries)
    if values.get(USER_KEY):
        principal = f"user:{values[USER_KEY]}"
    elif values.get(ADDRESS_KEY):
        principal = f"addr:{values[ADDRESS_KEY]}"
    else:
        return None
    rate_class = BULK_CLASS if values.get(CLASS_KEY) == BULK_CLASS else STANDARD_CLASS
    return Budget(rate_class, values.get(TIER_KEY) or DEFAULT_TIER, principal)
