"""What an event means to the audit trail: category, entity, action, changes and links.

Events are CloudEvents of type `crm.<service>.<entity>.<action>`; each service puts what it
knows in `data`. This module is the one place that reads those shapes, so a new event type
is audited sensibly without code here, and a known one is audited precisely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CATEGORIES = ("security", "data", "access", "admin")
SECURITY_ENTITIES = {"login", "session", "mfa", "password", "token", "client", "email"}
ADMIN_WORDS = ("role", "permission", "tenant", "plan", "retention", "purge", "invited", "activated",
               "deactivated", "team", "billing", "config", "feature", "limit")
# Keys of event data that name another record, with the relation they express.
LINK_KEYS: dict[str, tuple[str, str]] = {
    "mergedIds": ("", "merged_from"),
    "sourceIds": ("", "merged_from"),
    "targetId": ("", "merged_into"),
    "primaryId": ("", "merged_into"),
    "contactId": ("contact", "linked"),
    "accountId": ("account", "linked"),
    "dealId": ("deal", "linked"),
    "leadId": ("lead", "linked"),
    "jobId": ("job", "imported_by"),
}
# Which link keys become which relation for a given action (conversions, merges, imports).
ACTION_RELATIONS: dict[str, dict[str, str]] = {
    "converted": {"contactId": "converted_to", "accountId": "converted_to", "dealId": "converted_to"},
}
MAX_CHANGES = 200


@dataclass
class Entry:
    event_id: str
    event_type: str
    occurred_at: str
    actor_id: str
    actor_type: str
    action: str
    entity_type: str
    entity_id: str
    category: str
    source: str
    changes: list[dict[str, Any]] = field(default_factory=list)
    related: list[dict[str, str]] = field(default_factory=list)
    request_id: str = ""
    client_ip: str = ""
    user_agent: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


def category_of(event_type: str, entity: str, action: str) -> str:
    parts = event_type.split(".")
    if len(parts) > 1 and parts[1] == "access":
        return "access"
    text = f"{entity}.{action}"
    if any(word in text for word in ADMIN_WORDS):
        return "admin"
    if len(parts) > 1 and parts[1] == "auth" and (entity in SECURITY_ENTITIES or "revoked" in action):
        return "security"
    return "data"


def _changes(action: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    raw = data.get("changes")
    if isinstance(raw, dict):
        out = []
        for name, change in raw.items():
            if isinstance(change, dict):
                out.append({"field": name, "before": change.get("from", change.get("before")),
                            "after": change.get("to", change.get("after"))})
        return out[:MAX_CHANGES]
    if isinstance(raw, list):
        return [c for c in raw if isinstance(c, dict) and "field" in c][:MAX_CHANGES]
    # A creation's record is all "after"; a deletion's all "before".
    record = next((v for v in data.values() if isinstance(v, dict)), None) if len(data) == 1 else None
    if record is not None and action in ("created", "deleted"):
        key = "after" if action == "created" else "before"
        return [{"field": k, key: v} for k, v in record.items()][:MAX_CHANGES]
    return []


def _related(entity_type: str, action: str, data: dict[str, Any]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    relations = ACTION_RELATIONS.get(action, {})
    for key, (kind, relation) in LINK_KEYS.items():
        value = data.get(key)
        values = value if isinstance(value, list) else [value] if value else []
        for item in values[:1000]:
            if isinstance(item, str) and item:
                out.append({"entity_type": kind or entity_type, "entity_id": item,
                            "relation": relations.get(key, relation)})
    ids = data.get("contactIds")
    if isinstance(ids, list) and data.get("jobId"):
        # An import names what it created: each contact's origin is this job.
        out.extend({"entity_type": "contact", "entity_id": str(i), "relation": "created_by_import"}
                   for i in ids[:10000])
    return out


def from_event(event: dict[str, Any]) -> Entry:
    event_type = str(event.get("type", ""))
    parts = event_type.split(".")
    entity = parts[2] if len(parts) > 2 else "unknown"
    action = ".".join(parts[3:]) or "event"
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    assert isinstance(data, dict)
    actor = str(event.get("actorid") or "")
    entity_id = str(event.get("subject") or "")
    metadata = {k: v for k, v in data.items() if k not in ("changes",) and not isinstance(v, dict | list)}
    if parts[1:2] == ["access"]:
        entity = str(data.get("entityType", entity))
        metadata = {"count": data.get("count", 0), "entityIds": data.get("entityIds", []),
                    "counts": data.get("counts", {}), "rpcs": data.get("rpcs", [])}
    return Entry(
        event_id=str(event.get("id", "")),
        event_type=event_type,
        occurred_at=str(event.get("time", "")),
        actor_id=actor,
        actor_type="user" if actor else "system",
        action=action,
        entity_type=entity,
        entity_id=entity_id,
        category=category_of(event_type, entity, action),
        source=str(event.get("source", "")),
        changes=_changes(action, data),
        related=_related(entity, action, data),
        request_id=str(event.get("requestid") or ""),
        client_ip=str(event.get("clientip") or ""),
        user_agent=str(event.get("useragent") or ""),
        metadata=metadata,
    )
