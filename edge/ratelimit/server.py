"""The gRPC side: answers Envoy's ShouldRateLimit from the windows and the limits."""

from __future__ import annotations

import logging

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from edge.ratelimit.descriptors import DOMAIN, budget_of
from edge.ratelimit.limits import Limit, Limits
from edge.ratelimit.proto import base_pb2, rls_pb2, rls_pb2_grpc
from edge.ratelimit.windows import FixedWindows, Verdict

log = logging.getLogger("crm.edge.ratelimit")

Response = rls_pb2.RateLimitResponse
_UNITS = {1: Response.RateLimit.SECOND, 60: Response.RateLimit.MINUTE, 3600: Response.RateLimit.HOUR,
          86400: Response.RateLimit.DAY}


def _status(limit: Limit, verdict: Verdict) -> rls_pb2.RateLimitResponse.DescriptorStatus:
    status = Response.DescriptorStatus(
        code=Response.OK if verdict.allowed else Response.OVER_LIMIT,
        current_limit=Response.RateLimit(
            name=limit.name,
            requests_per_unit=limit.requests,
            # Envoy writes `;w=<seconds>` into X-RateLimit-Limit only for whole units.
            unit=_UNITS.get(limit.window, Response.RateLimit.UNKNOWN),
        ),
        limit_remaining=verdict.remaining,
    )
    status.duration_until_reset.seconds = verdict.reset_after
    return status


class RateLimiter:
    """Decides one RateLimitRequest: every descriptor must fit, or nothing is counted."""

    def __init__(self, limits: Limits, windows: FixedWindows | None = None, domain: str = DOMAIN) -> None:
        self.limits = limits
        self.windows = windows if windows is not None else FixedWindows()  # an empty one is falsy
        self.domain = domain

    def decide(self, request: rls_pb2.RateLimitRequest) -> rls_pb2.RateLimitResponse:
        response = Response(overall_code=Response.OK)
        if request.domain != self.domain:
            log.warning("domain %r is not %r: not limited", request.domain, self.domain)
            response.statuses.extend(Response.DescriptorStatus(code=Response.OK) for _ in request.descriptors)
            return response
        hits = request.hits_addend or 1
        checked: list[tuple[str, Limit, Verdict] | None] = []
        for descriptor in request.descriptors:
            budget = budget_of((e.key, e.value) for e in descriptor.entries)
            if budget is None:
                checked.append(None)
                continue
            limit = self.limits.for_call(budget.rate_class, budget.tier)
            limit = Limit(limit.requests, limit.window, limit.name or budget.tier)
            checked.append((budget.key, limit, self.windows.peek(budget.key, limit, hits)))
        refused = [c[2] for c in checked if c is not None and not c[2].allowed]
        for item in checked:
            if item is None:
                response.statuses.append(Response.DescriptorStatus(code=Response.OK))
                continue
            key, limit, verdict = item
            if not refused:
                self.windows.take(key, limit, hits)
            elif verdict.allowed:
                # Not counted, since the call is refused; report what is left without it.
                verdict = Verdict(True, verdict.remaining + hits, verdict.reset_after)
            response.statuses.append(_status(limit, verdict))
        if refused:
            response.overall_code = Response.OVER_LIMIT
            retry_after = max(v.reset_after for v in refused)
            response.response_headers_to_add.append(base_pb2.HeaderValue(key="retry-after", value=str(retry_after)))
        return response


class RateLimitService(rls_pb2_grpc.RateLimitServiceServicer):
    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    async def ShouldRateLimit(
        self, request: rls_pb2.RateLimitRequest, context: grpc.aio.ServicerContext
    ) -> rls_pb2.RateLimitResponse:
        return self.limiter.decide(request)


async def serve(listen: str, limiter: RateLimiter) -> grpc.aio.Server:
    """A started server on `listen` (host:port) with the rate-limit and health services."""
    server = grpc.aio.server()
    rls_pb2_grpc.add_RateLimitServiceServicer_to_server(RateLimitService(limiter), server)
    health = HealthServicer()
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    if not server.add_insecure_port(listen):
        raise OSError(f"cannot listen on {listen}")
    await server.start()
    return server
