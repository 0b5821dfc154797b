"""What a valid lead is, and its normalized form. Create, update, bulk and every capture door
apply the same rules."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import phonenumbers

from services.kernel.errors import FieldViolation
from services.leads.tables import SETTABLE_STATUSES, WRITABLE

__all__ = ["WRITABLE", "camel", "check", "check_amount", "normalize_phone"]

EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
PHONE_CHARS_RE = re.compile(r"^[0-9+().\-\s/]+$")
SOURCE_RE = re.compile(r"^[a-z0-9][a-z0-9 _.:/-]*$")
MAX_LENGTHS = {"first_name": 100, "last_name": 100, "title": 200, "company": 200, "source": 100, "territory": 100}
MAX_DESCRIPTION = 10_000
MAX_TAGS = 50
MAX_TAG_LENGTH = 50
MAX_CUSTOM_FIELDS_BYTES = 16 * 1024

_CAMEL = {
    "first_name": "firstName", "last_name": "lastName", "owner_id": "ownerId", "custom_fields": "customFields",
    "status_reason": "statusReason", "pipeline_id": "pipelineId", "stage_id": "stageId", "deal_name": "dealName",
    "account_id": "accountId", "create_deal": "createDeal",
}


def camel(name: str) -> str:
    return _CAMEL.get(name, name)


def normalize_phone(raw: str, country: str = "") -> str | None:
    """E.164 when the number can be read (international, or national for `country`), else the
    digits as typed (with `+` kept); None when it is not a phone number at all."""
    phone = raw.strip()
    digits = re.sub(r"\D", "", phone)
    if not PHONE_CHARS_RE.match(phone) or not 6 <= len(digits) <= 15:
        return None
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    try:
        parsed = phonenumbers.parse(phone, country.upper() or None)
        if phonenumbers.is_possible_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    return ("+" if phone.startswith("+") else "") + digits


def normalize_website(raw: str) -> str | None:
    """`Globex.com/about` -> `https://globex.com/about`; None when it is no web address."""
    value = raw.strip()
    if not value:
        return ""
    if "://" not in value:
        value = "https://" + value
    parts = urlsplit(value)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or "." not in host or not re.fullmatch(r"[a-z0-9.-]+", host):
        return None
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{host}{path}"


def check_amount(raw: str) -> str | None:
    """A money amount as a normalized decimal string ("1250.5" -> "1250.50"); None if invalid."""
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        return None
    if not value.is_finite() or value < 0 or value >= Decimal("1e16") or value.as_tuple().exponent < -2:  # type: ignore[operator]
        return None
    return str(value.quantize(Decimal("0.01")))


def check(values: Mapping[str, Any], prefix: str = "", *, partial: bool = False) -> tuple[dict[str, Any], list[FieldViolation]]:
    """Normalize `values` (snake_case keys) and list every problem with lowerCamel field paths.

    `partial` skips the "needs a name or an email" rule for updates that change a few fields.
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
    if "source" in out:
        out["source"] = out["source"].lower() or "manual"
        if not SOURCE_RE.match(out["source"]):
            bad("source", "use letters, digits, spaces and - _ . : /")
    if "email" in values:
        email = str(values["email"] or "").strip().lower()
        if email and (len(email) > 254 or not EMAIL_RE.match(email)):
            bad("email", "must be a valid email address")
        out["email"] = email
    if "country" in values:
        country = str(values["country"] or "").strip().upper()
        if country and not re.fullmatch(r"[A-Z]{2}", country):
            bad("country", "must be an ISO 3166-1 alpha-2 code")
        out["country"] = country
    if "phone" in values:
        raw_phone = str(values["phone"] or "").strip()
        phone = normalize_phone(raw_phone, out.get("country", "")) if raw_phone else ""
        if phone is None:
            bad("phone", "must be a phone number of 6 to 15 digits")
        else:
            out["phone"] = phone
    if "website" in values:
        site = normalize_website(str(values["website"] or ""))
        if site is None or len(site) > 300:
            bad("website", "must be a web address (https://example.com)")
        else:
            out["website"] = site
    if "status" in values:
        status = str(values["status"] or "").strip().lower() or "new"
        if status not in SETTABLE_STATUSES:
            bad("status", f"must be one of {', '.join(SETTABLE_STATUSES)} (conversion sets the others)")
        out["status"] = status
    if "score" in values:
        score = values["score"]
        if not isinstance(score, int) or isinstance(score, bool) or not 0 <= score <= 100:
            bad("score", "must be a whole number from 0 to 100", "OUT_OF_RANGE")
        else:
            out["score"] = score
    if "owner_id" in values:
        raw = str(values["owner_id"] or "").strip()
        if raw:
            try:
                out["owner_id"] = uuid.UUID(raw)
            except ValueError:
                bad("owner_id", "must be a UUID")
        else:
            out["owner_id"] = None
    if "description" in values:
        description = str(values["description"] or "").strip()
        if len(description) > MAX_DESCRIPTION:
            bad("description", f"must be at most {MAX_DESCRIPTION} characters", "TOO_LONG")
        out["description"] = description
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
    if "custom_fields" in values:
        custom = dict(values["custom_fields"] or {})
        if len(json.dumps(custom)) > MAX_CUSTOM_FIELDS_BYTES:
            bad("custom_fields", f"must be at most {MAX_CUSTOM_FIELDS_BYTES} bytes as JSON", "TOO_LARGE")
        out["custom_fields"] = custom
    if not partial and not (out.get("first_name") or out.get("last_name") or out.get("email")):
        problems.append(FieldViolation(f"{prefix}firstName", "a lead needs a first name, a last name or an email", "REQUIRED"))
    return out, problems
