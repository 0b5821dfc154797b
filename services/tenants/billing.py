"""Invoice arithmetic: billing periods, subscription and proration lines, totals. Pure, no I/O.

A billing period is a calendar month in UTC. A period's invoice has
- one subscription line: the plan in force at the period's start (or at sign-up, for the first
  period) x the period's seats (its highest number of active users) x the share of the period
  the tenant existed, and
- one proration line per plan change in the period: (new price - old price) x the seats at the
  change x the share of the period left from the change's day on (negative when moving down).
Shares are whole days (the day of a change counts as remaining) over the period's days. Every
amount is quantity x unit price x days / period days, computed exactly in Decimal and rounded
once, half up, to cents; the total is the sum of the rounded lines. No floats anywhere.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from services.auth.plans import CURRENCY, PLANS, Plan

CENT = Decimal("0.01")
FRACTION = Decimal("0.0001")


def period_of(at: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The calendar month (UTC) containing `at`: [start, end)."""
    at = at.astimezone(dt.UTC)
    start = dt.datetime(at.year, at.month, 1, tzinfo=dt.UTC)
    end = dt.datetime(at.year + (at.month == 12), at.month % 12 + 1, 1, tzinfo=dt.UTC)
    return start, end


def previous_period(start: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    return period_of(start - dt.timedelta(days=1))


def days_left(start: dt.datetime, period_end: dt.datetime) -> int:
    """Days from `start`'s day (included) to the end of the period."""
    return (period_end.astimezone(dt.UTC).date() - start.astimezone(dt.UTC).date()).days


def prorate(quantity: int, unit_price: Decimal, days: int, period_days: int) -> Decimal:
    return (Decimal(quantity) * unit_price * Decimal(days) / Decimal(period_days)).quantize(CENT, ROUND_HALF_UP)


def money(value: Decimal) -> str:
    return str(value.quantize(CENT, ROUND_HALF_UP))


@dataclass(frozen=True)
class PlanChange:
    from_plan: str
    to_plan: str
    seats: int
    effective_at: dt.datetime
    unit_price: Decimal  # new price - old price
    amount: Decimal  # fixed when the change took effect


@dataclass(frozen=True)
class Line:
    kind: str  # subscription | proration
    description: str
    quantity: int
    unit_price: Decimal
    days: int
    period_days: int
    amount: Decimal
    start: dt.datetime
    end: dt.datetime

    @property
    def fraction(self) -> str:
        return str((Decimal(self.days) / Decimal(self.period_days)).quantize(FRACTION, ROUND_HALF_UP))

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "description": self.description, "quantity": self.quantity,
                "unitPrice": money(self.unit_price), "days": self.days, "periodDays": self.period_days,
                "amount": money(self.amount), "start": self.start.isoformat(), "end": self.end.isoformat()}

    @classmethod
    def from_json(cls, d: dict[str, object]) -> Line:
        return cls(kind=str(d["kind"]), description=str(d["description"]), quantity=int(d["quantity"]),  # type: ignore[call-overload]
                   unit_price=Decimal(str(d["unitPrice"])), days=int(d["days"]),  # type: ignore[call-overload]
                   period_days=int(d["periodDays"]), amount=Decimal(str(d["amount"])),  # type: ignore[call-overload]
                   start=dt.datetime.fromisoformat(str(d["start"])), end=dt.datetime.fromisoformat(str(d["end"])))


@dataclass
class Draft:
    period_start: dt.datetime
    period_end: dt.datetime
    lines: list[Line] = field(default_factory=list)
    currency: str = CURRENCY

    @property
    def subtotal(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))

    @property
    def tax(self) -> Decimal:
        return Decimal("0.00")  # net amounts: no tax engine is configured

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.tax


def proration(change_from: Plan, change_to: Plan, seats: int, at: dt.datetime) -> Line:
    """The line a plan change adds to its period, from its day to the period's end."""
    start, end = period_of(at)
    period_days = (end - start).days
    days = days_left(at, end)
    diff = change_to.price_per_seat - change_from.price_per_seat
    return Line(kind="proration",
                description=f"Plan change {change_from.name} -> {change_to.name} on {at.date().isoformat()}: "
                            f"{seats} seat(s) x {money(diff)} for {days} of {period_days} days",
                quantity=seats, unit_price=diff, days=days, period_days=period_days,
                amount=prorate(seats, diff, days, period_days), start=at, end=end)


def compute(*, period_start: dt.datetime, period_end: dt.datetime, billing_start: dt.datetime,
            plan_at_start: Plan, seats: int, changes: Sequence[PlanChange]) -> Draft:
    """The invoice of one period (see the module docstring for the rules)."""
    draft = Draft(period_start, period_end)
    period_days = (period_end - period_start).days
    start = max(period_start, billing_start)
    days = days_left(start, period_end)
    if days <= 0:
        return draft
    price = plan_at_start.price_per_seat
    draft.lines.append(Line(
        kind="subscription",
        description=f"{plan_at_start.name} plan: {seats} seat(s) x {money(price)} {CURRENCY}/month"
                    + ("" if days == period_days else f" for {days} of {period_days} days"),
        quantity=seats, unit_price=price, days=days, period_days=period_days,
        amount=prorate(seats, price, days, period_days), start=start, end=period_end,
    ))
    for c in sorted(changes, key=lambda c: c.effective_at):
        old, new = PLANS[c.from_plan], PLANS[c.to_plan]
        d = days_left(c.effective_at, period_end)
        draft.lines.append(Line(
            kind="proration",
            description=f"Plan change {old.name} -> {new.name} on {c.effective_at.date().isoformat()}: "
                        f"{c.seats} seat(s) x {money(c.unit_price)} for {d} of {period_days} days",
            quantity=c.seats, unit_price=c.unit_price, days=d, period_days=period_days, amount=c.amount,
            start=c.effective_at, end=period_end,
        ))
    return draft
