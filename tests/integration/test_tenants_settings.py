"""A tenant admin's own config, features and limits through Envoy; everyone else's are not found."""

from __future__ import annotations

import httpx

from services.devstack import DevStack
from tests.integration.conftest import sign_up
from tests.integration.tenants_support import add_user, h, login

SUB_RESOURCES = ("config", "features", "limits", "usage", "billing", "invoices")


def test_config_defaults_update_and_validation(api: httpx.Client, tenant: dict[str, str]) -> None:
    tid = tenant["x-tenant-id"]
    r = api.get(f"/v1/tenants/{tid}/config", headers=h(tenant))
    assert r.status_code == 200
    config = r.json()["data"]
    assert config["name"] == "Acme" and config["timezone"] == "UTC" and config["currency"] == "USD"
    assert config["dateFormat"] == "YYYY-MM-DD" and config["fiscalYearStartMonth"] == 1

    r = api.put(f"/v1/tenants/{tid}/config", headers=h(tenant), json={
        "name": "Acme Europe", "timezone": "Europe/Berlin", "locale": "de-DE", "currency": "eur",
        "dateFormat": "DD.MM.YYYY", "branding": {"primaryColor": "#112233", "logoUrl": "https://cdn.example/l.png"}})
    assert r.status_code == 200, r.text
    config = r.json()["data"]
    assert config["timezone"] == "Europe/Berlin" and config["currency"] == "EUR" and config["locale"] == "de-DE"
    assert config["branding"] == {"primaryColor": "#112233", "logoUrl": "https://cdn.example/l.png"}
    # Only what is sent changes; branding merges key by key; the name is the tenant's name.
    r = api.put(f"/v1/tenants/{tid}/config", headers=h(tenant), json={"branding": {"accentColor": "#abcdef"}})
    config = r.json()["data"]
    assert config["timezone"] == "Europe/Berlin" and config["branding"]["primaryColor"] == "#112233"
    assert config["branding"]["accentColor"] == "#abcdef"
    assert api.get(f"/v1/tenants/{tid}", headers=h(tenant)).json()["data"]["name"] == "Acme Europe"

    r = api.put(f"/v1/tenants/{tid}/config", headers=h(tenant), json={
        "timezone": "Mars/Olympus", "locale": "xx-YY", "currency": "ABC", "dateFormat": "YY", "weekStart": "friday",
        "fiscalYearStartMonth": 13, "name": "", "branding": {"primaryColor": "red", "logoUrl": "http://x.example",
                                                             "emailFooter": "f" * 1001}})
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"config.timezone", "config.locale", "config.currency", "config.dateFormat", "config.weekStart",
                      "config.fiscalYearStartMonth", "config.name", "config.branding.primaryColor",
                      "config.branding.logoUrl", "config.branding.emailFooter"}
    assert api.get(f"/v1/tenants/{tid}/config", headers=h(tenant)).json()["data"]["timezone"] == "Europe/Berlin"
    assert api.put(f"/v1/tenants/{tid}/config", headers=h(tenant), json={}).status_code == 400


def test_features_follow_the_plan(api: httpx.Client, tenant: dict[str, str]) -> None:
    tid = tenant["x-tenant-id"]
    r = api.get(f"/v1/tenants/{tid}/features", headers=h(tenant))
    assert r.status_code == 200
    body = r.json()["data"]
    assert body["plan"] == "standard"
    features = {f["key"]: f for f in body["features"]}
    assert features["workflows"]["included"] and features["workflows"]["enabled"]
    assert not features["sso"]["included"] and not features["sso"]["enabled"]

    r = api.put(f"/v1/tenants/{tid}/features", headers=h(tenant), json={"features": {"workflows": False}})
    assert r.status_code == 200
    assert {f["key"]: f["enabled"] for f in r.json()["data"]["features"]}["workflows"] is False
    r = api.put(f"/v1/tenants/{tid}/features", headers=h(tenant),
                json={"features": {"sso": True, "aiInsights": True, "teleport": True, "workflows": True}})
    assert r.status_code == 422
    errors = {e["field"]: e["code"] for e in r.json()["errors"]}
    assert errors == {"features.sso": "NOT_IN_PLAN", "features.aiInsights": "NOT_IN_PLAN",
                      "features.teleport": "UNKNOWN_FEATURE"}
    # Nothing of the refused request was applied.
    features = {f["key"]: f["enabled"] for f in api.get(f"/v1/tenants/{tid}/features", headers=h(tenant))
                .json()["data"]["features"]}
    assert features["workflows"] is False and features["sso"] is False


def test_limits_within_plan_maxima(stack: DevStack, api: httpx.Client, tenant: dict[str, str]) -> None:
    tid = tenant["x-tenant-id"]
    r = api.get(f"/v1/tenants/{tid}/limits", headers=h(tenant))
    assert r.status_code == 200
    limits = {x["key"]: x for x in r.json()["data"]["limits"]}
    assert limits["users"] == {"key": "users", "value": 50, "planMaximum": 50, "used": 1}
    assert limits["records"]["planMaximum"] == 100_000

    r = api.put(f"/v1/tenants/{tid}/limits", headers=h(tenant), json={"limits": {"users": 10, "records": 500}})
    assert r.status_code == 200
    limits = {x["key"]: x["value"] for x in r.json()["data"]["limits"]}
    assert limits["users"] == 10 and limits["records"] == 500
    r = api.put(f"/v1/tenants/{tid}/limits", headers=h(tenant),
                json={"limits": {"users": 51, "storageMb": 999_999, "seats": 3}})
    assert r.status_code == 422
    errors = {e["field"]: e["code"] for e in r.json()["errors"]}
    assert errors == {"limits.users": "EXCEEDS_PLAN", "limits.storageMb": "EXCEEDS_PLAN",
                      "limits.seats": "UNKNOWN_LIMIT"}
    add_user(stack, tid, ["sales_rep"])
    r = api.put(f"/v1/tenants/{tid}/limits", headers=h(tenant), json={"limits": {"users": 1}})
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "BELOW_USAGE"
    # 0 gives the plan's maximum back.
    r = api.put(f"/v1/tenants/{tid}/limits", headers=h(tenant), json={"limits": {"users": 0}})
    assert {x["key"]: x["value"] for x in r.json()["data"]["limits"]}["users"] == 50


def test_other_tenants_ids_are_not_found(api: httpx.Client, tenant: dict[str, str]) -> None:
    other = sign_up(api)["x-tenant-id"]
    for sub in SUB_RESOURCES:
        r = api.get(f"/v1/tenants/{other}/{sub}", headers=h(tenant))
        assert r.status_code == 404, (sub, r.text)
    assert api.put(f"/v1/tenants/{other}/config", headers=h(tenant), json={"timezone": "UTC"}).status_code == 404
    assert api.put(f"/v1/tenants/{other}/features", headers=h(tenant),
                   json={"features": {"workflows": False}}).status_code == 404
    assert api.put(f"/v1/tenants/{other}/limits", headers=h(tenant), json={"limits": {"users": 5}}).status_code == 404
    assert api.post(f"/v1/tenants/{other}/billing/upgrade", headers=h(tenant),
                    json={"plan": "professional"}).status_code == 404
    # Naming the other tenant in X-Tenant-ID does not help: the token is for the caller's tenant.
    mixed = {**h(tenant), "x-tenant-id": other}
    assert api.get(f"/v1/tenants/{other}/config", headers=mixed).status_code == 403


def test_users_without_tenant_permissions_are_refused(stack: DevStack, api: httpx.Client,
                                                      tenant: dict[str, str]) -> None:
    tid = tenant["x-tenant-id"]
    rep = login(api, add_user(stack, tid, ["sales_rep"]))
    for sub in SUB_RESOURCES:
        assert api.get(f"/v1/tenants/{tid}/{sub}", headers=h(rep)).status_code == 403, sub
    assert api.get(f"/v1/tenants/{tid}", headers=h(rep)).status_code == 403
    assert api.put(f"/v1/tenants/{tid}/config", headers=h(rep), json={"timezone": "UTC"}).status_code == 403
    assert api.post(f"/v1/tenants/{tid}/billing/upgrade", headers=h(rep), json={"plan": "free"}).status_code == 403
    assert api.get("/v1/tenants", headers=h(rep)).status_code == 403
