"""Lead conversion across the real services of the stack (contacts, accounts, deals, pipelines),
through Envoy: all or nothing, once."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.integration.conftest import sign_up
from tests.integration.test_contacts_rest import h
from tests.integration.test_leads_rest import lead


def _stage(api: httpx.Client, t: dict[str, str]) -> tuple[str, str]:
    pipelines = api.get("/v1/pipelines", headers=h(t)).json()["data"]
    first = pipelines[0]
    return first["id"], first["stages"][0]["id"]


def _count(api: httpx.Client, t: dict[str, str], path: str) -> int:
    total: int = api.get(path, headers=h(t)).json()["meta"]["pagination"]["total"]
    return total


def _convert(api: httpx.Client, t: dict[str, str], lead_id: str, **body: Any) -> httpx.Response:
    return api.post(f"/v1/leads/{lead_id}/convert", headers=h(t), json=body)


def test_conversion_creates_account_contact_and_deal_once(api: httpx.Client, tenant: dict[str, str]) -> None:
    pipeline, stage = _stage(api, tenant)
    x = lead(api, tenant, firstName="Nia", lastName="Okafor", email="nia@okafor-trading.example",
             company="Okafor Trading")
    r = _convert(api, tenant, x["id"], createDeal=True, pipelineId=pipeline, stageId=stage, dealName="First order",
                 amount="1200.50", currency="EUR")
    assert r.status_code == 200, r.text
    out = r.json()["data"]
    contact = api.get(f"/v1/contacts/{out['contactId']}", headers=h(tenant)).json()["data"]
    account = api.get(f"/v1/accounts/{out['accountId']}", headers=h(tenant)).json()["data"]
    deal = api.get(f"/v1/deals/{out['dealId']}", headers=h(tenant)).json()["data"]
    assert contact["email"] == "nia@okafor-trading.example" and contact["accountId"] == account["id"]
    assert account["name"] == "Okafor Trading"
    assert (deal["contactId"], deal["accountId"], deal["stageId"], deal["amount"], deal["currency"]) == (
        contact["id"], account["id"], stage, "1200.50", "EUR")
    assert api.get(f"/v1/leads/{x['id']}", headers=h(tenant)).json()["data"]["status"] == "converted"
    again = _convert(api, tenant, x["id"], createDeal=True, pipelineId=pipeline, stageId=stage)
    assert again.status_code == 409
    assert _count(api, tenant, "/v1/contacts?search=okafor") == 1


def test_a_failing_deal_step_leaves_nothing_behind(api: httpx.Client, tenant: dict[str, str]) -> None:
    pipeline, _ = _stage(api, tenant)
    x = lead(api, tenant, firstName="Ola", lastName="Berg", email="ola@berg-shipping.example", company="Berg Shipping")
    status = api.get(f"/v1/leads/{x['id']}", headers=h(tenant)).json()["data"]["status"]
    contacts, accounts = _count(api, tenant, "/v1/contacts"), _count(api, tenant, "/v1/accounts")
    r = _convert(api, tenant, x["id"], createDeal=True, pipelineId=pipeline, stageId=str(uuid.uuid4()))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "stageId", r.text
    assert (_count(api, tenant, "/v1/contacts"), _count(api, tenant, "/v1/accounts")) == (contacts, accounts)
    assert api.get(f"/v1/leads/{x['id']}", headers=h(tenant)).json()["data"]["status"] == status
    # Fixed, the same lead converts.
    _, stage = _stage(api, tenant)
    assert _convert(api, tenant, x["id"], createDeal=True, pipelineId=pipeline, stageId=stage).status_code == 200


def test_parallel_conversions_make_one_set(api: httpx.Client, tenant: dict[str, str]) -> None:
    x = lead(api, tenant, firstName="Par", lastName="Allel", email="par@allel.example", company="Allel")
    with ThreadPoolExecutor(2) as pool:
        calls = [pool.submit(_convert, api, tenant, x["id"]) for _ in range(2)]
        codes = sorted(c.result().status_code for c in calls)
    assert codes == [200, 409], codes
    assert _count(api, tenant, "/v1/contacts?search=allel") == 1
    assert _count(api, tenant, "/v1/accounts?search=allel") == 1


def test_existing_account_and_another_tenants_account(api: httpx.Client, tenant: dict[str, str]) -> None:
    mine = api.post("/v1/accounts", headers=h(tenant), json={"name": "Existing Co"}).json()["data"]["id"]
    x = lead(api, tenant, firstName="Eve", lastName="Xist", email="eve@existing.example", company="Existing Co")
    r = _convert(api, tenant, x["id"], accountId=mine)
    assert r.status_code == 200 and r.json()["data"]["accountId"] == mine and not r.json()["data"]["accountCreated"]
    other = sign_up(api)
    theirs = api.post("/v1/accounts", headers=h(other), json={"name": "Their Co"}).json()["data"]["id"]
    y = lead(api, tenant, firstName="Yan", lastName="Other", email="yan@other.example")
    before = _count(api, tenant, "/v1/contacts")
    r = _convert(api, tenant, y["id"], accountId=theirs)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "accountId", r.text
    assert _count(api, tenant, "/v1/contacts") == before
