"""The audit trail: every domain and security event recorded once, chained by hash per tenant."""
