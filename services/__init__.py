"""CRM services. Each sub-package owns one contract, one PostgreSQL schema and its domain."""

# Hosted by default, in start order.
ALL_SERVICES = ("auth", "users", "tenants", "accounts", "contacts", "pipelines", "deals", "activities", "leads", "audit", "search")
