"""Deal rules and the forecast's arithmetic: exact decimals, categories, periods, the funnel."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from services.deals import rules
from services.deals.rules import Group


def g(month: int, currency: str, stage: str, status: str, amount: str, *, category: str = "", count: int = 1,
      year: int = 2026) -> Group:
    return Group(dt.date(year, month, 1), currency, stage, status, category, count, Decimal(amount))


def test_category_is_explicit_or_from_probability() -> None:
    assert rules.category("", 70) == "commit"
    assert rules.category("", 69) == "best_case"
    assert rules.category("", 30) == "best_case"
    assert rules.category("", 29) == "pipeline"
    assert rules.category("commit", 10) == "commit"
    assert rules.category("omitted", 90) == "omitted"


def test_forecast_weighting_is_exact_in_decimals() -> None:
    probabilities = {"prop": 25, "nego": 75, "won": 100}
    groups = [
        g(1, "EUR", "prop", "open", "1234.55"),           # 25% of 1234.55 = 308.6375
        g(1, "EUR", "nego", "open", "0.10", count=3),     # 75% of 0.10   = 0.075
        g(1, "EUR", "won", "won", "1000.01"),
        g(1, "USD", "nego", "open", "999.99"),            # never mixed with EUR
        g(2, "EUR", "prop", "open", "500.00", category="commit"),
        g(2, "EUR", "nego", "open", "800.00", category="omitted"),
        g(2, "EUR", "gone", "open", "50.00"),             # a stage that no longer exists weighs 0
        g(2, "EUR", "prop", "lost", "700.00"),            # lost deals are not forecast
    ]
    out = rules.fold(groups, probabilities)
    jan_eur = out[(dt.date(2026, 1, 1), "EUR")]
    assert jan_eur.weighted == Decimal("308.7125")  # kept exact ...
    assert jan_eur.shown() == {  # ... and rounded once, half to even
        "open_deals": 4, "pipeline": "1234.65", "weighted": "308.71", "commit": "1000.11", "best_case": "1000.11",
        "won": "1000.01", "won_deals": 1,
    }
    jan_usd = out[(dt.date(2026, 1, 1), "USD")]
    assert jan_usd.shown()["weighted"] == "749.99" and jan_usd.shown()["commit"] == "999.99"  # 749.9925
    feb = out[(dt.date(2026, 2, 1), "EUR")]
    assert feb.shown() == {"open_deals": 2, "pipeline": "550.00", "weighted": "125.00", "commit": "500.00",
                           "best_case": "500.00", "won": "0.00", "won_deals": 0}


def test_many_small_amounts_sum_without_float_drift() -> None:
    groups = [g(3, "EUR", "s", "open", "0.10") for _ in range(1000)]
    out = rules.fold(groups, {"s": 33})
    a = out[(dt.date(2026, 3, 1), "EUR")]
    assert a.pipeline == Decimal("100.00") and a.weighted == Decimal("33.0000")
    assert rules.money(Decimal("0.125")) == "0.12" and rules.money(Decimal("0.135")) == "0.14"


def test_periods_months_and_quarters() -> None:
    months = rules.periods(dt.date(2026, 1, 15), dt.date(2026, 3, 2), "month")
    assert [(p.key, p.start.isoformat(), p.end.isoformat()) for p in months] == [
        ("2026-01", "2026-01-01", "2026-01-31"), ("2026-02", "2026-02-01", "2026-02-28"),
        ("2026-03", "2026-03-01", "2026-03-31")]
    quarters = rules.periods(dt.date(2026, 11, 1), dt.date(2027, 2, 1), "quarter")
    assert [(p.key, p.end.isoformat()) for p in quarters] == [("2026-Q4", "2026-12-31"), ("2027-Q1", "2027-03-31")]
    assert rules.shift(dt.date(2026, 1, 20), "month", -1) == dt.date(2025, 12, 1)
    assert rules.shift(dt.date(2026, 5, 20), "quarter", 1) == dt.date(2026, 7, 1)


def test_accuracy_percent() -> None:
    assert rules.accuracy_percent(Decimal(1000), Decimal(900)) == 90.0
    assert rules.accuracy_percent(Decimal(1000), Decimal(1100)) == 90.0
    assert rules.accuracy_percent(Decimal(1000), Decimal(3000)) == 0.0
    assert rules.accuracy_percent(Decimal(0), Decimal(10)) is None


def test_conversion_funnel_counts_deals_that_got_that_far() -> None:
    stages = [("a", "A", 0), ("b", "B", 1), ("c", "C", 2)]
    # furthest open position reached -> counts by status
    furthest = {0: {"open": 2, "lost": 1}, 1: {"open": 1}, 2: {"lost": 1}, None: {"won": 1}}
    steps = rules.conversion(stages, furthest)
    assert [(s.stage_id, s.reached, s.advanced) for s in steps] == [("a", 6, 3), ("b", 3, 2), ("c", 2, 1)]


def test_deal_checks_name_fields() -> None:
    clean, problems = rules.check({"name": " Big  deal ", "amount": "1250.5", "currency": "eur"}, creating=True)
    assert not problems and clean["name"] == "Big deal" and clean["amount"] == Decimal("1250.5")
    assert clean["currency"] == "EUR"
    _, problems = rules.check({"name": "", "amount": "-1", "currency": "EURO", "expected_close_date": "2026-02-30",
                               "forecast_category": "maybe", "contact_id": "nope"}, creating=True)
    assert {p.field for p in problems} == {"name", "amount", "currency", "expectedCloseDate", "forecastCategory",
                                           "contactId"}
    _, problems = rules.check({"amount": "1.234"})
    assert problems[0].field == "amount"
    _, problems = rules.check({"amount": "12345678901234567"})
    assert problems[0].field == "amount"
    clean, _ = rules.check({}, creating=True)
    assert clean["currency"] == "USD" and clean["amount"] == Decimal(0)
