"""What a tenant's config, features, limits and billing details may hold. Pure functions, no I/O.

Each check returns the clean values and every problem found (a FieldViolation naming the API
field), so one 422 lists all of them.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from babel import Locale, UnknownLocaleError
from babel.numbers import list_currencies

from services.auth.plans import FEATURES, LIMITS, Plan
from services.kernel.errors import FieldViolation

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
TAX_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 .\-/]{3,31}$")
LOCALE_RE = re.compile(r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?$")
DATE_FORMATS = ("YYYY-MM-DD", "DD/MM/YYYY", "MM/DD/YYYY", "DD.MM.YYYY")
TIME_FORMATS = ("24h", "12h")
WEEK_STARTS = ("monday", "sunday", "saturday")
MAX_CONFIG_BYTES = 16_384  # the stored JSON; the table's CHECK is the backstop

# Config keys (API names) and their defaults: a tenant without settings reads these.
CONFIG_DEFAULTS: Mapping[str, Any] = {
    "timezone": "UTC",
    "locale": "en-US",
    "currency": "USD",
    "dateFormat": "YYYY-MM-DD",
    "timeFormat": "24h",
    "weekStart": "monday",
    "fiscalYearStartMonth": 1,
    "branding": {},
}
BRANDING_KEYS = ("logoUrl", "primaryColor", "accentColor", "emailFooter")


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@lru_cache(maxsize=1)
def _currencies() -> frozenset[str]:
    return frozenset(list_currencies())


@lru_cache(maxsize=1)
def _countries() -> frozenset[str]:
    codes = [str(k) for k in Locale("en").territories]
    return frozenset(k for k in codes if len(k) == 2 and k.isalpha() and k != "ZZ")


def _valid_locale(value: str) -> bool:
    if not LOCALE_RE.match(value):
        return False
    try:
        Locale.parse(value, sep="-")
    except (UnknownLocaleError, ValueError):
        return False
    return True


def _text(problems: list[FieldViolation], field: str, value: str, *, minimum: int, maximum: int) -> str:
    value = value.strip()
    if not minimum <= len(value) <= maximum:
        problems.append(FieldViolation(field, f"must be {minimum} to {maximum} characters",
                                       "REQUIRED" if not value and minimum else "TOO_LONG"))
    return value


def check_config(changes: Mapping[str, Any]) -> tuple[dict[str, Any], list[FieldViolation]]:
    """Validate the config keys present in `changes` (API names; `branding` a dict of its own)."""
    problems: list[FieldViolation] = []
    clean: dict[str, Any] = {}
    for key, value in changes.items():
        field = f"config.{key}"
        if key == "name":
            clean[key] = _text(problems, field, value, minimum=1, maximum=200)
        elif key == "timezone":
            if value not in _timezones():
                problems.append(FieldViolation(field, "must be an IANA time zone such as Europe/Berlin"))
            clean[key] = value
        elif key == "locale":
            if not _valid_locale(value):
                problems.append(FieldViolation(field, "must be a BCP 47 locale such as de-DE"))
            clean[key] = value
        elif key == "currency":
            value = value.upper()
            if value not in _currencies():
                problems.append(FieldViolation(field, "must be an ISO 4217 currency code such as EUR"))
            clean[key] = value
        elif key == "dateFormat":
            if value not in DATE_FORMATS:
                problems.append(FieldViolation(field, f"must be one of {', '.join(DATE_FORMATS)}"))
            clean[key] = value
        elif key == "timeFormat":
            if value not in TIME_FORMATS:
                problems.append(FieldViolation(field, f"must be one of {', '.join(TIME_FORMATS)}"))
            clean[key] = value
        elif key == "weekStart":
            if value not in WEEK_STARTS:
                problems.append(FieldViolation(field, f"must be one of {', '.join(WEEK_STARTS)}"))
            clean[key] = value
        elif key == "fiscalYearStartMonth":
            if not 1 <= value <= 12:
                problems.append(FieldViolation(field, "must be a month number from 1 to 12", "OUT_OF_RANGE"))
            clean[key] = value
        elif key == "branding":
            clean[key] = _check_branding(problems, value)
        else:
            problems.append(FieldViolation(field, "unknown config key", "UNKNOWN_FIELD"))
    return clean, problems


def _check_branding(problems: list[FieldViolation], branding: Mapping[str, str]) -> dict[str, str]:
    clean: dict[str, str] = {}
    for key, value in branding.items():
        field = f"config.branding.{key}"
        if key == "logoUrl":
            parts = urlsplit(value)
            if value and (parts.scheme != "https" or not parts.netloc or len(value) > 2048):
                problems.append(FieldViolation(field, "must be an https URL of at most 2048 characters"))
        elif key in ("primaryColor", "accentColor"):
            if value and not COLOR_RE.match(value):
                problems.append(FieldViolation(field, "must be a colour as #RRGGBB"))
        elif key == "emailFooter":
            if len(value) > 1000:
                problems.append(FieldViolation(field, "must be at most 1000 characters", "TOO_LONG"))
        else:
            problems.append(FieldViolation(field, "unknown branding key", "UNKNOWN_FIELD"))
        clean[key] = value
    return clean


def check_features(changes: Mapping[str, bool], plan: Plan) -> list[FieldViolation]:
    """Unknown features, and features the plan does not include, cannot be turned on."""
    problems = []
    for key, on in changes.items():
        if key not in FEATURES:
            problems.append(FieldViolation(f"features.{key}", f"unknown feature; known: {', '.join(FEATURES)}",
                                           "UNKNOWN_FEATURE"))
        elif on and key not in plan.features:
            problems.append(FieldViolation(f"features.{key}", f"not included in the {plan.name} plan",
                                           "NOT_IN_PLAN"))
    return problems


def check_limits(changes: Mapping[str, int], plan: Plan) -> list[FieldViolation]:
    """Limits are known keys, not negative, and at most the plan's maximum (0 = the maximum)."""
    problems = []
    for key, value in changes.items():
        field = f"limits.{key}"
        if key not in LIMITS:
            problems.append(FieldViolation(field, f"unknown limit; known: {', '.join(LIMITS)}", "UNKNOWN_LIMIT"))
        elif value < 0:
            problems.append(FieldViolation(field, "must not be negative", "OUT_OF_RANGE"))
        elif value > plan.limits[key]:
            problems.append(FieldViolation(field, f"exceeds the {plan.name} plan's maximum of {plan.limits[key]}",
                                           "EXCEEDS_PLAN"))
    return problems


def check_billing(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[FieldViolation]]:
    """Company name, address (line1, city, postal code, country required), tax id, billing email."""
    problems: list[FieldViolation] = []
    address = values.get("address") or {}
    clean_address = {
        "line1": _text(problems, "billing.address.line1", address.get("line1", ""), minimum=1, maximum=200),
        "line2": _text(problems, "billing.address.line2", address.get("line2", ""), minimum=0, maximum=200),
        "city": _text(problems, "billing.address.city", address.get("city", ""), minimum=1, maximum=100),
        "postalCode": _text(problems, "billing.address.postalCode", address.get("postalCode", ""),
                            minimum=1, maximum=20),
        "region": _text(problems, "billing.address.region", address.get("region", ""), minimum=0, maximum=100),
        "country": address.get("country", "").strip().upper(),
    }
    if clean_address["country"] not in _countries():
        problems.append(FieldViolation("billing.address.country", "must be an ISO 3166-1 alpha-2 code such as DE"))
    email = values.get("billingEmail", "").strip().lower()
    if not EMAIL_RE.match(email) or len(email) > 254:
        problems.append(FieldViolation("billing.billingEmail", "must be a valid email address"))
    tax_id = values.get("taxId", "").strip().upper()
    if tax_id and not TAX_ID_RE.match(tax_id):
        problems.append(FieldViolation("billing.taxId", "must be 4 to 32 letters, digits, spaces, dots, dashes or slashes"))
    clean = {
        "company_name": _text(problems, "billing.companyName", values.get("companyName", ""), minimum=1, maximum=200),
        "address": clean_address,
        "tax_id": tax_id,
        "billing_email": email,
    }
    return clean, problems
