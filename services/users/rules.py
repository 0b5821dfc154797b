"""What valid users, profiles, preferences and roles are, and who may grant what. Plain data in
and out (no database, no gRPC), so every rule is unit-tested on its own."""

from __future__ import annotations

import json
import re
import zoneinfo
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from services.auth import passwords
from services.auth.domain import EMAIL_RE, normalize_email
from services.kernel.authn import BUILTIN_ROLES
from services.kernel.context import PLATFORM, SCOPES, RequestContext
from services.kernel.errors import FieldViolation

# Built-in roles a tenant can hand out; `platform_operator` is made by the operator CLI only.
ASSIGNABLE_BUILTINS = ("admin", "manager", "sales_rep", "read_only")
DEFAULT_ROLES = ("read_only",)
ADMIN_ROLE = "admin"

ROLE_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{1,49}$")
PERMISSION_RE = re.compile(r"^[a-z][a-z0-9_-]*:(\*|[a-z][a-z0-9_.-]*(:(own|team))?)$")
MAX_ROLES_PER_USER = 20
MAX_ROLE_PERMISSIONS = 200
MAX_NAME = 100

PROFILE_LIMITS = {"title": 200, "department": 200, "bio": 2000, "location": 200}
LOCALE_RE = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z]{4}))?(?:[-_]([A-Za-z]{2}|[0-9]{3}))?$")
PHONE_CHARS_RE = re.compile(r"^[0-9+().\-\s/]+$")

# Preferences: known keys only, each with its rule; the whole object is bounded.
MAX_PREFERENCES_BYTES = 8 * 1024
MAX_UI_BYTES = 4 * 1024
PREFERENCE_CHOICES: dict[str, frozenset[str]] = {
    "theme": frozenset({"light", "dark", "system"}),
    "dateFormat": frozenset({"YYYY-MM-DD", "DD/MM/YYYY", "MM/DD/YYYY", "DD.MM.YYYY"}),
    "timeFormat": frozenset({"12h", "24h"}),
    "weekStart": frozenset({"monday", "sunday", "saturday"}),
}
NOTIFICATION_FLAGS = ("email", "inApp", "push")
DIGESTS = frozenset({"off", "daily", "weekly"})
PREFERENCE_KEYS = (*PREFERENCE_CHOICES, "pageSize", "defaultCurrency", "notifications", "ui")

TEAM_LIMITS = {"name": 100, "description": 1000}
MAX_TEAM_MEMBERS_AT_CREATE = 500


def _clean(value: Any) -> str:
    return " ".join(str(value or "").split())


# --- users ---------------------------------------------------------------------------------
def check_user(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[FieldViolation]]:
    """Normalize the writable user fields present in `values` (first_name, last_name, email)."""
    out: dict[str, Any] = {}
    problems: list[FieldViolation] = []
    for name, api in (("first_name", "firstName"), ("last_name", "lastName")):
        if name in values:
            out[name] = _clean(values[name])
            if len(out[name]) > MAX_NAME:
                problems.append(FieldViolation(api, f"must be at most {MAX_NAME} characters", "TOO_LONG"))
    if "email" in values:
        out["email"] = normalize_email(str(values["email"] or ""))
        if not out["email"]:
            problems.append(FieldViolation("email", "is required", "REQUIRED"))
        elif len(out["email"]) > 254 or not EMAIL_RE.match(out["email"]):
            problems.append(FieldViolation("email", "must be a valid email address"))
    return out, problems


def check_password(password: str) -> list[FieldViolation]:
    """An initial password obeys the sign-up rules; an empty one means "invite"."""
    weak = passwords.weakness(password) if password else None
    return [FieldViolation("password", f"password {weak}", "WEAK_PASSWORD")] if weak else []


def check_role_keys(keys: Iterable[str], field: str = "roles") -> tuple[list[str], list[FieldViolation]]:
    """Role keys as given (trimmed, duplicates dropped, order kept); existence is checked later."""
    out: list[str] = []
    problems: list[FieldViolation] = []
    for i, raw in enumerate(keys):
        key = str(raw).strip()
        if not ROLE_KEY_RE.match(key):
            problems.append(FieldViolation(f"{field}[{i}]", "must be a role key (lower-case letters, digits, _)"))
        elif key not in out:
            out.append(key)
    if len(out) > MAX_ROLES_PER_USER:
        problems.append(FieldViolation(field, f"at most {MAX_ROLES_PER_USER} roles", "TOO_MANY"))
    return out, problems


def user_status(active: bool, has_password: bool) -> str:
    if not active:
        return "inactive"
    return "active" if has_password else "invited"


# --- who may grant what --------------------------------------------------------------------
def grants(held: Iterable[str], permission: str) -> bool:
    """Whether `held` grants `permission`, with the kernel's own rules (`*`, `resource:*`)."""
    return RequestContext(tenant_id="-", user_id="-", permissions=frozenset(held)).can(permission)


def not_held(held: Iterable[str], wanted: Iterable[str]) -> list[str]:
    """The permissions of `wanted` that `held` does not grant: granting them would escalate."""
    held = frozenset(held)
    return sorted({p for p in wanted if not grants(held, p)})


# --- custom roles --------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _catalogue_resources(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(n.split(":", 1)[0] for n in names)


def _scoped_known(perm: str, known: frozenset[str]) -> bool:
    """`contacts:read:team` / `deals:write:own`: a catalogue permission narrowed to a record scope."""
    base, _, scope = perm.rpartition(":")
    return scope in SCOPES and base in known


def check_permissions(perms: Iterable[str], catalogue: Iterable[str]) -> tuple[list[str], list[FieldViolation]]:
    """Custom roles may grant catalogue permissions and `resource:*` of catalogue resources only:
    never `*` and never `platform:` permissions."""
    names = tuple(sorted(catalogue))
    known, resources = frozenset(names), _catalogue_resources(names)
    out: list[str] = []
    problems: list[FieldViolation] = []
    for i, raw in enumerate(perms):
        perm = str(raw).strip()
        resource, _, action = perm.partition(":")
        field = f"permissions[{i}]"
        if resource == PLATFORM:
            problems.append(FieldViolation(field, "platform permissions cannot be granted by a tenant role", "FORBIDDEN_PERMISSION"))
        elif not PERMISSION_RE.match(perm):
            problems.append(FieldViolation(field, "must be resource:action or resource:*", "INVALID_PERMISSION"))
        elif perm not in known and not (action == "*" and resource in resources) and not _scoped_known(perm, known):
            problems.append(FieldViolation(field, f"unknown permission {perm!r}; see GET /v1/permissions", "UNKNOWN_PERMISSION"))
        elif perm not in out:
            out.append(perm)
    if len(out) > MAX_ROLE_PERMISSIONS:
        problems.append(FieldViolation("permissions", f"at most {MAX_ROLE_PERMISSIONS} permissions", "TOO_MANY"))
    return sorted(out), problems


def check_role(values: Mapping[str, Any], catalogue: Iterable[str], *, creating: bool) -> tuple[dict[str, Any], list[FieldViolation]]:
    """A custom role's key (on creation), name, description and permissions."""
    out: dict[str, Any] = {}
    problems: list[FieldViolation] = []
    if creating:
        key = str(values.get("key", "")).strip()
        if not ROLE_KEY_RE.match(key):
            problems.append(FieldViolation("key", "must be 2 to 50 lower-case letters, digits or _, starting with a letter"))
        elif key in BUILTIN_ROLES:
            problems.append(FieldViolation("key", "is the key of a built-in role", "RESERVED"))
        out["key"] = key
    if "name" in values or creating:
        out["name"] = _clean(values.get("name", ""))
        if not out["name"]:
            problems.append(FieldViolation("name", "is required", "REQUIRED"))
        elif len(out["name"]) > MAX_NAME:
            problems.append(FieldViolation("name", f"must be at most {MAX_NAME} characters", "TOO_LONG"))
    if "description" in values:
        out["description"] = str(values["description"] or "").strip()
        if len(out["description"]) > 500:
            problems.append(FieldViolation("description", "must be at most 500 characters", "TOO_LONG"))
    if "permissions" in values:
        out["permissions"], bad = check_permissions(values["permissions"] or [], catalogue)
        problems.extend(bad)
    return out, problems


# --- profiles ------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def normalize_phone(raw: str) -> str:
    """`+49 (151) 123-456` -> `+49151123456`; `0049...` -> `+49...`; national numbers keep their digits."""
    digits = re.sub(r"\D", "", raw)
    stripped = raw.strip()
    if stripped.startswith("+"):
        return "+" + digits
    if stripped.startswith("00") and len(digits) > 2:
        return "+" + digits[2:]
    return digits


def check_profile(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[FieldViolation]]:
    """Normalize the profile fields present in `values`."""
    out: dict[str, Any] = {}
    problems: list[FieldViolation] = []
    for name, limit in PROFILE_LIMITS.items():
        if name in values:
            value = str(values[name] or "").strip() if name == "bio" else _clean(values[name])
            if len(value) > limit:
                problems.append(FieldViolation(name, f"must be at most {limit} characters", "TOO_LONG"))
            out[name] = value
    if "phone" in values:
        phone = str(values["phone"] or "").strip()
        if phone:
            digits = re.sub(r"\D", "", phone)
            if not PHONE_CHARS_RE.match(phone) or not 6 <= len(digits) <= 15:
                problems.append(FieldViolation("phone", "must be a phone number of 6 to 15 digits"))
            else:
                phone = normalize_phone(phone)
        out["phone"] = phone
    if "timezone" in values:
        tz = str(values["timezone"] or "").strip()
        if tz and tz not in _timezones():
            problems.append(FieldViolation("timezone", "must be an IANA time zone such as Europe/Berlin"))
        out["timezone"] = tz
    if "locale" in values:
        raw = str(values["locale"] or "").strip()
        m = LOCALE_RE.match(raw)
        if raw and not m:
            problems.append(FieldViolation("locale", "must be a language tag such as en or en-US"))
            out["locale"] = raw
        elif m:
            lang, script, region = m.groups()
            out["locale"] = "-".join(p for p in (lang.lower(), script and script.title(), region and region.upper()) if p)
        else:
            out["locale"] = ""
    return out, problems


# --- preferences ---------------------------------------------------------------------------
def check_preferences(prefs: Mapping[str, Any]) -> tuple[dict[str, Any], list[FieldViolation]]:
    """Known keys with valid values; the JSON form at most MAX_PREFERENCES_BYTES."""
    out: dict[str, Any] = {}
    problems: list[FieldViolation] = []

    def bad(key: str, message: str, code: str = "INVALID") -> None:
        problems.append(FieldViolation(f"preferences.{key}", message, code))

    for key, value in prefs.items():
        if key in PREFERENCE_CHOICES:
            if value not in PREFERENCE_CHOICES[key]:
                bad(key, f"must be one of {', '.join(sorted(PREFERENCE_CHOICES[key]))}")
            else:
                out[key] = value
        elif key == "pageSize":
            if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or not 10 <= value <= 100:
                bad(key, "must be a whole number from 10 to 100")
            else:
                out[key] = int(value)
        elif key == "defaultCurrency":
            if not isinstance(value, str) or not re.fullmatch(r"[A-Z]{3}", value):
                bad(key, "must be an ISO 4217 code such as EUR")
            else:
                out[key] = value
        elif key == "notifications":
            if not isinstance(value, dict):
                bad(key, "must be an object")
                continue
            note: dict[str, Any] = {}
            for sub, flag in value.items():
                if (sub in NOTIFICATION_FLAGS and isinstance(flag, bool)) or (sub == "digest" and flag in DIGESTS):
                    note[sub] = flag
                elif sub in NOTIFICATION_FLAGS:
                    bad(f"{key}.{sub}", "must be true or false")
                elif sub == "digest":
                    bad(f"{key}.{sub}", f"must be one of {', '.join(sorted(DIGESTS))}")
                else:
                    bad(f"{key}.{sub}", "unknown notification setting", "UNKNOWN_KEY")
            out[key] = note
        elif key == "ui":
            if not isinstance(value, dict):
                bad(key, "must be an object")
            elif len(json.dumps(value, separators=(",", ":"))) > MAX_UI_BYTES:
                bad(key, f"must be at most {MAX_UI_BYTES} bytes as JSON", "TOO_LARGE")
            else:
                out[key] = value
        else:
            bad(key, f"unknown preference; known: {', '.join(PREFERENCE_KEYS)}", "UNKNOWN_KEY")
    if len(json.dumps(prefs, separators=(",", ":"), default=str)) > MAX_PREFERENCES_BYTES:
        problems.append(FieldViolation("preferences", f"must be at most {MAX_PREFERENCES_BYTES} bytes as JSON", "TOO_LARGE"))
    return out, problems


# --- teams ---------------------------------------------------------------------------------
def check_team(values: Mapping[str, Any], *, creating: bool) -> tuple[dict[str, Any], list[FieldViolation]]:
    """Name (required on creation) and description; ids are checked against the database."""
    out: dict[str, Any] = {}
    problems: list[FieldViolation] = []
    if "name" in values or creating:
        out["name"] = _clean(values.get("name", ""))
        if not out["name"]:
            problems.append(FieldViolation("name", "is required", "REQUIRED"))
        elif len(out["name"]) > TEAM_LIMITS["name"]:
            problems.append(FieldViolation("name", f"must be at most {TEAM_LIMITS['name']} characters", "TOO_LONG"))
    if "description" in values:
        out["description"] = str(values["description"] or "").strip()
        if len(out["description"]) > TEAM_LIMITS["description"]:
            problems.append(FieldViolation("description", f"must be at most {TEAM_LIMITS['description']} characters", "TOO_LONG"))
    return out, problems
