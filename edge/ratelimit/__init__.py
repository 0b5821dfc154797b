"""The edge's global rate-limit service: Envoy's `envoy.service.ratelimit.v3.RateLimitService`
(ShouldRateLimit over gRPC), counting each user's calls per endpoint class in one place that
every Envoy instance asks. See README.md beside this file.

Importing the package loads nothing heavy: `limits` and `windows` are pure Python (the edge
config generator reads `descriptors`), `server` brings in gRPC.
"""
