"""Forecast and analytics over deals. Each answer is one aggregating SQL statement (two for
velocity) over the deals' indexes, plus one call for the pipelines' stages; the arithmetic on
the aggregated rows is in rules.py, exact in decimals.

Forecast accuracy needs to know what the forecast said before a period began. The first
forecast request of each day (forecast or forecast analytics) writes that day's snapshot: the
forecast per pipeline, owner, month and currency for the current month and the next twelve
(`forecast_snapshots`, claimed through `forecast_snapshot_days` so concurrent requests write it
once). The snapshot is computed over every deal of the tenant, whoever asked; reading it is
owner-scoped like the deals.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.deals import rules
from services.deals.peers import PipelineInfo, PipelinesPeer, UsersPeer
from services.kernel import context
from services.kernel.db import Database
from services.kernel.errors import FieldViolation, InvalidArgument

MAX_PERIODS = 36
SNAPSHOT_MONTHS = 13


def _bad(name: str, message: str) -> InvalidArgument:
    return InvalidArgument(message, violations=[FieldViolation(name, message)])


def parse_day(raw: str, name: str) -> dt.date | None:
    if not raw:
        return None
    day = rules.parse_date(raw)
    if day is None:
        raise _bad(name, "must be a date, YYYY-MM-DD")
    return day


def parse_unit(raw: str) -> str:
    unit = (raw or "month").lower()
    if unit not in ("month", "quarter"):
        raise _bad("period", "must be month or quarter")
    return unit


def parse_uuid(raw: str, name: str) -> uuid.UUID | None:
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise _bad(name, "must be a UUID") from None


def _range(first: dt.date, last: dt.date, unit: str) -> list[rules.Period]:
    if first > last:
        raise _bad("to", "must not be before from")
    found = rules.periods(first, last, unit)
    if len(found) > MAX_PERIODS:
        raise _bad("to", f"at most {MAX_PERIODS} periods")
    return found


def _start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


@dataclass
class Filters:
    pipeline_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None
    currency: str = ""

    def sql(self, alias: str = "") -> tuple[str, dict[str, Any]]:
        prefix = f"{alias}." if alias else ""
        parts: list[str] = []
        params: dict[str, Any] = {}
        if self.pipeline_id:
            parts.append(f"AND {prefix}pipeline_id = :f_pipeline")
            params["f_pipeline"] = self.pipeline_id
        if self.owner_id:
            parts.append(f"AND {prefix}owner_id = :f_owner")
            params["f_owner"] = self.owner_id
        if self.currency:
            parts.append(f"AND {prefix}currency = :f_currency")
            params["f_currency"] = self.currency
        return " ".join(parts), params


@dataclass
class ForecastResult:
    unit: str
    first: dt.date
    last: dt.date
    periods: list[tuple[rules.Period, dict[str, rules.Amounts]]]
    totals: dict[str, rules.Amounts]


@dataclass
class AccuracyRow:
    currency: str
    forecast_weighted: Decimal | None
    forecast_commit: Decimal | None
    forecast_best_case: Decimal | None
    actual: Decimal


@dataclass
class AccuracyPeriod:
    period: rules.Period
    snapshot: dt.date | None
    late: bool
    rows: list[AccuracyRow] = field(default_factory=list)


class Analytics:
    def __init__(self, db: Database, pipelines: PipelinesPeer, users: UsersPeer) -> None:
        self.db = db
        self.pipelines = pipelines
        self.users = users

    @staticmethod
    def _probabilities(pipelines: list[PipelineInfo]) -> dict[str, int]:
        return {s.id: s.probability for p in pipelines for s in p.stages}

    # --- forecast ------------------------------------------------------------------------
    @staticmethod
    async def _groups(conn: AsyncConnection, first: dt.date, last: dt.date, unit: str, filters: Filters,
                      *, detailed: bool = False) -> list[rules.Group]:
        """The forecast's one aggregation: open deals by expected close date, won deals by the
        day they were won, grouped by period, currency, stage, status and category."""
        where, params = filters.sql()
        extra = ", owner_id, pipeline_id" if detailed else ""
        stmt = text(f"""
            SELECT date_trunc(:unit, bucket)::date AS period_start, currency, stage_id, status, forecast_category,
                   count(*) AS n, sum(amount) AS amount {extra}
            FROM (SELECT currency, stage_id, status, forecast_category, amount, owner_id, pipeline_id,
                         CASE WHEN status = 'won' THEN (closed_at AT TIME ZONE 'UTC')::date
                              ELSE expected_close_date END AS bucket
                  FROM deals.deals
                  WHERE tenant_id = :t {where}
                    AND ((status = 'open' AND expected_close_date BETWEEN :first AND :last)
                      OR (status = 'won' AND closed_at >= :first_ts AND closed_at < :after_ts))) x
            GROUP BY 1, 2, 3, 4, 5 {extra}""")
        rows = (await conn.execute(stmt, {"unit": unit, "t": uuid.UUID(context.tenant_id()), "first": first, "last": last,
                                          "first_ts": _start(first), "after_ts": _start(last + dt.timedelta(days=1)),
                                          **params})).mappings().all()
        return [rules.Group(r["period_start"], r["currency"], str(r["stage_id"]), r["status"], r["forecast_category"],
                            r["n"], r["amount"], str(r.get("owner_id") or ""), str(r.get("pipeline_id") or ""))
                for r in rows]

    async def _snapshot_today(self, probabilities: Mapping[str, int]) -> None:
        """Write today's forecast snapshot if nobody has yet (see the module docstring)."""
        day = dt.datetime.now(dt.UTC).date()
        # Bookkeeping over the whole tenant, whatever the caller's record scope.
        token = context.bind(replace(context.current(), read_owners=None, write_owners=None))
        try:
            async with self.db.transaction() as conn:
                claimed = (await conn.execute(text(
                    "INSERT INTO deals.forecast_snapshot_days (tenant_id, taken_on) VALUES (:t, :day) "
                    "ON CONFLICT DO NOTHING RETURNING taken_on"), {"t": uuid.UUID(context.tenant_id()), "day": day})).first()
                if claimed is None:
                    return
                first = rules.period_start(day, "month")
                last = rules.shift(day, "month", SNAPSHOT_MONTHS) - dt.timedelta(days=1)
                groups = await self._groups(conn, first, last, "month", Filters(), detailed=True)
                folded = rules.fold(groups, probabilities, key=lambda g: (g.pipeline_id, g.owner_id, g.period_start, g.currency))
                rows = [{"t": uuid.UUID(context.tenant_id()), "day": day, "pipeline": uuid.UUID(p), "owner": uuid.UUID(o),
                         "month": m, "currency": c, "n": a.open_deals, "pipeline_amount": a.pipeline, "weighted": a.weighted,
                         "commit": a.commit, "best": a.best_case, "won": a.won}
                        for (p, o, m, c), a in folded.items()]
                if rows:
                    await conn.execute(text(
                        "INSERT INTO deals.forecast_snapshots (tenant_id, taken_on, pipeline_id, owner_id, period_month, "
                        "currency, open_deals, pipeline_amount, weighted, commit_amount, best_case_amount, won_amount) "
                        "VALUES (:t, :day, :pipeline, :owner, :month, :currency, :n, :pipeline_amount, :weighted, :commit, "
                        ":best, :won)"), rows)
        finally:
            context.reset(token)

    async def forecast(self, first_raw: str, last_raw: str, unit_raw: str, pipeline_id: str, owner_id: str,
                       currency: str) -> ForecastResult:
        unit = parse_unit(unit_raw)
        today = dt.datetime.now(dt.UTC).date()
        first = parse_day(first_raw, "from") or rules.period_start(today, unit)
        last = parse_day(last_raw, "to") or rules.shift(first, unit, 3) - dt.timedelta(days=1)
        found = _range(first, last, unit)
        filters = Filters(parse_uuid(pipeline_id, "pipelineId"), parse_uuid(owner_id, "ownerId"), currency.strip().upper())
        probabilities = self._probabilities(await self.pipelines.all())
        await self._snapshot_today(probabilities)
        async with self.db.transaction() as conn:
            groups = await self._groups(conn, first, last, unit, filters)
        folded = rules.fold(groups, probabilities)
        totals: dict[str, rules.Amounts] = {}
        periods = []
        for period in found:
            by_currency = {c: a for (start, c), a in sorted(folded.items()) if start == period.start}
            for c, a in by_currency.items():
                totals.setdefault(c, rules.Amounts()).add(a)
            periods.append((period, by_currency))
        return ForecastResult(unit, first, last, periods, dict(sorted(totals.items())))

    async def forecast_accuracy(self, first_raw: str, last_raw: str, unit_raw: str, pipeline_id: str,
                                owner_id: str) -> tuple[str, dt.date, dt.date, list[AccuracyPeriod]]:
        unit = parse_unit(unit_raw)
        today = dt.datetime.now(dt.UTC).date()
        last = parse_day(last_raw, "to") or rules.shift(today, unit, 1) - dt.timedelta(days=1)
        first = parse_day(first_raw, "from") or rules.shift(last, unit, -5)
        found = _range(first, last, unit)
        filters = Filters(parse_uuid(pipeline_id, "pipelineId"), parse_uuid(owner_id, "ownerId"))
        await self._snapshot_today(self._probabilities(await self.pipelines.all()))
        where, params = filters.sql()
        where_s, _ = filters.sql("s")
        tenant = uuid.UUID(context.tenant_id())
        async with self.db.transaction() as conn:
            days = sorted((await conn.execute(text("SELECT taken_on FROM deals.forecast_snapshot_days"))).scalars().all())
            out = [_choose_snapshot(p, days) for p in found]
            pairs = [(a.snapshot, m) for a in out if a.snapshot for m in _months(a.period)]
            forecast_rows = (await conn.execute(text(f"""
                SELECT s.taken_on, s.period_month, s.currency, sum(s.weighted + s.won_amount) AS weighted,
                       sum(s.commit_amount) AS commit, sum(s.best_case_amount) AS best_case
                FROM deals.forecast_snapshots s
                JOIN unnest(CAST(:days AS date[]), CAST(:months AS date[])) AS w(day, month)
                  ON s.taken_on = w.day AND s.period_month = w.month
                WHERE s.tenant_id = :t {where_s}
                GROUP BY 1, 2, 3"""), {"t": tenant, "days": [p[0] for p in pairs], "months": [p[1] for p in pairs],
                                      **params})).mappings().all() if pairs else []
            actual_rows = (await conn.execute(text(f"""
                SELECT date_trunc(:unit, closed_at AT TIME ZONE 'UTC')::date AS period_start, currency, sum(amount) AS won
                FROM deals.deals WHERE tenant_id = :t AND status = 'won' AND closed_at >= :a AND closed_at < :b {where}
                GROUP BY 1, 2"""), {"unit": unit, "t": tenant, "a": _start(found[0].start),
                                    "b": _start(found[-1].end + dt.timedelta(days=1)), **params})).mappings().all()
        for acc in out:
            months = set(_months(acc.period))
            forecast: dict[str, list[Decimal]] = {}
            for row in forecast_rows:
                if row["taken_on"] == acc.snapshot and row["period_month"] in months:
                    sums = forecast.setdefault(row["currency"], [Decimal(0)] * 3)
                    sums[0] += row["weighted"]
                    sums[1] += row["commit"]
                    sums[2] += row["best_case"]
            actual = {r["currency"]: r["won"] for r in actual_rows if r["period_start"] == acc.period.start}
            for currency in sorted(set(forecast) | set(actual)):
                f = forecast.get(currency)
                if f is None and acc.snapshot is not None:
                    f = [Decimal(0)] * 3  # the snapshot foresaw nothing in this currency
                acc.rows.append(AccuracyRow(currency, f[0] if f else None, f[1] if f else None, f[2] if f else None,
                                            actual.get(currency, Decimal(0))))
        return unit, found[0].start, found[-1].end, out

    # --- analytics -----------------------------------------------------------------------
    async def _pipeline(self, pipeline_id: str) -> PipelineInfo:
        return await (self.pipelines.get(pipeline_id) if pipeline_id else self.pipelines.default())

    async def conversion(self, pipeline_id: str, first_raw: str, last_raw: str, owner_id: str) -> dict[str, Any]:
        first, last = parse_day(first_raw, "from"), parse_day(last_raw, "to")
        owner = parse_uuid(owner_id, "ownerId")
        parse_uuid(pipeline_id, "pipelineId")
        pipeline = await self._pipeline(pipeline_id)
        open_stages = [s for s in pipeline.stages if s.kind == "open"]
        clauses, params = _created_range(first, last, "d.")
        if owner:
            clauses += " AND d.owner_id = :owner"
            params["owner"] = owner
        stmt = text(f"""
            WITH pos AS (SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:pos AS int[])) AS p(stage_id, position)),
            furthest AS (
                SELECT d.id, d.status, max(p.position) AS furthest
                FROM deals.deals d
                LEFT JOIN deals.stage_history h ON h.tenant_id = d.tenant_id AND h.deal_id = d.id
                LEFT JOIN pos p ON p.stage_id = h.to_stage_id
                WHERE d.tenant_id = :t AND d.pipeline_id = :p {clauses}
                GROUP BY d.id, d.status)
            SELECT furthest, status, count(*) AS n FROM furthest GROUP BY 1, 2""")
        async with self.db.transaction() as conn:
            rows = (await conn.execute(stmt, {"ids": [uuid.UUID(s.id) for s in open_stages],
                                              "pos": [s.position for s in open_stages], "t": uuid.UUID(context.tenant_id()),
                                              "p": uuid.UUID(pipeline.id), **params})).mappings().all()
        furthest: dict[int | None, dict[str, int]] = {}
        for row in rows:
            furthest.setdefault(row["furthest"], {})[row["status"]] = row["n"]
        total = sum(row["n"] for row in rows)
        won = sum(row["n"] for row in rows if row["status"] == "won")
        lost = sum(row["n"] for row in rows if row["status"] == "lost")
        steps = rules.conversion([(s.id, s.name, s.position) for s in open_stages], furthest)
        return {"pipeline_id": pipeline.id, "from": first_raw, "to": last_raw, "total_deals": total, "won": won, "lost": lost,
                "win_rate": rules.rate(won, total),
                "stages": [{"stage_id": s.stage_id, "name": s.name, "position": s.position, "reached": s.reached,
                            "advanced": s.advanced, "conversion_rate": rules.rate(s.advanced, s.reached)} for s in steps]}

    async def velocity(self, pipeline_id: str, first_raw: str, last_raw: str, owner_id: str) -> dict[str, Any]:
        first, last = parse_day(first_raw, "from"), parse_day(last_raw, "to")
        owner = parse_uuid(owner_id, "ownerId")
        parse_uuid(pipeline_id, "pipelineId")
        pipeline = await self._pipeline(pipeline_id)
        tenant = uuid.UUID(context.tenant_id())
        owner_sql = " AND d.owner_id = :owner" if owner else ""
        stage_range, params = _time_range(first, last, "h.changed_at")
        close_range, close_params = _time_range(first, last, "d.closed_at")
        async with self.db.transaction() as conn:
            stage_rows = (await conn.execute(text(f"""
                SELECT h.from_stage_id, count(*) AS exits, avg(h.time_in_stage_seconds) AS avg_s,
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY h.time_in_stage_seconds) AS median_s
                FROM deals.stage_history h JOIN deals.deals d ON d.tenant_id = h.tenant_id AND d.id = h.deal_id
                WHERE h.tenant_id = :t AND h.from_stage_id = ANY(CAST(:ids AS uuid[])) {stage_range} {owner_sql}
                GROUP BY 1"""), {"t": tenant, "ids": [uuid.UUID(s.id) for s in pipeline.stages], "owner": owner,
                                 **params})).mappings().all()
            cycle_rows = (await conn.execute(text(f"""
                SELECT d.status, count(*) AS n, avg(EXTRACT(EPOCH FROM d.closed_at - d.created_at)) AS avg_s,
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM d.closed_at - d.created_at)) AS median_s
                FROM deals.deals d
                WHERE d.tenant_id = :t AND d.pipeline_id = :p AND d.status IN ('won', 'lost') {close_range} {owner_sql}
                GROUP BY 1"""), {"t": tenant, "p": uuid.UUID(pipeline.id), "owner": owner, **close_params})).mappings().all()
        by_stage = {str(r["from_stage_id"]): r for r in stage_rows}
        cycles = {r["status"]: r for r in cycle_rows}

        def cycle(status: str) -> dict[str, Any]:
            r = cycles.get(status)
            if r is None:
                return {"deals": 0, "avg_days": 0.0, "median_days": 0.0}
            return {"deals": r["n"], "avg_days": round(float(r["avg_s"]) / 86400, 2),
                    "median_days": round(float(r["median_s"]) / 86400, 2)}

        stages_out = []
        for s in pipeline.stages:
            r = by_stage.get(s.id)
            stages_out.append({"stage_id": s.id, "name": s.name, "exits": r["exits"] if r else 0,
                               "avg_hours": round(float(r["avg_s"]) / 3600, 2) if r else 0.0,
                               "median_hours": round(float(r["median_s"]) / 3600, 2) if r else 0.0})
        return {"pipeline_id": pipeline.id, "from": first_raw, "to": last_raw, "stages": stages_out,
                "won": cycle("won"), "lost": cycle("lost")}

    async def win_loss(self, first_raw: str, last_raw: str, pipeline_id: str, owner_id: str) -> dict[str, Any]:
        first, last = parse_day(first_raw, "from"), parse_day(last_raw, "to")
        filters = Filters(parse_uuid(pipeline_id, "pipelineId"), parse_uuid(owner_id, "ownerId"))
        where, params = filters.sql()
        close_range, close_params = _time_range(first, last, "closed_at")
        async with self.db.transaction() as conn:
            rows = (await conn.execute(text(f"""
                SELECT status, currency, lost_reason, count(*) AS n, sum(amount) AS amount FROM deals.deals
                WHERE tenant_id = :t AND status IN ('won', 'lost') {close_range} {where}
                GROUP BY 1, 2, 3"""), {"t": uuid.UUID(context.tenant_id()), **params, **close_params})).mappings().all()
        won = sum(r["n"] for r in rows if r["status"] == "won")
        lost = sum(r["n"] for r in rows if r["status"] == "lost")
        amounts: dict[str, dict[str, Any]] = {}
        reasons: dict[str, dict[str, Any]] = {}
        for r in rows:
            a = amounts.setdefault(r["currency"], {"won": Decimal(0), "lost": Decimal(0), "won_n": 0})
            if r["status"] == "won":
                a["won"] += r["amount"]
                a["won_n"] += r["n"]
            else:
                a["lost"] += r["amount"]
                reason = r["lost_reason"] or "unspecified"
                entry = reasons.setdefault(reason, {"count": 0, "amounts": {}})
                entry["count"] += r["n"]
                money = entry["amounts"].setdefault(r["currency"], [Decimal(0), 0])
                money[0] += r["amount"]
                money[1] += r["n"]
        return {
            "from": first_raw, "to": last_raw, "won": won, "lost": lost, "win_rate": rules.rate(won, won + lost),
            "amounts": [{"currency": c, "won_amount": rules.money(a["won"]), "lost_amount": rules.money(a["lost"]),
                         "avg_won_amount": rules.money(a["won"] / a["won_n"] if a["won_n"] else Decimal(0))}
                        for c, a in sorted(amounts.items())],
            "lost_reasons": [{"reason": reason, "count": e["count"],
                              "amounts": [{"currency": c, "amount": rules.money(m[0]), "count": m[1]}
                                          for c, m in sorted(e["amounts"].items())]}
                             for reason, e in sorted(reasons.items(), key=lambda kv: (-kv[1]["count"], kv[0]))],
        }

    async def performance(self, first_raw: str, last_raw: str, pipeline_id: str) -> dict[str, Any]:
        first, last = parse_day(first_raw, "from"), parse_day(last_raw, "to")
        where, params = Filters(parse_uuid(pipeline_id, "pipelineId")).sql()
        close_range, close_params = _time_range(first, last, "closed_at")
        async with self.db.transaction() as conn:
            rows = (await conn.execute(text(f"""
                SELECT owner_id, status, currency, count(*) AS n, sum(amount) AS amount,
                       sum(CASE WHEN status = 'won' THEN EXTRACT(EPOCH FROM closed_at - created_at) ELSE 0 END) AS cycle_s
                FROM deals.deals
                WHERE tenant_id = :t {where} AND (status = 'open' OR (status IN ('won', 'lost') {close_range}))
                GROUP BY 1, 2, 3"""), {"t": uuid.UUID(context.tenant_id()), **params, **close_params})).mappings().all()
        owners: dict[str, rules.OwnerStats] = {}
        for r in rows:
            stats = owners.setdefault(str(r["owner_id"]), rules.OwnerStats())
            kind = r["status"]
            if kind == "open":
                stats.open_deals += r["n"]
            elif kind == "won":
                stats.won_deals += r["n"]
                stats.cycle_days_total += float(r["cycle_s"]) / 86400
            else:
                stats.lost_deals += r["n"]
            stats.add_amount(r["currency"], kind, r["amount"])
        note = self.users.unavailable()
        teams: list[dict[str, Any]] = []
        if not note:
            for team_id, name, members in await self.users.teams():
                total = rules.OwnerStats()
                for member in members:
                    if member in owners:
                        total.merge(owners[member])
                teams.append(_performance(team_id, total, name=name, members=members))
        ordered = sorted(owners.items(), key=lambda kv: (-kv[1].won_deals, kv[0]))
        return {"from": first_raw, "to": last_raw, "owners": [_performance(o, s) for o, s in ordered], "teams": teams,
                "teams_available": not note, "note": note}


def _performance(ident: str, s: rules.OwnerStats, *, name: str = "", members: list[str] | None = None) -> dict[str, Any]:
    return {"id": ident, "name": name, "member_ids": members or [], "open_deals": s.open_deals, "won_deals": s.won_deals,
            "lost_deals": s.lost_deals, "win_rate": rules.rate(s.won_deals, s.won_deals + s.lost_deals),
            "avg_cycle_days": round(s.cycle_days_total / s.won_deals, 2) if s.won_deals else 0.0,
            "amounts": [{"currency": c, "won_amount": rules.money(b["won"]), "lost_amount": rules.money(b["lost"]),
                         "open_amount": rules.money(b["open"])} for c, b in sorted(s.amounts.items())]}


def _months(period: rules.Period) -> list[dt.date]:
    out, month = [], period.start
    while month <= period.end:
        out.append(month)
        month = rules.shift(month, "month", 1)
    return out


def _choose_snapshot(period: rules.Period, days: list[dt.date]) -> AccuracyPeriod:
    """The last snapshot on or before the period's first day, else the first one inside it."""
    before = [x for x in days if x <= period.start]
    if before:
        return AccuracyPeriod(period, before[-1], False)
    inside = [x for x in days if period.start < x <= period.end]
    if inside:
        return AccuracyPeriod(period, inside[0], True)
    return AccuracyPeriod(period, None, False)


def _created_range(first: dt.date | None, last: dt.date | None, prefix: str) -> tuple[str, dict[str, Any]]:
    return _time_range(first, last, f"{prefix}created_at")


def _time_range(first: dt.date | None, last: dt.date | None, column: str) -> tuple[str, dict[str, Any]]:
    """`column` within [first, last] (whole UTC days), either end open when not given."""
    key = column.replace(".", "_")
    parts, params = [], {}
    if first:
        parts.append(f"AND {column} >= :{key}_a")
        params[f"{key}_a"] = _start(first)
    if last:
        parts.append(f"AND {column} < :{key}_b")
        params[f"{key}_b"] = _start(last + dt.timedelta(days=1))
    return " ".join(parts), params
