"""What a valid activity is, and the time arithmetic behind calendars: ranges, merged busy
intervals, free time, and the first common free slot. Pure functions, no I/O, unit-tested."""

from __future__ import annotations

import bisect
import datetime as dt
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.kernel.errors import FieldViolation

TYPES = ("task", "event", "call", "email", "note")
STATUSES = frozenset({"open", "in_progress", "scheduled", "completed", "cancelled"})
DEFAULT_STATUS = {"task": "open", "event": "scheduled", "call": "completed", "email": "completed", "note": "completed"}
ALLOWED_STATUS = {
    "task": frozenset({"open", "in_progress", "completed", "cancelled"}),
    "event": frozenset({"scheduled", "completed", "cancelled"}),
    "call": frozenset({"scheduled", "completed", "cancelled"}),
    "email": frozenset({"open", "completed"}),
    "note": frozenset({"completed"}),
}
PRIORITIES = frozenset({"low", "normal", "high"})
DIRECTIONS = frozenset({"inbound", "outbound"})
OUTCOMES = frozenset({"", "connected", "voicemail", "no_answer", "busy", "wrong_number", "left_message"})
RESPONSES = frozenset({"needs-action", "accepted", "declined", "tentative"})
LINKS = ("contact_id", "account_id", "deal_id", "lead_id")
MAX_ATTENDEES = 100
MAX_EVENT = dt.timedelta(days=14)
MAX_LENGTHS = {"subject": 300, "location": 500, "body": 50_000, "outcome": 50}
EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")

# Columns a client writes (snake_case), in API order.
WRITABLE = ("type", "subject", "body", "due_at", "start_at", "end_at", "duration_seconds", "status", *LINKS,
            "owner_id", "priority", "location", "direction", "outcome", "attendees", "from_address", "to_addresses")

_CAMEL = {"due_at": "dueAt", "start_at": "startAt", "end_at": "endAt", "duration_seconds": "durationSeconds",
          "contact_id": "contactId", "account_id": "accountId", "deal_id": "dealId", "lead_id": "leadId",
          "owner_id": "ownerId", "from_address": "fromAddress", "to_addresses": "toAddresses",
          "user_id": "userId", "response_status": "responseStatus"}


def camel(name: str) -> str:
    return _CAMEL.get(name, name)


def _uuid(raw: Any) -> uuid.UUID | None:
    text = str(raw or "").strip()
    return uuid.UUID(text) if text else None


def check(values: Mapping[str, Any], prefix: str = "") -> tuple[dict[str, Any], list[FieldViolation]]:
    """Normalize a whole activity (snake_case keys, every writable field) and list every problem."""
    out: dict[str, Any] = {}
    problems: list[FieldViolation] = []

    def bad(name: str, message: str, code: str = "INVALID") -> None:
        problems.append(FieldViolation(f"{prefix}{camel(name)}", message, code))

    kind = str(values.get("type") or "").strip().lower()
    if kind not in TYPES:
        bad("type", f"must be one of {', '.join(TYPES)}", "REQUIRED" if not kind else "INVALID")
        return out, problems
    out["type"] = kind
    for name, limit in MAX_LENGTHS.items():
        text = str(values.get(name) or "")
        text = text.strip() if name == "body" else " ".join(text.split())
        if len(text) > limit:
            bad(name, f"must be at most {limit} characters", "TOO_LONG")
        out[name] = text
    for name in (*LINKS, "owner_id"):
        try:
            out[name] = _uuid(values.get(name))
        except ValueError:
            bad(name, "must be a UUID")
    for name in ("due_at", "start_at", "end_at"):
        out[name] = values.get(name)
    duration = int(values.get("duration_seconds") or 0)
    if duration < 0 or duration > 14 * 86400:
        bad("duration_seconds", "must be between 0 and 1209600 (14 days)", "OUT_OF_RANGE")
    status = str(values.get("status") or "").strip().lower() or DEFAULT_STATUS[kind]
    if status not in ALLOWED_STATUS[kind]:
        bad("status", f"a {kind} is one of {', '.join(sorted(ALLOWED_STATUS[kind]))}")
    out["status"] = status
    priority = str(values.get("priority") or "").strip().lower() or "normal"
    if priority not in PRIORITIES:
        bad("priority", "must be low, normal or high")
    out["priority"] = priority
    direction = str(values.get("direction") or "").strip().lower()
    if kind in ("call", "email"):
        direction = direction or "outbound"
        if direction not in DIRECTIONS:
            bad("direction", "must be inbound or outbound")
    elif direction:
        bad("direction", f"a {kind} has no direction")
    out["direction"] = direction
    outcome = out.pop("outcome").lower()
    if outcome and kind != "call":
        bad("outcome", "only calls have an outcome")
    elif outcome not in OUTCOMES:
        bad("outcome", f"must be one of {', '.join(sorted(OUTCOMES - {''}))}")
    out["outcome"] = outcome

    start, end, due = out["start_at"], out["end_at"], out["due_at"]
    if kind == "event":
        if start is None:
            bad("start_at", "an event needs a start", "REQUIRED")
        elif end is None and duration:
            end = out["end_at"] = start + dt.timedelta(seconds=duration)
        if start is not None and end is None:
            bad("end_at", "an event needs an end (or durationSeconds)", "REQUIRED")
    if start is not None and end is not None:
        if end <= start:
            bad("end_at", "must be after startAt", "OUT_OF_RANGE")
        elif end - start > MAX_EVENT:
            bad("end_at", "an activity lasts at most 14 days", "OUT_OF_RANGE")
        elif kind == "event":
            duration = int((end - start).total_seconds())
    elif end is not None:
        bad("start_at", "an end needs a start", "REQUIRED")
    out["duration_seconds"] = duration
    if due is not None and kind not in ("task", "email", "call"):
        bad("due_at", f"a {kind} has no due time")
    if kind in ("task", "event", "email") and not out["subject"]:
        bad("subject", f"a {kind} needs a subject", "REQUIRED")
    if kind == "call" and not out["subject"]:
        out["subject"] = "Call"
    if kind == "note" and not out["body"]:
        bad("body", "a note needs a body", "REQUIRED")

    sender = str(values.get("from_address") or "").strip().lower()
    recipients = [str(a).strip().lower() for a in values.get("to_addresses") or [] if str(a).strip()]
    if kind != "email" and (sender or recipients):
        bad("from_address" if sender else "to_addresses", "only emails have addresses")
    if sender and not EMAIL_RE.match(sender):
        bad("from_address", "must be a valid email address")
    for i, address in enumerate(recipients):
        if not EMAIL_RE.match(address):
            problems.append(FieldViolation(f"{prefix}toAddresses[{i}]", "must be a valid email address"))
    if len(recipients) > MAX_ATTENDEES:
        bad("to_addresses", f"at most {MAX_ATTENDEES} recipients", "TOO_MANY")
    out["from_address"], out["to_addresses"] = sender, recipients

    attendees = list(values.get("attendees") or [])
    if attendees and kind != "event":
        bad("attendees", "only events have attendees")
    if len(attendees) > MAX_ATTENDEES:
        bad("attendees", f"at most {MAX_ATTENDEES} attendees", "TOO_MANY")
    clean_attendees: list[dict[str, str]] = []
    seen: set[str] = set()
    for i, a in enumerate(attendees[:MAX_ATTENDEES]):
        where = f"{prefix}attendees[{i}]"
        email = str(a.get("email") or "").strip().lower()
        user = str(a.get("user_id") or "").strip()
        response = str(a.get("response_status") or "").strip().lower() or "needs-action"
        if email and not EMAIL_RE.match(email):
            problems.append(FieldViolation(f"{where}.email", "must be a valid email address"))
        if user:
            try:
                user = str(uuid.UUID(user))
            except ValueError:
                problems.append(FieldViolation(f"{where}.userId", "must be a UUID"))
        if not email and not user:
            problems.append(FieldViolation(f"{where}.email", "an attendee needs an email or a userId", "REQUIRED"))
        if response not in RESPONSES:
            problems.append(FieldViolation(f"{where}.responseStatus", f"must be one of {', '.join(sorted(RESPONSES))}"))
        key = user or email
        if key in seen:
            continue
        seen.add(key)
        clean_attendees.append({"email": email, "name": " ".join(str(a.get("name") or "").split())[:200],
                                "user_id": user, "response_status": response})
    out["attendees"] = clean_attendees
    return out, problems


# --- time ranges -------------------------------------------------------------------------------

def parse_instant(raw: str, field: str) -> dt.datetime:
    """An RFC 3339 time (zone required, `Z` allowed) or a date meaning midnight UTC."""
    text = raw.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), dt.UTC)
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{field}: not a date or an RFC 3339 time") from None
    if value.tzinfo is None:
        raise ValueError(f"{field}: give a time zone offset (e.g. Z)")
    return value.astimezone(dt.UTC)


def parse_range(start: str, end: str, max_days: int) -> tuple[tuple[dt.datetime, dt.datetime] | None, list[FieldViolation]]:
    problems: list[FieldViolation] = []
    parsed: dict[str, dt.datetime] = {}
    for name, raw in (("from", start), ("to", end)):
        if not raw.strip():
            problems.append(FieldViolation(name, f"{name} is required", "REQUIRED"))
            continue
        try:
            parsed[name] = parse_instant(raw, name)
        except ValueError as exc:
            problems.append(FieldViolation(name, str(exc).split(": ", 1)[1]))
    if problems:
        return None, problems
    if parsed["to"] <= parsed["from"]:
        return None, [FieldViolation("to", "must be after from", "OUT_OF_RANGE")]
    if parsed["to"] - parsed["from"] > dt.timedelta(days=max_days):
        return None, [FieldViolation("to", f"the range spans at most {max_days} days", "OUT_OF_RANGE")]
    return (parsed["from"], parsed["to"]), []


@dataclass(frozen=True, order=True)
class Interval:
    """A half-open interval [start, end) of aware datetimes."""

    start: dt.datetime
    end: dt.datetime


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping union; touching intervals join."""
    out: list[Interval] = []
    for iv in sorted(i for i in intervals if i.end > i.start):
        if out and iv.start <= out[-1].end:
            if iv.end > out[-1].end:
                out[-1] = Interval(out[-1].start, iv.end)
        else:
            out.append(iv)
    return out


def clip(intervals: Iterable[Interval], start: dt.datetime, end: dt.datetime) -> list[Interval]:
    return merge(Interval(max(i.start, start), min(i.end, end)) for i in intervals if i.end > start and i.start < end)


def free(busy: Sequence[Interval], start: dt.datetime, end: dt.datetime) -> list[Interval]:
    """The gaps of merged `busy` within [start, end)."""
    out: list[Interval] = []
    cursor = start
    for iv in clip(busy, start, end):
        if iv.start > cursor:
            out.append(Interval(cursor, iv.start))
        cursor = max(cursor, iv.end)
    if cursor < end:
        out.append(Interval(cursor, end))
    return out


@dataclass(frozen=True)
class WorkingHours:
    start: dt.time = dt.time(9, 0)
    end: dt.time = dt.time(17, 0)
    zone: str = "UTC"
    days: frozenset[int] = frozenset({1, 2, 3, 4, 5})  # ISO weekdays

    def windows(self, start: dt.datetime, end: dt.datetime) -> list[Interval]:
        """The working periods (in UTC) that overlap [start, end), clipped to it."""
        tz = ZoneInfo(self.zone)
        day = start.astimezone(tz).date() - dt.timedelta(days=1)
        last = end.astimezone(tz).date()
        out: list[Interval] = []
        while day <= last:
            if day.isoweekday() in self.days:
                open_at = dt.datetime.combine(day, self.start, tz).astimezone(dt.UTC)
                close_at = dt.datetime.combine(day, self.end, tz).astimezone(dt.UTC)
                if close_at > start and open_at < end:
                    out.append(Interval(max(open_at, start), min(close_at, end)))
            day += dt.timedelta(days=1)
        return out


def working_hours(start: str, end: str, zone: str, days: Sequence[int]) -> tuple[WorkingHours, list[FieldViolation]]:
    problems: list[FieldViolation] = []
    times: dict[str, dt.time] = {}
    for name, raw, default in (("start", start, dt.time(9, 0)), ("end", end, dt.time(17, 0))):
        if not raw:
            times[name] = default
            continue
        m = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", raw.strip())
        if m is None:
            problems.append(FieldViolation(f"workingHours.{name}", "must be HH:MM"))
            times[name] = default
        else:
            times[name] = dt.time(int(m[1]), int(m[2]))
    if times["end"] <= times["start"]:
        problems.append(FieldViolation("workingHours.end", "must be after workingHours.start", "OUT_OF_RANGE"))
    zone = zone.strip() or "UTC"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(FieldViolation("workingHours.timeZone", "not an IANA time zone"))
        zone = "UTC"
    if any(d < 1 or d > 7 for d in days):
        problems.append(FieldViolation("workingHours.days", "ISO weekdays are 1 (Monday) to 7 (Sunday)", "OUT_OF_RANGE"))
    chosen = frozenset(days) if days else frozenset({1, 2, 3, 4, 5})
    return WorkingHours(times["start"], times["end"], zone, chosen), problems


def first_common_slot(busy: Iterable[Interval], start: dt.datetime, end: dt.datetime, duration: dt.timedelta,
                      hours: WorkingHours, step: dt.timedelta) -> Interval | None:
    """The earliest [s, s + duration) inside [start, end) and one working period, overlapping no
    busy interval (every attendee's busy time together), with s on the `step` grid of the local
    working day (09:00, 09:15 ...). None when there is no such slot."""
    merged = merge(busy)
    starts = [iv.start for iv in merged]
    for window in hours.windows(start, end):
        local_open = dt.datetime.combine(window.start.astimezone(ZoneInfo(hours.zone)).date(), hours.start,
                                         ZoneInfo(hours.zone)).astimezone(dt.UTC)
        # First grid point at or after the window start.
        offset = (window.start - local_open) % step
        candidate = window.start if not offset else window.start + (step - offset)
        while candidate + duration <= window.end:
            slot = Interval(candidate, candidate + duration)
            # The last busy interval starting before the slot ends is the only one that can overlap
            # it (merged intervals are disjoint and sorted).
            i = bisect.bisect_left(starts, slot.end) - 1
            if i < 0 or merged[i].end <= slot.start:
                return slot
            # Jump past the blocking interval, back onto the grid.
            blocked_until = merged[i].end
            offset = (blocked_until - local_open) % step
            candidate = blocked_until if not offset else blocked_until + (step - offset)
    return None
