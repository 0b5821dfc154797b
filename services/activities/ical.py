"""iCalendar (RFC 5545) for events: invitations (METHOD:REQUEST) and the VEVENTs exchanged with
CalDAV servers, built and parsed with the `icalendar` package."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import icalendar

PRODID = "-//CRM Platform//Activities//EN"
CONTENT_TYPE = "text/calendar; method=REQUEST; charset=utf-8"
_STATUS_TO_ICAL = {"scheduled": "CONFIRMED", "completed": "CONFIRMED", "cancelled": "CANCELLED"}


@dataclass(frozen=True)
class Person:
    email: str = ""
    name: str = ""
    user_id: str = ""

    def address(self) -> icalendar.vCalAddress:
        # Users known only by id get a urn:uuid address (RFC 5545 allows any URI).
        value = f"mailto:{self.email}" if self.email else f"urn:uuid:{self.user_id}"
        return icalendar.vCalAddress(value)


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


def vevent(row: Mapping[Any, Any], organizer: Person | None = None, *, stamp: dt.datetime | None = None) -> icalendar.Event:
    """The VEVENT of an event row (UID and SEQUENCE from the row, so they stay stable)."""
    event = icalendar.Event()
    event.add("uid", row["ical_uid"])
    event.add("dtstamp", _utc(stamp or dt.datetime.now(dt.UTC)))
    event.add("dtstart", _utc(row["start_at"]))
    event.add("dtend", _utc(row["end_at"]))
    event.add("sequence", int(row["sequence"]))
    event.add("summary", row["subject"])
    if row.get("body"):
        event.add("description", row["body"])
    if row.get("location"):
        event.add("location", row["location"])
    event.add("status", _STATUS_TO_ICAL.get(row["status"], "CONFIRMED"))
    event.add("last-modified", _utc(row["updated_at"]))
    event.add("created", _utc(row["created_at"]))
    if organizer is not None:
        address = organizer.address()
        if organizer.name:
            address.params["CN"] = organizer.name
        event.add("organizer", address)
    for attendee in row.get("attendees") or []:
        person = Person(attendee.get("email", ""), attendee.get("name", ""), attendee.get("user_id", ""))
        address = person.address()
        if person.name:
            address.params["CN"] = person.name
        address.params["ROLE"] = "REQ-PARTICIPANT"
        address.params["PARTSTAT"] = str(attendee.get("response_status") or "needs-action").upper()
        address.params["RSVP"] = "TRUE"
        event.add("attendee", address)
    return event


def calendar(*events: icalendar.Event, method: str = "") -> icalendar.Calendar:
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    if method:
        cal.add("method", method)
    for event in events:
        cal.add_component(event)
    return cal


def invitation(row: Mapping[Any, Any], organizer: Person) -> str:
    """A METHOD:REQUEST calendar for the event's attendees (a new one or an update: same UID,
    higher SEQUENCE)."""
    return calendar(vevent(row, organizer), method="REQUEST").to_ical().decode()


@dataclass
class RemoteEvent:
    """What the CRM takes from a VEVENT found on a calendar server."""

    uid: str
    subject: str
    body: str
    location: str
    start_at: dt.datetime
    end_at: dt.datetime
    status: str
    last_modified: dt.datetime | None
    sequence: int
    attendees: list[dict[str, str]] = field(default_factory=list)


def _as_datetime(value: Any) -> dt.datetime:
    # All-day events carry dates: they start at midnight UTC.
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.combine(value, dt.time(), dt.UTC)


def parse_event(text: str | bytes) -> RemoteEvent | None:
    """The first VEVENT of a calendar object (the master, not a recurrence override); None when
    there is none or it has no start."""
    cal = icalendar.Calendar.from_ical(text)
    for event in cal.walk("VEVENT"):
        if event.get("recurrence-id") is not None or event.get("dtstart") is None:
            continue
        start = _as_datetime(event.decoded("dtstart"))
        if event.get("dtend") is not None:
            end = _as_datetime(event.decoded("dtend"))
        elif event.get("duration") is not None:
            end = start + event.decoded("duration")
        else:
            end = start + dt.timedelta(hours=1)
        if end <= start:
            end = start + dt.timedelta(minutes=1)
        modified = event.get("last-modified") or event.get("dtstamp")
        attendees = []
        raw = event.get("attendee")
        for a in raw if isinstance(raw, list) else [raw] if raw is not None else []:
            address = str(a)
            attendees.append({
                "email": address[7:].lower() if address.lower().startswith("mailto:") else "",
                "name": str(a.params.get("CN", "")),
                "user_id": address[9:] if address.lower().startswith("urn:uuid:") else "",
                "response_status": str(a.params.get("PARTSTAT", "NEEDS-ACTION")).lower(),
            })
        status = str(event.get("status", "CONFIRMED")).upper()
        return RemoteEvent(
            uid=str(event.get("uid", "")),
            subject=str(event.get("summary", "")),
            body=str(event.get("description", "")),
            location=str(event.get("location", "")),
            start_at=start.astimezone(dt.UTC),
            end_at=end.astimezone(dt.UTC),
            status="cancelled" if status == "CANCELLED" else "scheduled",
            last_modified=_as_datetime(modified.dt).astimezone(dt.UTC) if modified is not None else None,
            sequence=int(event.get("sequence", 0)),
            attendees=[a for a in attendees if a["email"] or a["user_id"]],
        )
    return None
