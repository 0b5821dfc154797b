"""Offline enrichment: what can be inferred about a lead without asking anyone.

Phone numbers give country, region, carrier, line type and time zone (Google's libphonenumber
data in the `phonenumbers` package); a company email domain gives the company and its web site
(free-mail domains give nothing); a full name is split into first and last name. Every value
found is returned as inferred, with its source, so nobody mistakes it for what a person typed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import phonenumbers
from phonenumbers import carrier, geocoder, timezone

# Domains of mailbox providers: the domain says nothing about the sender's company.
FREE_MAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "aol.com", "icloud.com",
    "me.com", "mac.com", "protonmail.com", "proton.me", "pm.me", "gmx.com", "gmx.net", "gmx.de", "web.de",
    "mail.com", "mail.ru", "yandex.com", "yandex.ru", "zoho.com", "qq.com", "163.com", "126.com", "fastmail.com",
    "hey.com", "tutanota.com", "tuta.io", "hushmail.com", "inbox.com", "rediffmail.com", "seznam.cz", "orange.fr",
    "free.fr", "laposte.net", "libero.it", "t-online.de", "btinternet.com", "comcast.net", "verizon.net",
    "att.net", "sbcglobal.net", "yahoo.com", "ymail.com", "rocketmail.com",
})
# Provider families with a domain per country (yahoo.co.uk, hotmail.fr ...).
FREE_MAIL_LABELS = frozenset({"yahoo", "hotmail", "outlook", "live", "gmx", "yandex", "aol", "gmail"})
# Second-level public suffixes common enough to matter (globex.co.uk -> globex).
SECOND_LEVEL_SUFFIXES = frozenset({
    "co.uk", "org.uk", "ac.uk", "gov.uk", "ltd.uk", "plc.uk", "me.uk", "com.au", "net.au", "org.au", "co.nz",
    "co.jp", "ne.jp", "or.jp", "co.za", "com.br", "com.mx", "com.ar", "com.cn", "com.hk", "com.sg", "com.tr",
    "co.in", "co.il", "co.kr", "com.tw", "com.my", "co.id", "com.ph", "com.co", "com.pe", "com.ua", "com.pl",
})
NAME_PREFIXES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "herr", "frau", "mme", "m"})
NAME_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv", "phd", "md", "mba", "esq", "cpa", "pe", "dds", "msc", "bsc"})
NAME_PARTICLES = frozenset({"van", "von", "der", "den", "de", "da", "di", "del", "della", "la", "le", "du", "dos",
                            "das", "ter", "ten", "bin", "al", "st", "st."})
# Where a number spans several zones (UK mobiles: London, Jersey, Guernsey, Isle of Man), the
# country's main zone is the likeliest.
PRIMARY_ZONES = {
    "GB": "Europe/London", "US": "America/New_York", "CA": "America/Toronto", "AU": "Australia/Sydney",
    "RU": "Europe/Moscow", "BR": "America/Sao_Paulo", "MX": "America/Mexico_City", "ID": "Asia/Jakarta",
    "ES": "Europe/Madrid", "PT": "Europe/Lisbon", "FR": "Europe/Paris", "DE": "Europe/Berlin", "NZ": "Pacific/Auckland",
    "CL": "America/Santiago", "AR": "America/Argentina/Buenos_Aires", "KZ": "Asia/Almaty", "CN": "Asia/Shanghai",
}
_LINE_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE: "mobile", phonenumbers.PhoneNumberType.FIXED_LINE: "fixed_line",
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    phonenumbers.PhoneNumberType.TOLL_FREE: "toll_free", phonenumbers.PhoneNumberType.PREMIUM_RATE: "premium_rate",
    phonenumbers.PhoneNumberType.VOIP: "voip", phonenumbers.PhoneNumberType.PERSONAL_NUMBER: "personal",
    phonenumbers.PhoneNumberType.PAGER: "pager", phonenumbers.PhoneNumberType.UAN: "uan",
    phonenumbers.PhoneNumberType.SHARED_COST: "shared_cost",
}


@dataclass(frozen=True)
class Inferred:
    """One inferred value: `field` is its enrichment key; `fills` the lead column it may fill."""

    field: str
    value: str
    source: str
    fills: str = ""


def phone_facts(phone: str, country: str = "") -> list[Inferred]:
    """Country, region, carrier, line type and time zone of a phone number."""
    if not phone:
        return []
    try:
        number = phonenumbers.parse(phone, country.upper() or None)
    except phonenumbers.NumberParseException:
        return []
    if not phonenumbers.is_valid_number(number):
        return []
    src = "phone_number"
    found = []
    region = phonenumbers.region_code_for_number(number)
    if region and region != "001":
        found.append(Inferred("phoneCountry", region, src, fills="country"))
    place = geocoder.description_for_number(number, "en")
    if place:
        found.append(Inferred("phoneRegion", place, src))
    operator = carrier.name_for_number(number, "en")
    if operator:
        found.append(Inferred("phoneCarrier", operator, src))
    line = _LINE_TYPES.get(phonenumbers.number_type(number))
    if line:
        found.append(Inferred("phoneType", line, src))
    zones = [z for z in timezone.time_zones_for_number(number) if z != "Etc/Unknown"]
    if zones:
        primary = PRIMARY_ZONES.get(region or "")
        found.append(Inferred("timeZone", primary if primary in zones else zones[0], src))
        if len(zones) > 1:
            found.append(Inferred("timeZones", ",".join(zones), src))
    return found


def registrable_domain(host: str) -> str:
    """`mail.globex.co.uk` -> `globex.co.uk`."""
    labels = [x for x in host.lower().strip(".").split(".") if x]
    if len(labels) < 2:
        return ""
    keep = 3 if ".".join(labels[-2:]) in SECOND_LEVEL_SUFFIXES and len(labels) >= 3 else 2
    return ".".join(labels[-keep:])


def is_free_mail(domain: str) -> bool:
    domain = domain.lower()
    if domain in FREE_MAIL_DOMAINS:
        return True
    label = registrable_domain(domain).split(".")[0] if registrable_domain(domain) else ""
    return label in FREE_MAIL_LABELS


def company_from_domain(domain: str) -> str:
    """`globex-corp.co.uk` -> `Globex Corp`; acronyms of up to 3 letters stay upper-case (`IBM`)."""
    reg = registrable_domain(domain)
    if not reg:
        return ""
    label = reg.split(".")[0]
    words = [w for w in re.split(r"[-_]+", label) if w]
    return " ".join(w.upper() if len(w) <= 3 and w.isalpha() else w.capitalize() for w in words)


def email_domain_facts(email: str) -> list[Inferred]:
    """The company and web site behind a company email address; nothing for free-mail."""
    if "@" not in email:
        return []
    domain = email.rsplit("@", 1)[1].lower()
    if is_free_mail(domain):
        return []
    reg = registrable_domain(domain)
    company = company_from_domain(domain)
    if not reg or not company:
        return []
    src = "email_domain"
    return [Inferred("companyDomain", reg, src), Inferred("company", company, src, fills="company"),
            Inferred("website", f"https://{reg}", src, fills="website")]


def _cap(word: str) -> str:
    if word.isupper() or word.islower():
        return "-".join(p[:1].upper() + p[1:].lower() for p in word.split("-"))
    return word  # keep deliberate casing: McDonald, DeVito


def parse_name(full: str) -> tuple[str, str]:
    """Split a person's name into (first, last): titles and suffixes dropped, `Last, First`
    understood, particles kept with the family name (`Ludwig van Beethoven`)."""
    text = " ".join(full.replace("\u00a0", " ").split()).strip(" ,")
    if not text:
        return "", ""
    if text.count(",") == 1:
        left, right = (p.strip() for p in text.split(","))
        right_words = right.replace(".", "").lower().split()
        if right_words and all(w in NAME_SUFFIXES for w in right_words):
            text = left  # "Jane Doe, PhD"
        elif left and right:
            first, _ = parse_name(right)
            return first, " ".join(_cap(w) for w in left.split())
    words = text.replace(",", " ").split()
    while words and words[0].lower().rstrip(".") in NAME_PREFIXES and len(words) > 1:
        words = words[1:]
    while words and words[-1].lower().replace(".", "") in NAME_SUFFIXES and len(words) > 1:
        words = words[:-1]
    if len(words) == 1:
        return _cap(words[0]), ""
    # The family name starts at the first particle after the first word, else it is the last word.
    start = len(words) - 1
    for i in range(1, len(words) - 1):
        if words[i].lower() in NAME_PARTICLES:
            start = i
            break
    first = " ".join(_cap(w) for w in words[:start])
    last = " ".join(w.lower() if w.lower() in NAME_PARTICLES and i < len(words) - 1 else _cap(w)
                    for i, w in enumerate(words[start:], start=start))
    return first, last


def name_from_local_part(email: str) -> tuple[str, str]:
    """`jane.doe@...` -> (Jane, Doe); nothing for role or unreadable addresses (info@, jd42@)."""
    local = email.split("@", 1)[0].lower() if "@" in email else ""
    local = local.split("+", 1)[0]
    parts = [p for p in re.split(r"[._-]+", local) if p]
    if len(parts) != 2 or not all(p.isalpha() and len(p) >= 2 for p in parts):
        return "", ""
    return parts[0].capitalize(), parts[1].capitalize()


def infer(lead: Mapping[Any, Any]) -> list[Inferred]:
    """Everything that can be inferred about a lead from its own fields."""
    found: list[Inferred] = []
    found += phone_facts(str(lead.get("phone") or ""), str(lead.get("country") or ""))
    email = str(lead.get("email") or "")
    found += email_domain_facts(email)
    first, last = str(lead.get("first_name") or ""), str(lead.get("last_name") or "")
    if first and not last and " " in first.strip():
        split_first, split_last = parse_name(first)
        if split_first and split_last:
            found += [Inferred("firstName", split_first, "name", fills="first_name"),
                      Inferred("lastName", split_last, "name", fills="last_name")]
    elif not first and not last:
        guess_first, guess_last = name_from_local_part(email)
        if guess_first:
            found += [Inferred("firstName", guess_first, "email_local_part", fills="first_name"),
                      Inferred("lastName", guess_last, "email_local_part", fills="last_name")]
    return found


def apply(lead: Mapping[Any, Any], found: list[Inferred], at: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(column changes, enrichment map) for `found`: a value fills its column only when that is
    empty, except that a full name split in two replaces the combined first name."""
    changes: dict[str, Any] = {}
    enrichment = dict(lead.get("enrichment") or {})
    split_name = any(f.field == "lastName" and f.source == "name" for f in found)
    for f in found:
        applied = False
        if f.fills:
            current = str(lead.get(f.fills) or "")
            if not current or (split_name and f.fills == "first_name"):
                changes[f.fills] = f.value
                applied = True
        enrichment[f.field] = {"value": f.value, "source": f.source, "inferred": True, "applied": applied,
                               "inferredAt": at}
    return changes, enrichment
