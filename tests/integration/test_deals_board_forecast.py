"""The board, bulk updates, the forecast and the analytics on small data sets whose answers are
known, through real Envoy."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx

from services.deals import rules
from services.devstack import DevStack
from tests.integration.sales import default_pipeline, h, make_deal, make_pipeline, sql, stage_ids

STAGES = [("A", 20, "open"), ("B", 70, "open"), ("Won", 100, "won"), ("Lost", 0, "lost")]


def _move(api: httpx.Client, t: dict[str, str], deal: dict[str, Any], stage: str, **extra: str) -> None:
    r = api.post(f"/v1/deals/{deal['id']}/move-stage", headers=h(t), json={"stageId": stage, **extra})
    assert r.status_code == 200, r.text


def test_board_shows_stages_in_order_with_counts_and_totals(api: httpx.Client, tenant: dict[str, str]) -> None:
    pipeline = make_pipeline(api, tenant, "Board", STAGES)
    ids = stage_ids(pipeline)
    p = pipeline["id"]
    owner = str(uuid.uuid4())
    first = make_deal(api, tenant, "a1", pipelineId=p, amount="10.10", currency="EUR")
    make_deal(api, tenant, "a2", pipelineId=p, amount="20.20", currency="EUR", ownerId=owner)
    make_deal(api, tenant, "a3", pipelineId=p, amount="5", currency="USD")
    make_deal(api, tenant, "b1", pipelineId=p, stageId=ids["B"], amount="1", currency="EUR")
    api.put(f"/v1/deals/{first['id']}?updateMask=description", headers=h(tenant), json={"description": "touched"})
    r = api.get(f"/v1/deals/pipeline/{p}", headers=h(tenant), params={"limitPerStage": 2})
    assert r.status_code == 200, r.text
    board = r.json()["data"]
    assert board["name"] == "Board" and board["limitPerStage"] == 2
    assert [(c["name"], c["position"], c["kind"], c["probability"]) for c in board["stages"]] == [
        ("A", 0, "open", 20), ("B", 1, "open", 70), ("Won", 2, "won", 100), ("Lost", 3, "lost", 0)]
    a, b, won = board["stages"][0], board["stages"][1], board["stages"][2]
    assert a["dealCount"] == 3 and a["hasMore"] is True
    assert [d["name"] for d in a["deals"]] == ["a1", "a3"]  # most recently changed first
    assert a["totals"] == [{"currency": "EUR", "amount": "30.30", "count": 2}, {"currency": "USD", "amount": "5.00", "count": 1}]
    assert (b["dealCount"], b["hasMore"], [d["name"] for d in b["deals"]]) == (1, False, ["b1"])
    assert (won["dealCount"], won["deals"], won["totals"]) == (0, [], [])
    mine = api.get(f"/v1/deals/pipeline/{p}", headers=h(tenant), params={"ownerId": owner}).json()["data"]
    assert [c["dealCount"] for c in mine["stages"]] == [1, 0, 0, 0]
    assert api.get(f"/v1/deals/pipeline/{uuid.uuid4()}", headers=h(tenant)).status_code == 404
    r = api.get(f"/v1/deals/pipeline/{p}", headers=h(tenant), params={"limitPerStage": 101})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "limitPerStage"


def test_bulk_update_reports_each_deal(api: httpx.Client, tenant: dict[str, str]) -> None:
    pipeline = make_pipeline(api, tenant, "Bulk", STAGES)
    ids = stage_ids(pipeline)
    d1 = make_deal(api, tenant, "one", pipelineId=pipeline["id"])
    d2 = make_deal(api, tenant, "two", pipelineId=pipeline["id"])
    elsewhere = make_deal(api, tenant, "three", pipelineId=make_pipeline(api, tenant, "Other", STAGES)["id"])
    missing = str(uuid.uuid4())
    r = api.post("/v1/deals/bulk-update", headers=h(tenant), json={
        "ids": [d1["id"], missing, "nope", d2["id"], elsewhere["id"]],
        "changes": {"stageId": ids["B"], "forecastCategory": "commit", "expectedCloseDate": "2027-06-30"}})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [x["success"] for x in data["results"]] == [True, False, False, True, False]
    assert (data["succeeded"], data["failed"]) == (2, 3)
    assert [x["index"] for x in data["results"]] == [0, 1, 2, 3, 4]
    assert data["results"][1]["errors"][0]["code"] == "NOT_FOUND" and data["results"][2]["errors"][0]["field"] == "ids[2]"
    assert data["results"][4]["errors"][0]["code"] == "FOREIGN_STAGE"
    for result in (data["results"][0], data["results"][3]):
        deal = result["deal"]
        assert (deal["stageId"], deal["forecastCategory"], deal["expectedCloseDate"]) == (ids["B"], "commit", "2027-06-30")
    history = api.get(f"/v1/deals/{d1['id']}/history", headers=h(tenant)).json()["data"]
    assert history[0]["toStageName"] == "B"
    assert api.get(f"/v1/deals/{elsewhere['id']}", headers=h(tenant)).json()["data"]["forecastCategory"] == ""
    r = api.post("/v1/deals/bulk-update", headers=h(tenant), json={"ids": [d1["id"]], "changes": {"stage": "x"}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "changes.stage"
    r = api.post("/v1/deals/bulk-update", headers=h(tenant), json={"ids": [d1["id"]], "changes": {"amount": "1.001"}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "changes.amount"
    r = api.post("/v1/deals/bulk-update", headers=h(tenant), json={"ids": [], "changes": {"name": "x"}})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "ids"


def _next_month(day: dt.date, n: int = 1) -> dt.date:
    return rules.shift(day, "month", n)


def test_forecast_amounts_are_exact_per_period_and_currency(api: httpx.Client, stack: DevStack,
                                                            tenant: dict[str, str]) -> None:
    default_pipeline(api, tenant)
    pipeline = make_pipeline(api, tenant, "Forecast", STAGES)
    ids = stage_ids(pipeline)
    p = pipeline["id"]
    today = dt.datetime.now(dt.UTC).date()
    m1, m2 = _next_month(today), _next_month(today, 2)
    close1, close2 = m1.replace(day=10).isoformat(), m2.replace(day=5).isoformat()
    make_deal(api, tenant, "d1", pipelineId=p, amount="1000.00", currency="EUR", expectedCloseDate=close1)
    make_deal(api, tenant, "d2", pipelineId=p, stageId=ids["B"], amount="333.33", currency="EUR", expectedCloseDate=close1)
    make_deal(api, tenant, "d3", pipelineId=p, amount="500", currency="EUR", expectedCloseDate=close1,
              forecastCategory="best_case")
    make_deal(api, tenant, "d4", pipelineId=p, stageId=ids["B"], amount="100", currency="USD", expectedCloseDate=close1)
    make_deal(api, tenant, "d5", pipelineId=p, amount="50", currency="EUR", expectedCloseDate=close2,
              forecastCategory="omitted")
    won = make_deal(api, tenant, "d6", pipelineId=p, amount="400", currency="EUR")
    _move(api, tenant, won, ids["Won"])
    sql(stack, "UPDATE deals.deals SET closed_at = $2 WHERE id = $1", uuid.UUID(won["id"]),
        dt.datetime.combine(m1.replace(day=15), dt.time(12), tzinfo=dt.UTC))
    make_deal(api, tenant, "d7", pipelineId=p, stageId=ids["Lost"], amount="999", currency="EUR", expectedCloseDate=close1)
    make_deal(api, tenant, "elsewhere", amount="5", currency="EUR", expectedCloseDate=close1)  # default pipeline
    r = api.get("/v1/deals/forecast", headers=h(tenant),
                params={"from": m1.isoformat(), "to": (_next_month(m2) - dt.timedelta(days=1)).isoformat(), "pipelineId": p})
    assert r.status_code == 200, r.text
    forecast = r.json()["data"]
    assert forecast["period"] == "month" and forecast["from"] == m1.isoformat()
    assert [x["period"] for x in forecast["periods"]] == [f"{m1.year}-{m1.month:02d}", f"{m2.year}-{m2.month:02d}"]
    first, second = forecast["periods"]
    assert first["amounts"] == [
        {"currency": "EUR", "openDeals": 3, "pipeline": "1833.33", "weighted": "533.33", "commit": "733.33",
         "bestCase": "1233.33", "won": "400.00", "wonDeals": 1},
        {"currency": "USD", "openDeals": 1, "pipeline": "100.00", "weighted": "70.00", "commit": "100.00",
         "bestCase": "100.00", "won": "0.00", "wonDeals": 0}]
    assert second["amounts"] == []  # only an omitted deal
    assert [t["currency"] for t in forecast["totals"]] == ["EUR", "USD"]
    assert forecast["totals"][0]["weighted"] == "533.33"
    # Quarters, and the whole tenant when no pipeline is named (the default pipeline's deal counts).
    q = api.get("/v1/deals/forecast", headers=h(tenant), params={"from": m1.isoformat(), "to": m2.isoformat(),
                                                                  "period": "quarter"}).json()["data"]
    assert all(x["period"][4:6] == "-Q" for x in q["periods"])
    eur = next(t for t in q["totals"] if t["currency"] == "EUR")
    assert eur["pipeline"] == "1838.33" and eur["weighted"] == "533.83"  # + 5.00 at Prospecting's 10%
    only_usd = api.get("/v1/deals/forecast", headers=h(tenant), params={"from": m1.isoformat(), "currency": "USD"})
    assert [t["currency"] for t in only_usd.json()["data"]["totals"]] == ["USD"]
    for params, field in (({"period": "week"}, "period"), ({"from": "2027-13-01"}, "from"),
                          ({"from": "2027-05-01", "to": "2027-01-01"}, "to"), ({"from": "2020-01-01", "to": "2029-01-01"}, "to"),
                          ({"pipelineId": "x"}, "pipelineId")):
        r = api.get("/v1/deals/forecast", headers=h(tenant), params=params)
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == field, params


def test_analytics_on_a_known_data_set(api: httpx.Client, stack: DevStack, tenant: dict[str, str]) -> None:
    pipeline = make_pipeline(api, tenant, "Analytics", [("S1", 10, "open"), ("S2", 50, "open"), ("S3", 80, "open"),
                                                        ("Won", 100, "won"), ("Lost", 0, "lost")])
    ids = stage_ids(pipeline)
    p = pipeline["id"]
    rep = str(uuid.uuid4())
    this_month = dt.datetime.now(dt.UTC).date().replace(day=1)

    def deal(name: str, amount: str, currency: str = "EUR", **extra: Any) -> dict[str, Any]:
        return make_deal(api, tenant, name, pipelineId=p, amount=amount, currency=currency, **extra)

    a, b, c = deal("a", "1000"), deal("b", "200"), deal("c", "300", "USD")
    d, f = deal("d", "70", ownerId=rep), deal("f", "50")
    deal("e", "100")
    deal("g", "500", stageId=ids["S2"], expectedCloseDate=(this_month + dt.timedelta(days=20)).isoformat())
    for stage in ("S2", "S3", "Won"):
        _move(api, tenant, a, ids[stage])
    _move(api, tenant, b, ids["S2"])
    _move(api, tenant, b, ids["Lost"], lostReason="price")
    _move(api, tenant, c, ids["Lost"], lostReason="price")
    _move(api, tenant, d, ids["S2"])
    _move(api, tenant, f, ids["Lost"])
    # Known times: in S1 1..5 hours, in S2 10 and 20 hours; sales cycles of 10 (won), 2, 4 and 6 days (lost).
    for item, hours in ((a, 1), (b, 2), (c, 3), (d, 4), (f, 5)):
        sql(stack, "UPDATE deals.stage_history SET time_in_stage_seconds = $2 WHERE deal_id = $1 AND from_stage_id = $3",
            uuid.UUID(item["id"]), hours * 3600, uuid.UUID(ids["S1"]))
    for item, hours in ((a, 10), (b, 20)):
        sql(stack, "UPDATE deals.stage_history SET time_in_stage_seconds = $2 WHERE deal_id = $1 AND from_stage_id = $3",
            uuid.UUID(item["id"]), hours * 3600, uuid.UUID(ids["S2"]))
    for item, days in ((a, 10), (b, 2), (c, 4), (f, 6)):
        sql(stack, "UPDATE deals.deals SET created_at = closed_at - make_interval(days => $2) WHERE id = $1",
            uuid.UUID(item["id"]), days)

    conversion = api.get("/v1/deals/analytics/conversion", headers=h(tenant), params={"pipelineId": p}).json()["data"]
    assert (conversion["totalDeals"], conversion["won"], conversion["lost"], conversion["winRate"]) == (7, 1, 3, 0.1429)
    assert [(s["name"], s["reached"], s["advanced"], s["conversionRate"]) for s in conversion["stages"]] == [
        ("S1", 7, 4, 0.5714), ("S2", 4, 1, 0.25), ("S3", 1, 1, 1.0)]

    velocity = api.get("/v1/deals/analytics/velocity", headers=h(tenant), params={"pipelineId": p}).json()["data"]
    by_stage = {s["name"]: s for s in velocity["stages"]}
    assert (by_stage["S1"]["exits"], by_stage["S1"]["avgHours"], by_stage["S1"]["medianHours"]) == (5, 3.0, 3.0)
    assert (by_stage["S2"]["exits"], by_stage["S2"]["avgHours"], by_stage["S2"]["medianHours"]) == (2, 15.0, 15.0)
    assert velocity["won"] == {"deals": 1, "avgDays": 10.0, "medianDays": 10.0}
    assert velocity["lost"] == {"deals": 3, "avgDays": 4.0, "medianDays": 4.0}

    win_loss = api.get("/v1/deals/analytics/win-loss", headers=h(tenant), params={"pipelineId": p}).json()["data"]
    assert (win_loss["won"], win_loss["lost"], win_loss["winRate"]) == (1, 3, 0.25)
    assert win_loss["amounts"] == [
        {"currency": "EUR", "wonAmount": "1000.00", "lostAmount": "250.00", "avgWonAmount": "1000.00"},
        {"currency": "USD", "wonAmount": "0.00", "lostAmount": "300.00", "avgWonAmount": "0.00"}]
    assert win_loss["lostReasons"] == [
        {"reason": "price", "count": 2, "amounts": [{"currency": "EUR", "amount": "200.00", "count": 1},
                                                    {"currency": "USD", "amount": "300.00", "count": 1}]},
        {"reason": "unspecified", "count": 1, "amounts": [{"currency": "EUR", "amount": "50.00", "count": 1}]}]

    performance = api.get("/v1/deals/analytics/performance", headers=h(tenant), params={"pipelineId": p}).json()["data"]
    assert performance["teamsAvailable"] is True  # the users service answers (this tenant has no teams)
    admin, other = performance["owners"]
    assert other["id"] == rep and (other["openDeals"], other["wonDeals"]) == (1, 0)
    assert (admin["openDeals"], admin["wonDeals"], admin["lostDeals"], admin["winRate"], admin["avgCycleDays"]) == (
        2, 1, 3, 0.25, 10.0)
    assert admin["amounts"] == [
        {"currency": "EUR", "wonAmount": "1000.00", "lostAmount": "250.00", "openAmount": "600.00"},
        {"currency": "USD", "wonAmount": "0.00", "lostAmount": "300.00", "openAmount": "0.00"}]

    # What the forecast said on the month's first day (a snapshot), against what was won.
    sql(stack, "INSERT INTO deals.forecast_snapshot_days VALUES ($1, $2) ON CONFLICT DO NOTHING",
        uuid.UUID(tenant["x-tenant-id"]), this_month)
    sql(stack, "INSERT INTO deals.forecast_snapshots VALUES ($1, $2, $3, $4, $2, 'EUR', 2, 1000, 900, 1000, 1100, 0)",
        uuid.UUID(tenant["x-tenant-id"]), this_month, uuid.UUID(p), uuid.UUID(a["ownerId"]))
    accuracy = api.get("/v1/deals/analytics/forecast", headers=h(tenant), params={"pipelineId": p}).json()["data"]
    assert len(accuracy["periods"]) == 6 and accuracy["periods"][0]["snapshotDate"] == ""
    current = accuracy["periods"][-1]
    assert (current["snapshotDate"], current["snapshotLate"]) == (this_month.isoformat(), False)
    assert current["amounts"] == [{"currency": "EUR", "forecastWeighted": "900.00", "forecastCommit": "1000.00",
                                   "forecastBestCase": "1100.00", "actualWon": "1000.00", "variance": "100.00",
                                   "accuracyPercent": 88.89}]
    # Today's snapshot was written by these requests, once.
    snapshot_days = sql(stack, "SELECT count(*) AS n FROM deals.forecast_snapshot_days WHERE tenant_id = $1",
               uuid.UUID(tenant["x-tenant-id"]))
    assert snapshot_days[0]["n"] == (1 if this_month == dt.datetime.now(dt.UTC).date() else 2)
