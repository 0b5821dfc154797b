"""CRM services. Each sub-package owns one contract, one PostgreSQL schema and its domain."""

# Hosted by default, in start order.
ALL_SERVICES = ("auth", "users", "tenants", "contacts", "audit", "search")
