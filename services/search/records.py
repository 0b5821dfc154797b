"""The record types the index holds, where they come from, and how a record becomes a document.

Pure code (no database, no gRPC). A record is a dict with the API's field names, as the owning
service's events carry it (`data.<entity>`) and as its list rpc answers it in JSON.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


def _s(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    return "" if value is None else str(value).strip()


def _join(*parts: str, sep: str = " · ") -> str:
    return sep.join(p for p in parts if p)


def _person(r: Mapping[str, Any]) -> str:
    return _join(_s(r, "firstName"), _s(r, "lastName"), sep=" ") or _s(r, "name") or _s(r, "email")


def _money(r: Mapping[str, Any]) -> str:
    return _join(_s(r, "amount"), _s(r, "currency"), sep=" ")


@dataclass(frozen=True)
class RecordType:
    """One searchable type: `contact` is owned by ContactsService, read with `contacts:read`."""

    name: str  # contact
    service: str  # contacts: the event's service segment and the permission's resource
    entity: str  # contact: the event's entity segment and the key of the record in its data
    grpc_service: str  # crm.contacts.v1.ContactsService
    list_method: str  # ListContacts
    title: Callable[[Mapping[str, Any]], str]
    subtitle: Callable[[Mapping[str, Any]], str]
    stage_field: str = ""  # the record field the `stage` facet counts
    status_field: str = ""  # the record field the `status` facet counts

    @property
    def resource(self) -> str:
        return self.service

    @property
    def read_permission(self) -> str:
        return f"{self.service}:read"

    @property
    def contract_module(self) -> str:
        """Generated module of the owning service's contract (present once it is built)."""
        return f"crm.{self.service}.v1.{self.service}_service_pb2"

    @property
    def list_field(self) -> str:
        """The repeated field of the list answer (`contacts`), by the contracts' convention."""
        return self.service


TYPES: dict[str, RecordType] = {
    t.name: t
    for t in (
        RecordType("contact", "contacts", "contact", "crm.contacts.v1.ContactsService", "ListContacts",
                   title=_person, subtitle=lambda r: _join(_s(r, "title"), _s(r, "company"), _s(r, "email")),
                   stage_field="lifecycleStage"),
        RecordType("account", "accounts", "account", "crm.accounts.v1.AccountsService", "ListAccounts",
                   title=lambda r: _s(r, "name") or _s(r, "domain"),
                   subtitle=lambda r: _join(_s(r, "domain"), _s(r, "industry"), _s(r, "territory"))),
        RecordType("lead", "leads", "lead", "crm.leads.v1.LeadsService", "ListLeads",
                   title=lambda r: _person(r) or _s(r, "company"),
                   subtitle=lambda r: _join(_s(r, "company"), _s(r, "email"), _s(r, "status")),
                   status_field="status"),
        RecordType("deal", "deals", "deal", "crm.deals.v1.DealsService", "ListDeals",
                   title=lambda r: _s(r, "name"), subtitle=lambda r: _join(_money(r), _s(r, "status")),
                   stage_field="stageId", status_field="status"),
        RecordType("activity", "activities", "activity", "crm.activities.v1.ActivitiesService", "ListActivities",
                   title=lambda r: _s(r, "subject") or _s(r, "type"),
                   subtitle=lambda r: _join(_s(r, "type"), _s(r, "status"), _s(r, "dueAt")[:10]),
                   status_field="status"),
    )
}
BY_EVENT: dict[tuple[str, str], RecordType] = {(t.service, t.entity): t for t in TYPES.values()}
MAX_TITLE = 300


@dataclass(frozen=True)
class Document:
    """What the index stores of one record."""

    type: str
    id: uuid.UUID
    owner_id: uuid.UUID | None
    title: str
    subtitle: str
    stage: str
    status: str
    tags: list[str]
    data: dict[str, Any]
    created_at: dt.datetime | None
    updated_at: dt.datetime | None  # the record's own, when it carries one


def parse_time(value: Any) -> dt.datetime | None:
    """An RFC 3339 time as events and JSON answers spell it, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def parse_uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError):
        return None


def document(rtype: RecordType, record: Mapping[str, Any], record_id: str = "") -> Document | None:
    """The document of a record, or None when it has no usable id."""
    key = parse_uuid(record.get("id") or record_id)
    if key is None:
        return None
    tags = record.get("tags")
    return Document(
        type=rtype.name,
        id=key,
        owner_id=parse_uuid(record.get("ownerId")),
        title=rtype.title(record)[:MAX_TITLE] or "(untitled)",
        subtitle=rtype.subtitle(record)[:MAX_TITLE],
        stage=_s(record, rtype.stage_field) if rtype.stage_field else "",
        status=_s(record, rtype.status_field) if rtype.status_field else "",
        tags=[str(t) for t in tags][:100] if isinstance(tags, list) else [],
        data=dict(record),
        created_at=parse_time(record.get("createdAt")),
        updated_at=parse_time(record.get("updatedAt")),
    )
