"""Billing details, invoices (exact decimal arithmetic, idempotent per period) and plan changes."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import ROUND_HALF_UP, Decimal

import httpx

from services.devstack import DevStack
from tests.integration.tenants_support import BILLING, add_user, claims, create_tenant, h, login, new_operator, sql


def _date(ts: str) -> dt.date:
    return dt.datetime.fromisoformat(ts).date()


def expected(quantity: int, unit: str, start: str, end: str, period_start: str) -> tuple[int, int, str]:
    """quantity x unit x days/period days, rounded half up once: the documented rule."""
    days = (_date(end) - _date(start)).days
    period_days = (_date(end) - _date(period_start)).days
    amount = (Decimal(quantity) * Decimal(unit) * days / period_days).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return days, period_days, str(amount)


def test_billing_details_are_validated(api: httpx.Client, tenant: dict[str, str]) -> None:
    tid = tenant["x-tenant-id"]
    r = api.get(f"/v1/tenants/{tid}/billing", headers=h(tenant))
    assert r.status_code == 200
    info = r.json()["data"]
    assert info["complete"] is False and info["plan"]["key"] == "standard" and info["plan"]["pricePerSeat"] == "25.00"
    assert info["seats"] == 1 and info["paymentMethod"] == "invoice"
    assert [p["key"] for p in info["availablePlans"]] == ["free", "standard", "professional", "enterprise"]

    r = api.put(f"/v1/tenants/{tid}/billing", headers=h(tenant), json={
        "companyName": "", "billingEmail": "nope", "taxId": "!!", "address": {"line1": "", "country": "XX"}})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {
        "billing.companyName", "billing.billingEmail", "billing.taxId", "billing.address.line1",
        "billing.address.city", "billing.address.postalCode", "billing.address.country"}
    r = api.put(f"/v1/tenants/{tid}/billing", headers=h(tenant), json=BILLING)
    assert r.status_code == 200
    info = r.json()["data"]
    assert info["complete"] is True and info["billingEmail"] == "billing@globex.example"
    assert info["address"]["country"] == "DE" and info["taxId"] == "DE123456789"


def test_invoice_arithmetic_and_upgrade_at_once(stack: DevStack, api: httpx.Client, tenant: dict[str, str]) -> None:
    tid = tenant["x-tenant-id"]
    assert claims(tenant)["tier"] == "standard"
    # A paid upgrade needs billing details first.
    r = api.post(f"/v1/tenants/{tid}/billing/upgrade", headers=h(tenant), json={"plan": "professional"})
    assert r.status_code == 409 and r.json()["errors"][0]["code"] == "BILLING_DETAILS_REQUIRED"
    assert api.put(f"/v1/tenants/{tid}/billing", headers=h(tenant), json=BILLING).status_code == 200
    add_user(stack, tid, ["sales_rep"])
    add_user(stack, tid, ["read_only"])
    add_user(stack, tid, ["read_only"], active=False)  # inactive users are no seats

    r = api.get(f"/v1/tenants/{tid}/invoices", headers=h(tenant))
    assert r.status_code == 200
    invoices = r.json()["data"]
    assert len(invoices) == 1 and r.json()["meta"]["pagination"]["total"] == 1
    draft = invoices[0]
    assert draft["status"] == "draft" and draft["currency"] == "USD" and draft["number"].startswith("INV-")
    [sub] = draft["lines"]
    assert sub["kind"] == "subscription" and sub["quantity"] == 3 and sub["unitPrice"] == "25.00"
    days, period_days, amount = expected(3, "25.00", sub["periodStart"], sub["periodEnd"], draft["periodStart"])
    assert sub["amount"] == amount and draft["subtotal"] == amount and draft["total"] == amount
    assert draft["tax"] == "0.00"
    assert sub["periodFraction"] == str((Decimal(days) / period_days).quantize(Decimal("0.0001"), ROUND_HALF_UP))

    r = api.post(f"/v1/tenants/{tid}/billing/upgrade", headers=h(tenant), json={"plan": "professional"})
    assert r.status_code == 200, r.text
    up = r.json()["data"]
    assert up["tenant"]["plan"] == "professional" and up["tenant"]["tier"] == "premium"
    assert up["previousPlan"] == "standard"
    line = up["proration"]
    assert line["kind"] == "proration" and line["quantity"] == 3 and line["unitPrice"] == "24.99"
    _, _, prorated = expected(3, "24.99", line["periodStart"], line["periodEnd"], draft["periodStart"])
    assert line["amount"] == prorated
    total = str(Decimal(amount) + Decimal(prorated))
    assert up["invoice"]["total"] == total and [x["kind"] for x in up["invoice"]["lines"]] == ["subscription",
                                                                                             "proration"]
    # The same draft, from the invoices list.
    listed = api.get(f"/v1/tenants/{tid}/invoices", headers=h(tenant)).json()["data"][0]
    assert listed["total"] == total and listed["id"] == draft["id"]
    assert api.get(f"/v1/tenants/{tid}/billing", headers=h(tenant)).json()["data"]["currentPeriodTotal"] == total

    # At once: a fresh token carries the new tier; features and limits follow the plan.
    fresh = api.post("/v1/auth/token/refresh", json={"refreshToken": tenant["refresh"]})
    assert fresh.status_code == 200
    assert claims({"authorization": "Bearer " + fresh.json()["data"]["accessToken"]})["tier"] == "premium"
    features = {f["key"]: f for f in api.get(f"/v1/tenants/{tid}/features", headers=h(tenant)).json()["data"]["features"]}
    assert features["aiInsights"]["included"] and features["aiInsights"]["enabled"]
    limits = {x["key"]: x for x in api.get(f"/v1/tenants/{tid}/limits", headers=h(tenant)).json()["data"]["limits"]}
    assert limits["users"]["planMaximum"] == 250 and limits["users"]["value"] == 250
    r = api.put(f"/v1/tenants/{tid}/features", headers=h(tenant), json={"features": {"aiInsights": False}})
    assert r.status_code == 200

    # Down again: refused below current use, allowed when it fits, with a credit line.
    add_user(stack, tid, ["read_only"])
    r = api.post(f"/v1/tenants/{tid}/billing/upgrade", headers=h(tenant), json={"plan": "free"})
    assert r.status_code == 409
    assert r.json()["errors"] == [{"code": "USAGE_EXCEEDS_PLAN", "field": "users",
                                   "message": "4 in use, the Free plan allows 3"}]
    r = api.post(f"/v1/tenants/{tid}/billing/upgrade", headers=h(tenant), json={"plan": "standard"})
    assert r.status_code == 200
    credit = r.json()["data"]["proration"]
    assert credit["unitPrice"] == "-24.99" and Decimal(credit["amount"]) < 0
    r = api.post(f"/v1/tenants/{tid}/billing/upgrade", headers=h(tenant), json={"plan": "standard"})
    assert r.status_code == 409 and r.json()["errors"][0]["code"] == "PLAN_UNCHANGED"
    r = api.post(f"/v1/tenants/{tid}/billing/upgrade", headers=h(tenant), json={"plan": "platinum"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "plan"


def test_ended_periods_are_issued_once(stack: DevStack, api: httpx.Client, tenant: dict[str, str]) -> None:
    tid = tenant["x-tenant-id"]
    assert api.put(f"/v1/tenants/{tid}/billing", headers=h(tenant), json=BILLING).status_code == 200
    # The tenant signed up on the 10th of last month (set in the store: the clock cannot be moved).
    today = dt.datetime.now(dt.UTC)
    last_month = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=10, hour=12)
    sql(stack, "UPDATE auth.tenants SET created_at = $1 WHERE id = $2", last_month, uuid.UUID(tid))

    r = api.get(f"/v1/tenants/{tid}/invoices", headers=h(tenant))
    assert r.status_code == 200
    draft, issued = r.json()["data"]
    assert draft["status"] == "draft" and issued["status"] == "issued" and issued["issuedAt"]
    assert issued["number"] == f"INV-{last_month:%Y%m}-{tid.replace('-', '')[:8].upper()}"
    assert "Globex GmbH" in issued["billTo"] and "DE123456789" in issued["billTo"]
    [line] = issued["lines"]
    days, period_days, amount = expected(1, "25.00", line["periodStart"], line["periodEnd"], issued["periodStart"])
    assert _date(line["periodStart"]) == last_month.date() and days == period_days - 9
    assert line["amount"] == amount and issued["total"] == amount
    # This period is billed whole now that the tenant existed all of it.
    assert draft["lines"][0]["periodFraction"] == "1.0000" and draft["total"] == "25.00"

    again = api.get(f"/v1/tenants/{tid}/invoices", headers=h(tenant)).json()["data"][1]
    assert again == issued
    rows = sql(stack, "SELECT count(*) AS n FROM auth.invoices WHERE tenant_id = $1", uuid.UUID(tid))
    assert rows[0]["n"] == 1
    page2 = api.get(f"/v1/tenants/{tid}/invoices?limit=1&page=2", headers=h(tenant)).json()
    assert [i["id"] for i in page2["data"]] == [issued["id"]] and page2["meta"]["pagination"]["total"] == 2


def test_operator_changes_a_plan_without_billing_details(stack: DevStack, api: httpx.Client) -> None:
    operator = new_operator(stack, api)
    created, email = create_tenant(api, operator, plan="free")
    tid = created["tenant"]["id"]
    r = api.put(f"/v1/tenants/{tid}", headers=h(operator), json={"plan": "enterprise"})
    assert r.status_code == 200 and r.json()["data"]["plan"] == "enterprise" and r.json()["data"]["tier"] == "premium"
    admin = login(api, email)
    assert claims(admin)["tier"] == "premium"
    lines = api.get(f"/v1/tenants/{tid}/invoices", headers=h(admin)).json()["data"][0]["lines"]
    assert [x["kind"] for x in lines] == ["subscription", "proration"] and lines[1]["unitPrice"] == "99.00"
