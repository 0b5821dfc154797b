"""Reading leads out of what arrives: web-form fields, RFC 5322 email messages and social
profiles. Pure functions: they return lead values (snake_case) and capture facts, and never
touch storage."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import phonenumbers

from services.leads.enrich import parse_name

MAX_FORM_FIELDS = 50
MAX_FORM_VALUE = 2000
MAX_EMAIL_BYTES = 10 * 1024 * 1024
MAX_BODY_CHARS = 10_000
SIGNATURE_LINES = 12

# Web-form field names (lower-cased, without `_`, `-` and spaces) -> lead field.
FORM_FIELDS = {
    "firstname": "first_name", "fname": "first_name", "givenname": "first_name",
    "lastname": "last_name", "lname": "last_name", "surname": "last_name", "familyname": "last_name",
    "name": "name", "fullname": "name", "yourname": "name",
    "email": "email", "emailaddress": "email", "youremail": "email", "mail": "email",
    "phone": "phone", "phonenumber": "phone", "tel": "phone", "telephone": "phone", "mobile": "phone",
    "company": "company", "companyname": "company", "organization": "company", "organisation": "company",
    "title": "title", "jobtitle": "title", "position": "title", "role": "title",
    "website": "website", "url": "website", "companywebsite": "website",
    "message": "description", "comments": "description", "comment": "description", "notes": "description",
    "description": "description", "enquiry": "description", "inquiry": "description",
    "country": "country",
}

# Closing words that open a signature block when the `-- ` delimiter is missing.
VALEDICTIONS = re.compile(
    r"^(best( regards| wishes)?|kind regards|warm regards|regards|many thanks|thanks( again)?|thank you|"
    r"cheers|sincerely|yours( sincerely| truly)?|all the best|mit freundlichen grüßen|viele grüße|"
    r"cordialement|saludos|un saludo)[,.!]?$",
    re.IGNORECASE,
)
TITLE_WORDS = re.compile(
    r"\b(ceo|cto|cfo|coo|cmo|cio|ciso|vp|svp|evp|chief|president|vice|director|head|manager|lead|officer|"
    r"founder|co-founder|owner|partner|principal|engineer|developer|architect|consultant|analyst|specialist|"
    r"executive|coordinator|administrator|buyer|procurement|sales|marketing|account|associate|advisor|"
    r"representative|assistant|secretary|scientist|designer|strategist|\w*leiter(in)?|geschäftsführer(in)?|"
    r"directeur|directrice|gerente|responsable)\b",
    re.IGNORECASE,
)
COMPANY_WORDS = re.compile(
    r"\b(inc|inc\.|incorporated|ltd|ltd\.|limited|llc|llp|plc|gmbh|ag|s\.a\.|sarl|sas|bv|b\.v\.|nv|"
    r"spa|s\.p\.a\.|srl|pty|co\.|corp|corp\.|corporation|company|group|holdings|technologies|solutions|"
    r"systems|labs|partners|consulting|industries|gmbh & co\. kg|kg)\b",
    re.IGNORECASE,
)
URL_RE = re.compile(r"\b((?:https?://)?(?:www\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}(?:/\S*)?)", re.IGNORECASE)
SOCIAL_NETWORKS = frozenset({"linkedin", "twitter", "x", "facebook", "github", "instagram", "xing", "other"})


class CaptureError(ValueError):
    """Input that cannot become a lead; `field` is the offending request field."""

    def __init__(self, field_name: str, message: str, code: str = "INVALID") -> None:
        super().__init__(message)
        self.field, self.message, self.code = field_name, message, code


@dataclass
class Captured:
    """Lead values (snake_case) and what the capture knows about where they came from."""

    values: dict[str, Any] = field(default_factory=dict)
    capture: dict[str, Any] = field(default_factory=dict)
    ref: str = ""  # makes the same capture twice a conflict (Message-ID, profile URL)
    signature: dict[str, str] = field(default_factory=dict)  # what the email signature gave


def _norm_key(key: str) -> str:
    return re.sub(r"[\s_\-]+", "", key).lower()


def _name_into(values: dict[str, Any], full: str) -> None:
    first, last = parse_name(full)
    values.setdefault("first_name", first)
    values.setdefault("last_name", last)


# --- web forms ---------------------------------------------------------------------------

def form_fields(fields: Mapping[str, Any], honeypot: str) -> tuple[dict[str, Any], bool]:
    """(lead values, honeypot filled) of a web-form submission. Known names fill the lead,
    the rest become custom fields; every value must be a short scalar."""
    if len(fields) > MAX_FORM_FIELDS:
        raise CaptureError("fields", f"at most {MAX_FORM_FIELDS} fields", "TOO_MANY")
    values: dict[str, Any] = {}
    custom: dict[str, str] = {}
    trapped = False
    for key, raw in fields.items():
        if isinstance(raw, dict | list):
            raise CaptureError(f"fields.{key}", "must be a text value")
        value = "" if raw is None else str(raw).strip()
        if isinstance(raw, float) and raw.is_integer():
            value = str(int(raw))
        if len(value) > MAX_FORM_VALUE or len(key) > 100:
            raise CaptureError(f"fields.{key}", f"must be at most {MAX_FORM_VALUE} characters", "TOO_LONG")
        if key == honeypot:
            trapped = trapped or bool(value)
            continue
        target = FORM_FIELDS.get(_norm_key(key))
        if target == "name":
            if value:
                _name_into(values, value)
        elif target:
            values[target] = value
        elif value:
            custom[key] = value
    if custom:
        values["custom_fields"] = custom
    return values, trapped


# --- email -------------------------------------------------------------------------------

class _TextOfHtml(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("br", "p", "div", "tr", "li"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _html_text(html: str) -> str:
    parser = _TextOfHtml()
    parser.feed(html)
    return "".join(parser.parts)


def _body_text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # unknown charset, broken transfer encoding
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    text = content if isinstance(content, str) else ""
    if part.get_content_subtype() == "html":
        text = _html_text(text)
    return text.replace("\r\n", "\n")


def _without_quotes(text: str) -> str:
    """The new part of a reply: quoted lines and everything from `On ... wrote:` dropped."""
    kept = []
    for line in text.split("\n"):
        if re.match(r"^\s*On .+ wrote:\s*$", line) or line.startswith("-----Original Message-----"):
            break
        if not line.lstrip().startswith(">"):
            kept.append(line)
    return "\n".join(kept)


def signature_block(body: str) -> list[str]:
    """The lines of the sender's signature: after the `-- ` delimiter (RFC 3676), else after a
    closing such as "Best regards,"; at most a dozen lines."""
    lines = [ln.rstrip() for ln in _without_quotes(body).split("\n")]
    start = None
    for i, line in enumerate(lines):
        if line in ("-- ", "--", "—"):
            start = i + 1
    if start is None:
        for i in range(len(lines) - 1, -1, -1):
            if VALEDICTIONS.match(lines[i].strip()):
                start = i + 1
                break
    if start is None:
        return []
    return [ln.strip() for ln in lines[start:] if ln.strip()][:SIGNATURE_LINES]


def parse_signature(lines: list[str], sender_name: str, sender_domain: str) -> dict[str, str]:
    """Phone, title, company and web site from signature lines (what is recognisable)."""
    found: dict[str, str] = {}
    name_words = {w.lower() for w in sender_name.split()}
    for raw in lines:
        line = raw.strip(" |•·")
        low = line.lower()
        if "phone" not in found:
            match = next(iter(phonenumbers.PhoneNumberMatcher(line, "US")), None)
            if match is not None and ("+" in line or re.search(r"\b(tel|phone|mobile|mob|cell|t|m|p)\b", low)):
                found["phone"] = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
                continue
            if match is not None:
                continue  # digits without a country: not reliable enough
        if "@" in line:
            continue
        url = URL_RE.search(line)
        if url and line == url.group(1) and "website" not in found:
            found["website"] = url.group(1)
            continue
        words = {w.lower().strip(",.") for w in line.split()}
        if name_words and words and words <= name_words:
            continue  # the sender's own name
        # "Title | Company", "Title, Company", "Title at Company"
        pieces = [p.strip() for p in re.split(r"\s+(?:\||at|@|–|—)\s+|\s*,\s+(?=[A-Z])", line) if p.strip()]
        if len(pieces) == 2 and "title" not in found and (TITLE_WORDS.search(pieces[0]) or COMPANY_WORDS.search(pieces[1])):
            found["title"] = pieces[0]
            found.setdefault("company", pieces[1])
            continue
        if COMPANY_WORDS.search(line) and "company" not in found and len(line) <= 120:
            found["company"] = line
            continue
        if TITLE_WORDS.search(line) and "title" not in found and len(line) <= 120:
            found["title"] = line
            continue
        if sender_domain and "company" not in found and re.sub(r"[^a-z0-9]", "", low) and \
                re.sub(r"[^a-z0-9]", "", low) == re.sub(r"[^a-z0-9]", "", sender_domain.split(".")[0]):
            found["company"] = line  # the line spells the sender's domain: "Globex"
    return found


def from_email(raw: bytes) -> Captured:
    """A lead from a raw RFC 5322 message: the sender (display name and address), the subject,
    the new text of the body and what its signature says."""
    if not raw.strip():
        raise CaptureError("message", "send the raw email message (message/rfc822) as the body", "REQUIRED")
    if len(raw) > MAX_EMAIL_BYTES:
        raise CaptureError("message", f"the message must be at most {MAX_EMAIL_BYTES // (1024 * 1024)} MiB", "TOO_LARGE")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    if not isinstance(msg, EmailMessage) or not msg.keys():
        raise CaptureError("message", "not an RFC 5322 message: no header fields")
    sender_header = msg.get("Reply-To") if _is_no_reply(str(msg.get("From", ""))) else msg.get("From")
    addresses = getaddresses([str(sender_header or "")])
    display, address = addresses[0] if addresses else parseaddr(str(sender_header or ""))
    address = address.strip().lower()
    if not address or "@" not in address:
        raise CaptureError("message", "the message has no sender address (From)")
    body = _body_text(msg)
    lines = signature_block(body)
    signature = parse_signature(lines, display, address.rsplit("@", 1)[1])
    values: dict[str, Any] = {"email": address}
    if display:
        _name_into(values, display)
    for key in ("phone", "title", "company", "website"):
        if signature.get(key):
            values[key] = signature[key]
    subject = " ".join(str(msg.get("Subject", "")).split())
    text = _without_quotes(body).strip()
    description = (f"{subject}\n\n{text}" if subject else text)[:MAX_BODY_CHARS]
    values["description"] = description
    message_id = str(msg.get("Message-ID", "")).strip()[:500]
    capture: dict[str, Any] = {"channel": "email", "messageId": message_id, "subject": subject[:500],
               "date": str(msg.get("Date", ""))[:100], "fromName": display[:200], "fromAddress": address}
    if signature:
        capture["signature"] = signature
    return Captured(values=values, capture=capture, ref=f"email:{message_id}" if message_id else "", signature=signature)


def _is_no_reply(header: str) -> bool:
    return bool(re.search(r"no-?reply|do-?not-?reply", header, re.IGNORECASE))


# --- social profiles ---------------------------------------------------------------------

def normalize_profile_url(raw: str) -> str:
    """`HTTPS://www.LinkedIn.com/in/jane-doe/?trk=x` -> `https://linkedin.com/in/jane-doe`."""
    value = raw.strip()
    parts = urlsplit(value if "://" in value else "https://" + value)
    host = (parts.hostname or "").lower().removeprefix("www.")
    if parts.scheme not in ("http", "https") or "." not in host:
        raise CaptureError("profile.profileUrl", "must be the profile's web address")
    return f"https://{host}{parts.path.rstrip('/')}"


def split_headline(headline: str) -> tuple[str, str]:
    """"VP Sales at Globex | Speaker" -> ("VP Sales", "Globex")."""
    first = re.split(r"\s*[|•·]\s*", headline.strip())[0]
    match = re.match(r"^(.+?)\s+(?:at|@)\s+(.+)$", first, re.IGNORECASE)
    if match:
        return match.group(1).strip(), match.group(2).strip()
    pieces = [p.strip() for p in re.split(r"\s+[-–—,]\s+", first) if p.strip()]
    if len(pieces) == 2 and TITLE_WORDS.search(pieces[0]):
        return pieces[0], pieces[1]
    return (first.strip(), "") if TITLE_WORDS.search(first) else ("", "")


def from_social(network: str, profile: Mapping[str, str]) -> Captured:
    """A lead from the documented profile shape: name, headline, company, profileUrl, location,
    email, title."""
    net = (network or "other").strip().lower()
    if net not in SOCIAL_NETWORKS:
        raise CaptureError("network", f"must be one of {', '.join(sorted(SOCIAL_NETWORKS))}")
    name = " ".join(str(profile.get("name", "")).split())
    if not name:
        raise CaptureError("profile.name", "the profile needs a name", "REQUIRED")
    for key, limit in (("name", 200), ("headline", 300), ("company", 200), ("location", 200), ("title", 200),
                       ("profile_url", 500), ("email", 254)):
        if len(str(profile.get(key, ""))) > limit:
            raise CaptureError(f"profile.{'profileUrl' if key == 'profile_url' else key}",
                               f"must be at most {limit} characters", "TOO_LONG")
    url = normalize_profile_url(str(profile.get("profile_url", ""))) if profile.get("profile_url") else ""
    values: dict[str, Any] = {}
    _name_into(values, name)
    headline = " ".join(str(profile.get("headline", "")).split())
    title, company = split_headline(headline) if headline else ("", "")
    values["title"] = str(profile.get("title") or "").strip() or title
    values["company"] = str(profile.get("company") or "").strip() or company
    if profile.get("email"):
        values["email"] = str(profile["email"]).strip()
    location = " ".join(str(profile.get("location", "")).split())
    values["description"] = headline
    capture = {"channel": "social", "network": net, "profileUrl": url, "headline": headline, "location": location}
    return Captured(values=values, capture=capture, ref=f"social:{url}" if url else "")
