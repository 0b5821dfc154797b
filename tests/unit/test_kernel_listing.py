"""List machinery: query-string filters and the decimal and date kinds."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from crm.contacts.v1 import contacts_service_pb2
from sqlalchemy import Column, Date, MetaData, Numeric, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import UUID

from services.contacts.domain import LIST_SPEC
from services.kernel import listing
from services.kernel.errors import InvalidArgument


def test_after_and_before_bound_the_at_field() -> None:
    request = contacts_service_pb2.ListContactsRequest(owner_id="o")
    request.created_after.FromDatetime(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    request.created_before.FromDatetime(dt.datetime(2026, 2, 1, tzinfo=dt.UTC))
    found = listing.conditions_from_request(request, LIST_SPEC, set())
    assert {(c.field, c.operator, c.path) for c in found} == {
        ("ownerId", "eq", "ownerId"), ("createdAt", "gte", "createdAfter"), ("createdAt", "lt", "createdBefore")}


def test_decimal_and_date_filters() -> None:
    t = Table("t", MetaData(), Column("id", UUID), Column("amount", Numeric(18, 2)), Column("day", Date))
    spec = listing.ListSpec(fields={"amount": listing.Field(t.c.amount, "decimal", sortable=True),
                                    "day": listing.Field(t.c.day, "date")}, id_column=t.c.id)
    clause = listing.condition_clause(spec, listing.Condition("amount", "gte", "10.50", "amountMin"))
    compiled = clause.compile(dialect=postgresql.dialect())
    assert list(compiled.params.values()) == [Decimal("10.50")]
    clause = listing.condition_clause(spec, listing.Condition("day", "lte", "2026-03-01", "to"))
    assert list(clause.compile(dialect=postgresql.dialect()).params.values()) == [dt.date(2026, 3, 1)]
    for field, value in (("amount", "ten"), ("amount", "NaN"), ("day", "2026-02-30")):
        with pytest.raises(InvalidArgument) as err:
            listing.condition_clause(spec, listing.Condition(field, "eq", value, field))
        assert err.value.violations[0].field == field
