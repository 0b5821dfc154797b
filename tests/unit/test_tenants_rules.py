"""Invoice arithmetic, plan catalogue consistency and settings rules, without a database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from services.auth.identity import PLAN_TIERS, tier_for
from services.auth.plans import FEATURES, LIMITS, PLANS
from services.tenants import billing, rules

UTC = dt.UTC


def test_periods_are_calendar_months() -> None:
    assert billing.period_of(dt.datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == (
        dt.datetime(2026, 12, 1, tzinfo=UTC), dt.datetime(2027, 1, 1, tzinfo=UTC))
    assert billing.period_of(dt.datetime(2028, 2, 29, tzinfo=UTC))[1] == dt.datetime(2028, 3, 1, tzinfo=UTC)
    assert billing.previous_period(dt.datetime(2027, 1, 1, tzinfo=UTC))[0] == dt.datetime(2026, 12, 1, tzinfo=UTC)


def test_a_mid_period_upgrade_is_prorated_exactly() -> None:
    start, end = billing.period_of(dt.datetime(2026, 11, 1, tzinfo=UTC))  # 30 days
    at = dt.datetime(2026, 11, 14, 15, 30, tzinfo=UTC)  # 17 days left, the 14th included
    line = billing.proration(PLANS["standard"], PLANS["professional"], 3, at)
    assert (line.days, line.period_days, line.unit_price) == (17, 30, Decimal("24.99"))
    # 3 x 24.99 x 17 / 30 = 42.483 -> 42.48 (rounded once, half up)
    assert line.amount == Decimal("42.48") and line.fraction == "0.5667"
    change = billing.PlanChange("standard", "professional", 3, at, line.unit_price, line.amount)
    draft = billing.compute(period_start=start, period_end=end, billing_start=dt.datetime(2026, 1, 5, tzinfo=UTC),
                            plan_at_start=PLANS["standard"], seats=4, changes=[change])
    assert [ln.amount for ln in draft.lines] == [Decimal("100.00"), Decimal("42.48")]
    assert (draft.subtotal, draft.tax, draft.total) == (Decimal("142.48"), Decimal("0.00"), Decimal("142.48"))
    assert billing.money(draft.total) == "142.48"


def test_half_cents_round_up_and_credits_round_symmetrically() -> None:
    assert billing.prorate(1, Decimal("0.05"), 1, 2) == Decimal("0.03")  # 0.025 -> 0.03
    assert billing.prorate(1, Decimal("-0.05"), 1, 2) == Decimal("-0.03")
    at = dt.datetime(2026, 11, 30, tzinfo=UTC)
    credit = billing.proration(PLANS["enterprise"], PLANS["free"], 2, at)
    assert credit.amount == Decimal("-6.60")  # 2 x -99.00 x 1/30


def test_the_first_period_is_billed_from_sign_up() -> None:
    start, end = billing.period_of(dt.datetime(2026, 2, 1, tzinfo=UTC))  # 28 days
    draft = billing.compute(period_start=start, period_end=end, billing_start=dt.datetime(2026, 2, 22, 9, tzinfo=UTC),
                            plan_at_start=PLANS["professional"], seats=2, changes=[])
    [line] = draft.lines
    assert (line.days, line.period_days) == (7, 28) and line.amount == Decimal("25.00")  # 2 x 49.99 / 4 = 24.995
    later = billing.compute(period_start=start, period_end=end, billing_start=end, plan_at_start=PLANS["free"],
                            seats=1, changes=[])
    assert later.lines == [] and later.total == Decimal("0.00")


def test_lines_survive_storage_exactly() -> None:
    line = billing.proration(PLANS["free"], PLANS["standard"], 7, dt.datetime(2026, 11, 3, tzinfo=UTC))
    assert billing.Line.from_json(line.to_json()) == line


def test_plans_and_tiers_have_one_source() -> None:
    assert PLAN_TIERS == {k: p.tier for k, p in PLANS.items()}
    assert tier_for("professional") == "premium" and tier_for("free") == "standard"
    assert tier_for("enterprise", client=True) == "api_integration"
    ranks = [p.rank for p in PLANS.values()]
    assert ranks == sorted(ranks)
    previous = None
    for plan in PLANS.values():
        assert set(plan.limits) == set(LIMITS) and plan.features <= set(FEATURES)
        assert isinstance(plan.price_per_seat, Decimal)
        if previous is not None:  # a higher plan includes everything of the one below
            assert previous.features <= plan.features
            assert all(plan.limits[k] >= previous.limits[k] for k in LIMITS)
        previous = plan


def test_rules_name_each_offending_field() -> None:
    clean, problems = rules.check_config({"timezone": "Asia/Tokyo", "currency": "jpy", "locale": "ja-JP"})
    assert problems == [] and clean["currency"] == "JPY"
    _, problems = rules.check_config({"colour": "x", "branding": {"font": "x"}})
    assert [p.field for p in problems] == ["config.colour", "config.branding.font"]
    problems = rules.check_features({"sso": True, "sso2": False, "workflows": True}, PLANS["standard"])
    assert [(p.field, p.code) for p in problems] == [("features.sso", "NOT_IN_PLAN"),
                                                     ("features.sso2", "UNKNOWN_FEATURE")]
    assert rules.check_features({"sso": False}, PLANS["free"]) == []
    problems = rules.check_limits({"users": 4, "records": -1}, PLANS["free"])
    assert [(p.field, p.code) for p in problems] == [("limits.users", "EXCEEDS_PLAN"), ("limits.records", "OUT_OF_RANGE")]
    clean, problems = rules.check_billing({"companyName": "Acme", "billingEmail": "A@B.example", "taxId": "fr 12",
                                           "address": {"line1": "1 Rue", "city": "Paris", "postalCode": "75001",
                                                       "country": "fr"}})
    assert problems == [] and clean["address"]["country"] == "FR" and clean["tax_id"] == "FR 12"
