"""Reading leads out of emails, social profiles and web forms (services/leads/capture.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.leads import assignment, capture

DATA = Path(__file__).parent / "data"


def test_email_reply_with_display_name_and_signature() -> None:
    c = capture.from_email((DATA / "lead_reply.eml").read_bytes())
    v = c.values
    # "Doe, Jane" is a display name in Last, First order.
    assert (v["first_name"], v["last_name"], v["email"]) == ("Jane", "Doe", "jane.doe@globex-corp.co.uk")
    assert v["title"] == "Head of Procurement" and v["company"] == "Globex Corporation"
    assert v["phone"] == "+442079460958" and v["website"] == "www.globex-corp.co.uk"
    assert v["description"].startswith("Pricing for 200 seats\n\nHello,")
    assert "quote before the end of the month" in v["description"]  # quoted-printable soft break joined
    assert "Thanks for your interest" not in v["description"]  # the quoted reply is dropped
    assert c.ref == "email:<CAF=abc123@mail.globex-corp.co.uk>"
    assert c.capture["subject"] == "Pricing for 200 seats" and c.capture["fromName"] == "Doe, Jane"


def test_email_with_encoded_words_latin1_body_and_sig_delimiter() -> None:
    c = capture.from_email((DATA / "lead_german.eml").read_bytes())
    v = c.values
    assert (v["first_name"], v["last_name"]) == ("Jürgen", "Müller")
    assert v["title"] == "Vertriebsleiter" and v["company"] == "Initech GmbH"
    assert v["phone"] == "+4915123456789"
    assert c.capture["subject"] == "Anfrage CRM für 50 Nutzer"
    assert "wir suchen ein CRM für 50 Nutzer." in v["description"]


def test_email_refusals() -> None:
    with pytest.raises(capture.CaptureError) as err:
        capture.from_email(b"")
    assert err.value.field == "message" and err.value.code == "REQUIRED"
    with pytest.raises(capture.CaptureError):
        capture.from_email(b"Subject: no sender\r\n\r\nhello")
    with pytest.raises(capture.CaptureError):
        capture.from_email(b"just some text without headers")


def test_no_reply_sender_uses_reply_to() -> None:
    raw = (b"From: Web Shop <no-reply@shop.example>\r\nReply-To: Ann Lee <ann@lee.example>\r\n"
           b"Subject: Contact request\r\n\r\nPlease call me.\r\n")
    v = capture.from_email(raw).values
    assert (v["email"], v["first_name"], v["last_name"]) == ("ann@lee.example", "Ann", "Lee")


def test_social_profile() -> None:
    c = capture.from_social("LinkedIn", {"name": "Dr. Jane Doe", "headline": "VP Sales at Globex | Speaker",
                                         "profile_url": "HTTPS://www.LinkedIn.com/in/jane-doe/", "location": "London"})
    assert (c.values["first_name"], c.values["last_name"]) == ("Jane", "Doe")
    assert c.values["title"] == "VP Sales" and c.values["company"] == "Globex"
    assert c.ref == "social:https://linkedin.com/in/jane-doe" and c.capture["network"] == "linkedin"
    with pytest.raises(capture.CaptureError) as err:
        capture.from_social("myspace", {"name": "X"})
    assert err.value.field == "network"
    with pytest.raises(capture.CaptureError) as err:
        capture.from_social("x", {"headline": "no name"})
    assert err.value.field == "profile.name"


def test_web_form_fields_honeypot_and_limits() -> None:
    values, trapped = capture.form_fields({"name": "Ann Lee", "Email": "ann@lee.example", "company_name": "Lee Ltd",
                                           "message": "Hi", "budget": "10k", "_gotcha": ""}, "_gotcha")
    assert not trapped
    assert values == {"first_name": "Ann", "last_name": "Lee", "email": "ann@lee.example", "company": "Lee Ltd",
                      "description": "Hi", "custom_fields": {"budget": "10k"}}
    _, trapped = capture.form_fields({"email": "bot@spam.example", "_gotcha": "http://spam"}, "_gotcha")
    assert trapped
    with pytest.raises(capture.CaptureError) as err:
        capture.form_fields({"message": "x" * 2001}, "_gotcha")
    assert err.value.field == "fields.message" and err.value.code == "TOO_LONG"
    with pytest.raises(capture.CaptureError):
        capture.form_fields({f"f{i}": "x" for i in range(51)}, "_gotcha")
    with pytest.raises(capture.CaptureError):
        capture.form_fields({"email": {"nested": "object"}}, "_gotcha")


def test_round_robin_skips_assignees_at_capacity() -> None:
    users = ["a", "b", "c"]
    assert assignment.next_assignee(users, None, {}, 0) == "a"
    assert assignment.next_assignee(users, "a", {}, 0) == "b"
    assert assignment.next_assignee(users, "c", {}, 0) == "a"
    assert assignment.next_assignee(users, "a", {"b": 2}, 2) == "c"
    assert assignment.next_assignee(users, "a", {"a": 1, "b": 1, "c": 1}, 1) is None
    assert assignment.next_assignee(users, "gone", {}, 0) == "a"
    assert assignment.next_assignee([], None, {}, 0) is None
    rule = assignment.RuleView("r", ("web-form",), (), ("GB",), 0)
    assert assignment.matches(rule, {"source": "Web-Form", "country": "gb"})
    assert not assignment.matches(rule, {"source": "email", "country": "GB"})
    assert not assignment.matches(rule, {"source": "web-form", "country": "US"})
