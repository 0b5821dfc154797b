"""Full-text search over the CRM records, fed by the owning services' events."""
