"""The service kernel: everything a CRM service needs besides its own contract, schema and domain.

A service package provides a `ServiceModule` (see `kernel.module`); the kernel hosts it with
settings, database access under row-level security, authentication and authorization from the
contract's method policies, errors as rich gRPC statuses, list machinery, the transactional
outbox, jobs, telemetry, health and reflection.
"""
