"""Pure rules of the activities service: validation, interval arithmetic, the first common free
slot, iCalendar invitations, and the CalDAV URL guard."""

from __future__ import annotations

import datetime as dt
from typing import Any

import icalendar
import pytest

from services.activities import caldav, ical, rules
from services.activities.rules import Interval, WorkingHours, first_common_slot

UTC = dt.UTC


def t(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """2026-03-<day> (the 2nd is a Monday) at hour:minute UTC."""
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=UTC)


MIN30 = dt.timedelta(minutes=30)
STEP = dt.timedelta(minutes=15)


def test_first_slot_is_the_start_of_working_hours_when_nobody_is_busy() -> None:
    assert first_common_slot([], t(2, 0), t(7, 0), MIN30, WorkingHours(), STEP) == Interval(t(2, 9), t(2, 9, 30))


def test_first_slot_skips_every_attendees_busy_time_and_lands_on_the_grid() -> None:
    busy = [Interval(t(2, 9), t(2, 10, 5)),        # one attendee until 10:05
            Interval(t(2, 10, 15), t(2, 11)),      # another from 10:15
            Interval(t(2, 11, 30), t(2, 12))]
    # 10:15 is the first grid point after 10:05, but it is taken; 11:00-11:30 fits exactly.
    assert first_common_slot(busy, t(2, 0), t(7, 0), MIN30, WorkingHours(), STEP) == Interval(t(2, 11), t(2, 11, 30))


def test_first_slot_moves_to_the_next_working_day_and_skips_weekends() -> None:
    friday_full = [Interval(t(6, 8), t(6, 18))]
    # From Friday 6 March: Friday is full, the weekend is not working time, Monday 9 March 09:00.
    assert first_common_slot(friday_full, t(6, 0), t(12, 0), MIN30, WorkingHours(), STEP) == Interval(t(9, 9), t(9, 9, 30))


def test_first_slot_respects_the_range_start_and_end() -> None:
    # Starting mid-morning rounds up to the grid; a slot must end by the range's end.
    assert first_common_slot([], t(2, 10, 7), t(2, 12), MIN30, WorkingHours(), STEP) == Interval(t(2, 10, 15), t(2, 10, 45))
    assert first_common_slot([], t(2, 16, 45), t(2, 23), MIN30, WorkingHours(), STEP) is None
    assert first_common_slot([Interval(t(2, 9), t(2, 17))], t(2, 0), t(3, 0), MIN30, WorkingHours(), STEP) is None


def test_first_slot_in_a_time_zone_follows_local_working_hours() -> None:
    berlin = WorkingHours(dt.time(9), dt.time(17), "Europe/Berlin")
    # 09:00 in Berlin on 2 March (CET, UTC+1) is 08:00 UTC.
    assert first_common_slot([], t(2, 0), t(3, 0), MIN30, berlin, STEP) == Interval(t(2, 8), t(2, 8, 30))
    # After the switch to summer time (29 March), 09:00 Berlin is 07:00 UTC.
    assert first_common_slot([], t(30, 0), t(31, 0), MIN30, berlin, STEP) == Interval(t(30, 7), t(30, 7, 30))


def test_a_meeting_longer_than_the_gap_does_not_fit() -> None:
    busy = [Interval(t(2, 9), t(2, 10)), Interval(t(2, 10, 30), t(2, 17))]
    assert first_common_slot(busy, t(2, 0), t(3, 0), dt.timedelta(minutes=45), WorkingHours(), STEP) is None
    assert first_common_slot(busy, t(2, 0), t(3, 0), MIN30, WorkingHours(), STEP) == Interval(t(2, 10), t(2, 10, 30))


def test_merge_and_free() -> None:
    merged = rules.merge([Interval(t(2, 10), t(2, 11)), Interval(t(2, 9), t(2, 10)), Interval(t(2, 10, 30), t(2, 12)),
                          Interval(t(2, 14), t(2, 15))])
    assert merged == [Interval(t(2, 9), t(2, 12)), Interval(t(2, 14), t(2, 15))]
    assert rules.free(merged, t(2, 8), t(2, 16)) == [Interval(t(2, 8), t(2, 9)), Interval(t(2, 12), t(2, 14)),
                                                     Interval(t(2, 15), t(2, 16))]
    assert rules.free([], t(2, 8), t(2, 9)) == [Interval(t(2, 8), t(2, 9))]


def test_ranges_are_bounded_and_accept_dates() -> None:
    span, problems = rules.parse_range("2026-03-02", "2026-03-03T12:00:00Z", 31)
    assert problems == [] and span == (t(2, 0), t(3, 12))
    _, problems = rules.parse_range("2026-03-02", "2026-06-02", 31)
    assert problems[0].field == "to" and problems[0].code == "OUT_OF_RANGE"
    _, problems = rules.parse_range("2026-03-02T10:00:00", "2026-03-03", 31)
    assert problems[0].field == "from"  # no zone: ambiguous
    _, problems = rules.parse_range("", "2026-03-01", 31)
    assert problems[0].field == "from" and problems[0].code == "REQUIRED"


def test_working_hours_are_validated() -> None:
    _, problems = rules.working_hours("18:00", "09:00", "Mars/Olympus", [0])
    assert {p.field for p in problems} == {"workingHours.end", "workingHours.timeZone", "workingHours.days"}


def test_event_rules() -> None:
    base = {name: None for name in rules.WRITABLE}
    _, problems = rules.check({**base, "type": "event", "subject": "Demo"})
    assert [p.field for p in problems] == ["startAt"]
    clean, problems = rules.check({**base, "type": "event", "subject": "Demo", "start_at": t(2, 9), "duration_seconds": 1800})
    assert problems == [] and clean["end_at"] == t(2, 9, 30) and clean["status"] == "scheduled"
    _, problems = rules.check({**base, "type": "event", "subject": "x", "start_at": t(2, 9), "end_at": t(2, 8)})
    assert problems[0].field == "endAt"
    _, problems = rules.check({**base, "type": "note"})
    assert problems[0].field == "body"
    _, problems = rules.check({**base, "type": "task", "subject": "x", "attendees": [{"email": "a@b.co"}]})
    assert problems[0].field == "attendees"
    _, problems = rules.check({**base, "type": "email", "subject": "x", "to_addresses": ["nope"]})
    assert problems[0].field == "toAddresses[0]"


def _row(**over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "ical_uid": "e1@crm", "start_at": t(2, 9), "end_at": t(2, 9, 30), "sequence": 0, "subject": "Kick-off",
        "body": "Agenda", "location": "Room 1", "status": "scheduled", "created_at": t(1, 8), "updated_at": t(1, 8),
        "attendees": [{"email": "bob@example.com", "name": "Bob", "user_id": "", "response_status": "needs-action"},
                      {"email": "", "name": "Cy", "user_id": "5b1e0c52-7c1e-4c55-9a43-0d2f5f6f3f11",
                       "response_status": "needs-action"}],
    }
    row.update(over)
    return row


def test_invitation_is_an_rfc5545_request_that_parses_back() -> None:
    text = ical.invitation(_row(), ical.Person("ann@example.com", "Ann Lee", "u1"))
    cal = icalendar.Calendar.from_ical(text)
    assert str(cal["method"]) == "REQUEST" and str(cal["version"]) == "2.0" and cal.get("prodid")
    event: Any = cal.walk("VEVENT")[0]
    assert str(event["uid"]) == "e1@crm" and int(event["sequence"]) == 0
    assert event.decoded("dtstart") == t(2, 9) and event.decoded("dtend") == t(2, 9, 30)
    assert str(event["summary"]) == "Kick-off" and str(event["location"]) == "Room 1"
    assert str(event["organizer"]) == "mailto:ann@example.com" and event["organizer"].params["CN"] == "Ann Lee"
    attendees = {str(a): a.params for a in event["attendee"]}
    assert attendees["mailto:bob@example.com"]["PARTSTAT"] == "NEEDS-ACTION"
    assert attendees["mailto:bob@example.com"]["RSVP"] == "TRUE"
    assert "urn:uuid:5b1e0c52-7c1e-4c55-9a43-0d2f5f6f3f11" in attendees
    assert event.get("dtstamp") is not None


def test_parse_event_reads_what_servers_send() -> None:
    text = ical.calendar(ical.vevent(_row(sequence=3))).to_ical()
    remote = ical.parse_event(text)
    assert remote is not None
    assert (remote.uid, remote.subject, remote.start_at, remote.end_at, remote.sequence) == ("e1@crm", "Kick-off", t(2, 9), t(2, 9, 30), 3)
    assert remote.attendees[0]["email"] == "bob@example.com"
    all_day = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:d1\r\nDTSTAMP:20260101T000000Z\r\n"
               b"DTSTART;VALUE=DATE:20260302\r\nSUMMARY:Offsite\r\nSTATUS:CANCELLED\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    remote = ical.parse_event(all_day)
    assert remote is not None and remote.start_at == t(2, 0) and remote.status == "cancelled"


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:5232/ann/cal/", "http://localhost/cal/", "http://10.1.2.3/cal/", "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/", "http://[::1]/cal/", "http://[fd00::1]/", "http://100.64.0.1/",
    "http://0.0.0.0/", "http://[::ffff:127.0.0.1]/",
])
async def test_calendar_urls_to_internal_addresses_are_refused(url: str) -> None:
    assert "internal address" in await caldav.check_url(url, allow_loopback=False)


async def test_calendar_url_shape_is_checked() -> None:
    assert await caldav.check_url("ftp://example.com/", allow_loopback=False) == "must be an http or https URL"
    assert "credentials" in await caldav.check_url("http://u:p@8.8.8.8/", allow_loopback=False)
    assert await caldav.check_url("https://8.8.8.8/dav/", allow_loopback=False) == ""
    # Loopback only when the deployment allows it; private ranges never.
    assert await caldav.check_url("http://127.0.0.1:5232/", allow_loopback=True) == ""
    assert await caldav.check_url("http://10.0.0.1/", allow_loopback=True) != ""


async def test_the_connection_guard_refuses_at_connect_time_too() -> None:
    """A host that passed the check but resolves elsewhere later (DNS rebinding) is still refused
    when the request connects."""
    client = caldav.CalDavClient("http://127.0.0.1:9/cal/", "", "", allow_loopback=False)
    try:
        with pytest.raises(caldav.CalDavError, match="non-public"):
            await client.check()
    finally:
        await client.close()
