"""Offline enrichment and name parsing (services/leads/enrich.py)."""

from __future__ import annotations

from services.leads import enrich


def _facts(phone: str) -> dict[str, str]:
    return {f.field: f.value for f in enrich.phone_facts(phone)}


def test_uk_numbers_give_country_region_carrier_and_zone() -> None:
    landline = _facts("+44 20 7946 0958")
    assert landline["phoneCountry"] == "GB" and landline["phoneRegion"] == "London"
    assert landline["timeZone"] == "Europe/London" and landline["phoneType"] == "fixed_line"
    mobile = _facts("+447400123456")
    assert mobile["phoneCountry"] == "GB" and mobile["phoneCarrier"] == "Three" and mobile["phoneType"] == "mobile"
    # UK mobiles span the Channel Islands' zones too: the country's main zone is chosen, all are kept.
    assert mobile["timeZone"] == "Europe/London" and "Europe/Jersey" in mobile["timeZones"]


def test_us_numbers_give_city_and_zone() -> None:
    west = _facts("+1 415 555 2671")
    assert west == {**west, "phoneCountry": "US", "phoneRegion": "San Francisco, CA", "timeZone": "America/Los_Angeles"}
    assert _facts("+1 (212) 555-0100")["timeZone"] == "America/New_York"


def test_invalid_or_missing_numbers_give_nothing() -> None:
    assert _facts("") == {} and _facts("+44 7700 900123") == {} and _facts("12345") == {}


def test_company_email_domain_gives_company_and_site_but_free_mail_does_not() -> None:
    found = {f.field: f for f in enrich.email_domain_facts("jane@mail.globex-corp.co.uk")}
    assert found["company"].value == "Globex Corp" and found["company"].fills == "company"
    assert found["website"].value == "https://globex-corp.co.uk" and found["companyDomain"].value == "globex-corp.co.uk"
    assert enrich.email_domain_facts("jane@ibm.com")[1].value == "IBM"
    for free in ("jane@gmail.com", "jane@yahoo.co.uk", "jane@hotmail.fr", "jane@proton.me", "jane@gmx.de"):
        assert enrich.email_domain_facts(free) == [], free


def test_names() -> None:
    assert enrich.parse_name("Jane Doe") == ("Jane", "Doe")
    assert enrich.parse_name("Doe, Jane") == ("Jane", "Doe")
    assert enrich.parse_name("Dr. Ludwig van Beethoven Jr.") == ("Ludwig", "van Beethoven")
    assert enrich.parse_name("JANE MARY DOE") == ("Jane Mary", "Doe")
    assert enrich.parse_name("Jane Doe, PhD") == ("Jane", "Doe")
    assert enrich.parse_name("Cher") == ("Cher", "")
    assert enrich.name_from_local_part("jane.doe@x.com") == ("Jane", "Doe")
    assert enrich.name_from_local_part("info@x.com") == ("", "") and enrich.name_from_local_part("jd42@x.com") == ("", "")


def test_apply_fills_only_empty_fields_and_marks_everything_inferred() -> None:
    lead = {"first_name": "Jane Doe", "last_name": "", "email": "jane@globex.com", "company": "Globex Inc",
            "phone": "+14155552671", "country": "", "enrichment": {}}
    changes, enrichment = enrich.apply(lead, enrich.infer(lead), "2026-11-26T00:00:00Z")
    assert changes == {"first_name": "Jane", "last_name": "Doe", "country": "US", "website": "https://globex.com"}
    assert enrichment["company"] == {"value": "Globex", "source": "email_domain", "inferred": True, "applied": False,
                                     "inferredAt": "2026-11-26T00:00:00Z"}
    assert all(v["inferred"] for v in enrichment.values())
    assert enrichment["timeZone"]["value"] == "America/Los_Angeles" and enrichment["phoneCountry"]["applied"] is True
