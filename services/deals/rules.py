"""What a valid deal is, and the forecast's arithmetic. Pure functions: no I/O, no gRPC.

Money is `decimal.Decimal` end to end (numeric in SQL, decimal strings in the API); sums are
exact and rounded once, to cents, half to even, when shown.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from services.kernel.errors import FieldViolation

STATUSES = ("open", "won", "lost")
FORECAST_CATEGORIES = ("commit", "best_case", "pipeline", "omitted")
COMMIT_FROM = 70  # derived category: probability >= 70 is commit
BEST_CASE_FROM = 30  # ... >= 30 best case, below that pipeline
MAX_AMOUNT = Decimal("9999999999999999.99")  # numeric(18,2)
CENT = Decimal("0.01")
AMOUNT_RE = re.compile(r"^\d{1,16}(\.\d{1,2})?$")
DEFAULT_CURRENCY = "USD"
MAX_CUSTOM_FIELDS_BYTES = 16 * 1024

# Active ISO 4217 currency codes.
CURRENCIES = frozenset({"AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP",
    "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP",
    "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD",
    "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP",
    "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN",
    "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG",
    "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP",
    "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD",
    "UYU", "UZS", "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG"})

_CAMEL = {"expected_close_date": "expectedCloseDate", "pipeline_id": "pipelineId", "stage_id": "stageId",
          "account_id": "accountId", "contact_id": "contactId", "owner_id": "ownerId",
          "forecast_category": "forecastCategory", "lost_reason": "lostReason", "custom_fields": "customFields"}
# Columns a client may write.
WRITABLE = ("name", "amount", "currency", "pipeline_id", "stage_id", "account_id", "contact_id", "expected_close_date",
            "owner_id", "forecast_category", "lost_reason", "description", "custom_fields")


def camel(name: str) -> str:
    return _CAMEL.get(name, name)


def snake(name: str) -> str:
    for k, v in _CAMEL.items():
        if v == name:
            return k
    return name


def money(value: Decimal) -> str:
    """A decimal amount as the API shows it: two decimals, rounded half to even."""
    return str(value.quantize(CENT, rounding=ROUND_HALF_EVEN))


def parse_amount(raw: Any) -> Decimal | None:
    """A non-negative amount of at most 16 integer digits and 2 decimals; None when malformed."""
    text = str(raw).strip()
    if not AMOUNT_RE.match(text):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value <= MAX_AMOUNT else None


def parse_date(raw: Any) -> dt.date | None:
    text = str(raw).strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def check(values: Mapping[Any, Any], prefix: str = "", *, creating: bool = False) -> tuple[dict[str, Any], list[FieldViolation]]:
    """Normalize the deal values present in `values` (snake_case keys) and list every problem.

    `creating` applies the defaults and requirements of a new deal.
    """
    out: dict[str, Any] = {}
    problems: list[FieldViolation] = []

    def bad(name: str, message: str, code: str = "INVALID") -> None:
        problems.append(FieldViolation(f"{prefix}{camel(name)}", message, code))

    if "name" in values or creating:
        name = " ".join(str(values.get("name") or "").split())
        if not name:
            bad("name", "a deal needs a name", "REQUIRED")
        elif len(name) > 200:
            bad("name", "must be at most 200 characters", "TOO_LONG")
        out["name"] = name
    if "amount" in values or creating:
        raw = str(values.get("amount") or "").strip()
        amount = Decimal(0) if not raw else parse_amount(raw)
        if amount is None:
            bad("amount", "must be a non-negative decimal with at most 2 decimals, e.g. \"1250.00\"")
        else:
            out["amount"] = amount
    if "currency" in values or creating:
        currency = str(values.get("currency") or "").strip().upper()
        if not currency and creating:
            currency = DEFAULT_CURRENCY
        if currency and currency not in CURRENCIES:
            bad("currency", "must be an ISO 4217 currency code, e.g. EUR")
        if currency:
            out["currency"] = currency
    if "expected_close_date" in values:
        raw = str(values.get("expected_close_date") or "").strip()
        when = parse_date(raw) if raw else None
        if raw and when is None:
            bad("expected_close_date", "must be a date, YYYY-MM-DD")
        out["expected_close_date"] = when
    for name in ("pipeline_id", "stage_id", "account_id", "contact_id", "owner_id"):
        if name in values:
            raw = str(values.get(name) or "").strip()
            if not raw:
                out[name] = None
                continue
            try:
                out[name] = uuid.UUID(raw)
            except ValueError:
                bad(name, "must be a UUID")
    if "forecast_category" in values:
        category = str(values.get("forecast_category") or "").strip().lower()
        if category and category not in FORECAST_CATEGORIES:
            bad("forecast_category", f"must be one of {', '.join(FORECAST_CATEGORIES)} (or empty: from the stage)")
        out["forecast_category"] = category
    if "lost_reason" in values:
        reason = " ".join(str(values.get("lost_reason") or "").split())
        if len(reason) > 200:
            bad("lost_reason", "must be at most 200 characters", "TOO_LONG")
        out["lost_reason"] = reason
    if "description" in values:
        description = str(values.get("description") or "").strip()
        if len(description) > 10000:
            bad("description", "must be at most 10000 characters", "TOO_LONG")
        out["description"] = description
    if "custom_fields" in values:
        custom = dict(values.get("custom_fields") or {})
        if len(json.dumps(custom)) > MAX_CUSTOM_FIELDS_BYTES:
            bad("custom_fields", f"must be at most {MAX_CUSTOM_FIELDS_BYTES} bytes as JSON", "TOO_LARGE")
        out["custom_fields"] = custom
    return out, problems


def status_of(kind: str) -> str:
    """A deal's status follows the kind of its stage."""
    return kind if kind in ("won", "lost") else "open"


# --- forecast --------------------------------------------------------------------------------

def category(explicit: str, probability: int) -> str:
    """The forecast category of an open deal: its explicit one, else from its stage's probability."""
    if explicit in FORECAST_CATEGORIES:
        return explicit
    if probability >= COMMIT_FROM:
        return "commit"
    if probability >= BEST_CASE_FROM:
        return "best_case"
    return "pipeline"


@dataclass
class Amounts:
    """Forecast amounts of one currency (exact; rounded only by `shown`)."""

    open_deals: int = 0
    pipeline: Decimal = Decimal(0)
    weighted: Decimal = Decimal(0)
    commit_open: Decimal = Decimal(0)
    best_case_open: Decimal = Decimal(0)
    won: Decimal = Decimal(0)
    won_deals: int = 0

    @property
    def commit(self) -> Decimal:
        return self.won + self.commit_open

    @property
    def best_case(self) -> Decimal:
        return self.commit + self.best_case_open

    def add(self, other: Amounts) -> None:
        self.open_deals += other.open_deals
        self.pipeline += other.pipeline
        self.weighted += other.weighted
        self.commit_open += other.commit_open
        self.best_case_open += other.best_case_open
        self.won += other.won
        self.won_deals += other.won_deals

    def shown(self) -> dict[str, Any]:
        return {"open_deals": self.open_deals, "pipeline": money(self.pipeline), "weighted": money(self.weighted),
                "commit": money(self.commit), "best_case": money(self.best_case), "won": money(self.won),
                "won_deals": self.won_deals}


@dataclass(frozen=True)
class Group:
    """One row of the forecast's SQL aggregation."""

    period_start: dt.date
    currency: str
    stage_id: str
    status: str
    forecast_category: str
    count: int
    amount: Decimal
    owner_id: str = ""
    pipeline_id: str = ""


def fold(groups: Iterable[Group], probabilities: Mapping[str, int],
         key: Any = lambda g: (g.period_start, g.currency)) -> dict[Any, Amounts]:
    """Forecast amounts per `key` (period and currency by default) from aggregated rows.

    Open deals count by category (omitted ones not at all) and weigh by their stage's
    probability (0 for a stage the pipelines no longer have); won deals add to `won`.
    """
    out: dict[Any, Amounts] = {}
    for g in groups:
        if g.status == "won":
            a = out.setdefault(key(g), Amounts())
            a.won += g.amount
            a.won_deals += g.count
            continue
        if g.status != "open":
            continue
        probability = probabilities.get(g.stage_id, 0)
        cat = category(g.forecast_category, probability)
        if cat == "omitted":
            continue
        a = out.setdefault(key(g), Amounts())
        a.open_deals += g.count
        a.pipeline += g.amount
        a.weighted += g.amount * probability / 100
        if cat == "commit":
            a.commit_open += g.amount
        elif cat == "best_case":
            a.best_case_open += g.amount
    return out


@dataclass(frozen=True)
class Period:
    key: str
    start: dt.date
    end: dt.date


def period_start(day: dt.date, unit: str) -> dt.date:
    if unit == "quarter":
        return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return dt.date(day.year, day.month, 1)


def _next(start: dt.date, unit: str) -> dt.date:
    months = 3 if unit == "quarter" else 1
    year, month = divmod(start.month - 1 + months, 12)
    return dt.date(start.year + year, month + 1, 1)


def period_of(start: dt.date, unit: str) -> Period:
    key = f"{start.year}-Q{(start.month - 1) // 3 + 1}" if unit == "quarter" else f"{start.year}-{start.month:02d}"
    return Period(key, start, _next(start, unit) - dt.timedelta(days=1))


def periods(first: dt.date, last: dt.date, unit: str) -> list[Period]:
    """Every period touching [first, last], in order."""
    out = []
    start = period_start(first, unit)
    while start <= last:
        out.append(period_of(start, unit))
        start = _next(start, unit)
    return out


def shift(day: dt.date, unit: str, count: int) -> dt.date:
    """The start of the period `count` periods after `day`'s (negative: before)."""
    start = period_start(day, unit)
    months = (3 if unit == "quarter" else 1) * count
    year, month = divmod(start.month - 1 + months, 12)
    return dt.date(start.year + year, month + 1, 1)


def accuracy_percent(forecast: Decimal, actual: Decimal) -> float | None:
    """100 × (1 − |actual − forecast| / forecast), at least 0; None without a forecast."""
    if forecast <= 0:
        return None
    score = (1 - abs(actual - forecast) / forecast) * 100
    return float(max(Decimal(0), score).quantize(CENT, rounding=ROUND_HALF_EVEN))


def rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


@dataclass
class ConversionStep:
    stage_id: str
    name: str
    position: int
    reached: int = 0
    advanced: int = 0


def conversion(stages: list[tuple[str, str, int]], furthest: Mapping[int | None, Mapping[str, int]]) -> list[ConversionStep]:
    """Funnel of open stages `(id, name, position)` in order, from how many deals got how far.

    `furthest[position][status]` counts deals whose furthest open stage had that position
    (None: never in an open stage of this pipeline). A won deal went through every open stage;
    a deal reached a stage when it got to it or beyond, and advanced when it went beyond.
    """
    steps = [ConversionStep(sid, name, pos) for sid, name, pos in stages]
    won = sum(counts.get("won", 0) for counts in furthest.values())
    for i, step in enumerate(steps):
        beyond_here = sum(n for pos, counts in furthest.items() if pos is not None and pos >= step.position
                          for status, n in counts.items() if status != "won")
        step.reached = beyond_here + won
        later = steps[i + 1].position if i + 1 < len(steps) else None
        beyond_next = 0 if later is None else sum(
            n for pos, counts in furthest.items() if pos is not None and pos >= later
            for status, n in counts.items() if status != "won")
        step.advanced = beyond_next + won
    return steps


@dataclass
class OwnerStats:
    open_deals: int = 0
    won_deals: int = 0
    lost_deals: int = 0
    cycle_days_total: float = 0.0
    amounts: dict[str, dict[str, Decimal]] = field(default_factory=dict)

    def add_amount(self, currency: str, kind: str, amount: Decimal) -> None:
        bucket = self.amounts.setdefault(currency, {"won": Decimal(0), "lost": Decimal(0), "open": Decimal(0)})
        bucket[kind] += amount

    def merge(self, other: OwnerStats) -> None:
        self.open_deals += other.open_deals
        self.won_deals += other.won_deals
        self.lost_deals += other.lost_deals
        self.cycle_days_total += other.cycle_days_total
        for currency, bucket in other.amounts.items():
            for kind, amount in bucket.items():
                self.add_amount(currency, kind, amount)
