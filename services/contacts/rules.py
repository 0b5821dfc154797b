"""What a valid contact is, and its normalized form. Shared by create, update, bulk, validate
and import so that every door applies the same rules."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from services.contacts.tables import WRITABLE as WRITABLE_FIELDS
from services.kernel.errors import FieldViolation

__all__ = ["WRITABLE_FIELDS", "camel", "check", "normalize_phone"]

LIFECYCLE_STAGES = frozenset({"", "subscriber", "lead", "opportunity", "customer", "evangelist", "other"})
RELATIONSHIP_TYPES = frozenset(
    {"colleague", "manager", "reports_to", "assistant", "spouse", "family", "friend", "referred_by", "referred",
     "partner", "other"}
)
EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
PHONE_CHARS_RE = re.compile(r"^[0-9+().\-\s/]+$")
MAX_LENGTHS = {"first_name": 100, "last_name": 100, "title": 200, "company": 200, "source": 100}
MAX_TAGS = 50
MAX_TAG_LENGTH = 50
MAX_CUSTOM_FIELDS_BYTES = 16 * 1024
ADDRESS_KEYS = ("street", "city", "region", "postal_code", "country")

_CAMEL = {
    "first_name": "firstName", "last_name": "lastName", "account_id": "accountId", "owner_id": "ownerId",
    "lifecycle_stage": "lifecycleStage", "custom_fields": "customFields", "postal_code": "postalCode",
}


def camel(name: str) -> str:
    return _CAMEL.get(name, name)


def normalize_phone(raw: str) -> str:
    """`+49 (151) 123-456` -> `+49151123456`; `0049...` -> `+49...`; national numbers keep their digits."""
    digits = re.sub(r"\D", "", raw)
    stripped = raw.strip()
    if stripped.startswith("+"):
        return "+" + digits
    if stripped.startswith("00") and len(digits) > 2:
        return "+" + digits[2:]
    return digits


def check(values: Mapping[str, Any], prefix: str = "", *, partial: bool = False) -> tuple[dict[str, Any], list[FieldViolation]]:
    """Normalize `values` (snake_case keys) and list every problem, with lowerCamel field paths.

    `partial` skips the "needs a name or email" rule for updates that change a few fields.
    """
    out: dict[str, Any] = {}
    problems: list[FieldViolation] = []

    def bad(name: str, message: str, code: str = "INVALID") -> None:
        problems.append(FieldViolation(f"{prefix}{camel(name)}", message, code))

    for name, limit in MAX_LENGTHS.items():
        if name in values:
            text_value = " ".join(str(values[name] or "").split())
            if len(text_value) > limit:
                bad(name, f"must be at most {limit} characters", "TOO_LONG")
            out[name] = text_value
    if "email" in values:
        email = str(values["email"] or "").strip().lower()
        if email and (len(email) > 254 or not EMAIL_RE.match(email)):
            bad("email", "must be a valid email address")
        out["email"] = email
    if "phone" in values:
        phone = str(values["phone"] or "").strip()
        if phone:
            digits = re.sub(r"\D", "", phone)
            if not PHONE_CHARS_RE.match(phone) or not 6 <= len(digits) <= 15:
                bad("phone", "must be a phone number of 6 to 15 digits")
            else:
                phone = normalize_phone(phone)
        out["phone"] = phone
    for name in ("account_id", "owner_id"):
        if name in values:
            raw = str(values[name] or "").strip()
            if raw:
                try:
                    out[name] = uuid.UUID(raw)
                except ValueError:
                    bad(name, "must be a UUID")
            else:
                out[name] = None
    if "lifecycle_stage" in values:
        stage = str(values["lifecycle_stage"] or "").strip().lower()
        if stage not in LIFECYCLE_STAGES:
            bad("lifecycle_stage", f"must be one of {', '.join(sorted(LIFECYCLE_STAGES - {''}))}")
        out["lifecycle_stage"] = stage
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
    if not partial and not (out.get("first_name") or out.get("last_name") or out.get("email")):
        problems.append(
            FieldViolation(f"{prefix}firstName", "a contact needs a first name, a last name or an email", "REQUIRED")
        )
    return out, problems
