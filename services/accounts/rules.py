"""What a valid account and territory are, and the hierarchy rules (no cycles, bounded depth,
how a merge re-hangs children). Pure functions: no database, no gRPC, so they are unit-tested."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from services.accounts.tables import WRITABLE as WRITABLE_FIELDS
from services.kernel.errors import FieldViolation

__all__ = [
    "MAX_DEPTH",
    "WRITABLE_FIELDS",
    "camel",
    "check",
    "check_territory",
    "fold_sources",
    "merge_parents",
    "parent_violation",
]

# Levels in one hierarchy, the root included: deep enough for group > region > country >
# subsidiary > site, small enough that every walk up or down is a short bounded query.
MAX_DEPTH = 10
# Accounts one hierarchy answer carries at most.
MAX_HIERARCHY_NODES = 2000
MAX_MERGE_SOURCES = 50

MAX_LENGTHS = {"name": 200, "industry": 100, "description": 5000}
MAX_TAGS = 50
MAX_TAG_LENGTH = 50
MAX_CUSTOM_FIELDS_BYTES = 16 * 1024
MAX_EMPLOYEES = 10_000_000
MAX_REVENUE = Decimal("9999999999999999.99")  # numeric(18, 2)
ADDRESS_KEYS = ("street", "city", "region", "postal_code", "country")

DOMAIN_LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
PHONE_CHARS_RE = re.compile(r"^[0-9+().\-\s/]+$")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
TERRITORY_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

_CAMEL = {
    "parent_id": "parentId", "owner_id": "ownerId", "employee_count": "employeeCount",
    "annual_revenue": "annualRevenue", "custom_fields": "customFields", "postal_code": "postalCode",
}


def camel(name: str) -> str:
    return _CAMEL.get(name, name)


def normalize_domain(raw: str) -> str | None:
    """`https://www.Acme.com/about` -> `acme.com`; None when it is not a host name."""
    value = raw.strip().lower()
    if not value:
        return ""
    if "://" not in value:
        value = "//" + value
    try:
        host = urlsplit(value).hostname or ""
        host = host.encode("idna").decode("ascii")  # internationalized names in their ASCII form
    except (ValueError, UnicodeError):
        return None
    host = host.rstrip(".")
    host = host.removeprefix("www.")
    labels = host.split(".")
    if len(host) > 253 or len(labels) < 2 or not all(DOMAIN_LABEL_RE.match(label) for label in labels):
        return None
    if labels[-1].isdigit():  # an IP address is not a company's domain
        return None
    return host


def normalize_website(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return ""
    if "://" not in value:
        value = "https://" + value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(value) > 500 or " " in value:
        return None
    return value


def parse_revenue(raw: Any) -> Decimal | None:
    """A non-negative amount with at most two decimals, from its decimal string."""
    try:
        amount = Decimal(str(raw).strip())
    except InvalidOperation:
        raise ValueError("must be a decimal number such as \"1250000.00\"") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError("must be zero or more")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise ValueError("at most two decimal places")
    if amount > MAX_REVENUE:
        raise ValueError("is too large")
    return amount.quantize(Decimal("0.01"))


def check(values: Mapping[Any, Any], prefix: str = "", *, partial: bool = False) -> tuple[dict[str, Any], list[FieldViolation]]:
    """Normalize `values` (snake_case keys) and list every problem, with lowerCamel field paths.

    `partial` drops the "name is required" rule for updates that leave the name alone.
    Whether a parent or territory exists is the domain's to check (it needs the database).
    """
    out: dict[str, Any] = {}
    problems: list[FieldViolation] = []

    def bad(name: str, message: str, code: str = "INVALID") -> None:
        problems.append(FieldViolation(f"{prefix}{camel(name)}", message, code))

    for name, limit in MAX_LENGTHS.items():
        if name in values:
            raw = str(values[name] or "")
            text_value = raw.strip() if name == "description" else " ".join(raw.split())
            if len(text_value) > limit:
                bad(name, f"must be at most {limit} characters", "TOO_LONG")
            out[name] = text_value
    if "name" in values and not out["name"] or not partial and "name" not in values:
        bad("name", "an account needs a name", "REQUIRED")
    if "domain" in values:
        domain = normalize_domain(str(values["domain"] or ""))
        if domain is None:
            bad("domain", "must be a domain name such as acme.com")
        out["domain"] = domain or ""
    if "website" in values:
        website = normalize_website(str(values["website"] or ""))
        if website is None:
            bad("website", "must be an http or https URL")
        out["website"] = website or ""
    if "phone" in values:
        phone = " ".join(str(values["phone"] or "").split())
        if phone and (not PHONE_CHARS_RE.match(phone) or not 6 <= len(re.sub(r"\D", "", phone)) <= 15):
            bad("phone", "must be a phone number of 6 to 15 digits")
        out["phone"] = phone
    for name in ("parent_id", "owner_id"):
        if name in values:
            raw_id = str(values[name] or "").strip()
            if raw_id:
                try:
                    out[name] = uuid.UUID(raw_id)
                except ValueError:
                    bad(name, "must be a UUID")
            else:
                out[name] = None
    if "territory" in values:
        key = str(values["territory"] or "").strip().lower()
        if key and not TERRITORY_KEY_RE.match(key):
            bad("territory", "must be the key of one of your territories")
        out["territory"] = key or None
    if "employee_count" in values:
        count = values["employee_count"] or 0
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_EMPLOYEES:
            bad("employee_count", f"must be between 0 and {MAX_EMPLOYEES}", "OUT_OF_RANGE")
        else:
            out["employee_count"] = count
    if "annual_revenue" in values:
        raw_amount = values["annual_revenue"]
        if raw_amount in (None, ""):
            out["annual_revenue"] = None
        else:
            try:
                out["annual_revenue"] = parse_revenue(raw_amount)
            except ValueError as exc:
                bad("annual_revenue", str(exc))
    if "currency" in values:
        currency = str(values["currency"] or "").strip().upper()
        if currency and not CURRENCY_RE.match(currency):
            bad("currency", "must be an ISO 4217 code such as EUR")
        out["currency"] = currency
    if out.get("annual_revenue") is not None and "currency" in values and not out.get("currency"):
        bad("currency", "an annual revenue needs its currency", "REQUIRED")
    if "tags" in values:
        tags: list[str] = []
        for tag in values["tags"] or []:
            tag = " ".join(str(tag).split())
            if len(tag) > MAX_TAG_LENGTH:
                bad("tags", f"each tag must be at most {MAX_TAG_LENGTH} characters", "TOO_LONG")
            elif tag and tag.lower() not in (t.lower() for t in tags):
                tags.append(tag)
        if len(tags) > MAX_TAGS:
            bad("tags", f"at most {MAX_TAGS} tags", "TOO_MANY")
        out["tags"] = tags
    if "address" in values:
        address = {k: " ".join(str((values["address"] or {}).get(k, "") or "").split()) for k in ADDRESS_KEYS}
        for key, value in address.items():
            if len(value) > 200:
                problems.append(FieldViolation(f"{prefix}address.{camel(key)}", "must be at most 200 characters", "TOO_LONG"))
        country = address["country"].upper()
        if country and not re.fullmatch(r"[A-Z]{2}", country):
            problems.append(FieldViolation(f"{prefix}address.country", "must be an ISO 3166-1 alpha-2 code"))
        address["country"] = country
        out["address"] = {k: v for k, v in address.items() if v}
    if "custom_fields" in values:
        custom = dict(values["custom_fields"] or {})
        if len(json.dumps(custom)) > MAX_CUSTOM_FIELDS_BYTES:
            bad("custom_fields", f"must be at most {MAX_CUSTOM_FIELDS_BYTES} bytes as JSON", "TOO_LARGE")
        out["custom_fields"] = custom
    return out, problems


def check_territory(values: Mapping[Any, Any], *, creating: bool) -> tuple[dict[str, Any], list[FieldViolation]]:
    out: dict[str, Any] = {}
    problems: list[FieldViolation] = []
    if creating:
        key = str(values.get("key") or "").strip().lower()
        if not key:
            problems.append(FieldViolation("key", "a territory needs a key", "REQUIRED"))
        elif not TERRITORY_KEY_RE.match(key):
            problems.append(FieldViolation("key", "use 1 to 63 lower-case letters, digits, '-' or '_'"))
        out["key"] = key
    name = " ".join(str(values.get("name") or "").split())
    if not name:
        problems.append(FieldViolation("name", "a territory needs a name", "REQUIRED"))
    elif len(name) > 100:
        problems.append(FieldViolation("name", "must be at most 100 characters", "TOO_LONG"))
    description = str(values.get("description") or "").strip()
    if len(description) > 1000:
        problems.append(FieldViolation("description", "must be at most 1000 characters", "TOO_LONG"))
    out.update(name=name, description=description)
    return out, problems


# --- hierarchy -------------------------------------------------------------------------------

def parent_violation(
    account_id: uuid.UUID | None, parent_chain: Sequence[uuid.UUID], subtree_height: int, field: str = "parentId"
) -> FieldViolation | None:
    """Whether hanging an account (with `subtree_height` levels below it) under the first account
    of `parent_chain` breaks the hierarchy.

    `parent_chain` is the new parent followed by its ancestors, nearest first, as stored. The
    account may not be its own ancestor (that is a cycle, however many levels it spans) and the
    whole hierarchy may not exceed MAX_DEPTH levels. `account_id` is None for a new account.
    """
    if account_id is not None and account_id in parent_chain:
        if parent_chain[0] == account_id:
            return FieldViolation(field, "an account cannot be its own parent", "HIERARCHY_CYCLE")
        return FieldViolation(field, "the parent is a descendant of this account: the hierarchy would loop",
                              "HIERARCHY_CYCLE")
    if len(set(parent_chain)) != len(parent_chain):  # stored data loops: never build on it
        return FieldViolation(field, "the parent's hierarchy loops", "HIERARCHY_CYCLE")
    if len(parent_chain) + 1 + subtree_height > MAX_DEPTH:
        return FieldViolation(field, f"a hierarchy has at most {MAX_DEPTH} levels", "HIERARCHY_TOO_DEEP")
    return None


def merge_parents(
    target_id: uuid.UUID, target_chain: Sequence[uuid.UUID], source_ids: Iterable[uuid.UUID],
    children: Mapping[uuid.UUID, uuid.UUID],
) -> dict[uuid.UUID, uuid.UUID | None]:
    """New parents for the accounts hanging under merge sources (`children`: child -> source).

    They move under the target, except the target itself and its ancestors: hanging those under
    the target would loop, so they move up to their nearest ancestor that is not a source (or
    become roots). Sources under other sources go away with them and are left out.
    """
    sources = set(source_ids)
    chain = [target_id, *target_chain]
    moves: dict[uuid.UUID, uuid.UUID | None] = {}
    for child in children:
        if child in sources:
            continue
        if child in chain:
            above = chain[chain.index(child) + 1:]
            moves[child] = next((a for a in above if a not in sources), None)
        else:
            moves[child] = target_id
    return moves


def merge_levels(target_chain: Sequence[uuid.UUID], source_ids: Iterable[uuid.UUID], moved_heights: Iterable[int]) -> int:
    """Levels of the target's hierarchy down through the children a merge hangs under it."""
    sources = set(source_ids)
    kept = sum(1 for a in target_chain if a not in sources)
    return max((kept + 2 + h for h in moved_heights), default=kept + 1)


# --- merge -----------------------------------------------------------------------------------

_FILLABLE = ("domain", "industry", "website", "phone", "description", "territory")


def fold_sources(target: Mapping[Any, Any], sources: Sequence[Mapping[Any, Any]]) -> dict[str, Any]:
    """What the target takes from the merged accounts, so nothing they knew is lost: each empty
    field from the first source that has it, their tags and the custom fields it lacks."""
    changes: dict[str, Any] = {}
    for name in _FILLABLE:
        if not target[name]:
            found = next((s[name] for s in sources if s[name]), None)
            if found:
                changes[name] = found
    if not target["employee_count"]:
        count = next((s["employee_count"] for s in sources if s["employee_count"]), 0)
        if count:
            changes["employee_count"] = count
    if target["annual_revenue"] is None:
        with_revenue = next((s for s in sources if s["annual_revenue"] is not None), None)
        if with_revenue is not None:
            changes["annual_revenue"] = with_revenue["annual_revenue"]
            changes["currency"] = with_revenue["currency"]
    if not target["address"]:
        address = next((s["address"] for s in sources if s["address"]), None)
        if address:
            changes["address"] = address
    tags = list(target["tags"])
    for s in sources:
        for tag in s["tags"]:
            if tag.lower() not in (t.lower() for t in tags) and len(tags) < MAX_TAGS:
                tags.append(tag)
    if tags != list(target["tags"]):
        changes["tags"] = tags
    custom = dict(target["custom_fields"] or {})
    for s in sources:
        for key, value in (s["custom_fields"] or {}).items():
            custom.setdefault(key, value)
    if custom != dict(target["custom_fields"] or {}) and len(json.dumps(custom)) <= MAX_CUSTOM_FIELDS_BYTES:
        changes["custom_fields"] = custom
    return changes
