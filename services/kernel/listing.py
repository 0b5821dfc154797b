"""List machinery shared by every list and search rpc: paging, sorting, free text and filters.

A service declares a `ListSpec` (the API field names it lets callers sort and filter on, each
bound to a column); `fetch_page` turns request parameters into one SQL statement. Offset pages
(`page`, `limit`) suit UIs; `pageToken` keyset cursors stay fast however deep a client goes.
Every filter a spec offers must have an index in the service's migrations.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import operator
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from crm.common.v1 import common_pb2
from google.protobuf import json_format, struct_pb2
from google.protobuf.message import Message
from sqlalchemy import ColumnElement, Select, and_, func, not_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from services.kernel.db import compile_for_asyncpg
from services.kernel.errors import FieldViolation, InvalidArgument

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_FILTERS = 20
MAX_IN_VALUES = 500
# Totals are counted exactly up to here; beyond, `total_capped` flags a lower bound. Counting
# every row of a large tenant would cost more than the page itself (Elasticsearch stops at the
# same 10,000 by default, for the same reason).
COUNT_CAP = 10_000
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "startsWith", "exists")

Kind = Literal["text", "ci_text", "uuid", "time", "date", "int", "decimal", "bool", "tags"]

_ORDERED_OPS = {"gt", "gte", "lt", "lte"}
_COMPARE = {"eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "gte": operator.ge, "lt": operator.lt,
            "lte": operator.le}
_KIND_OPS: dict[str, set[str]] = {
    "text": set(OPERATORS),
    "ci_text": set(OPERATORS),
    "uuid": {"eq", "ne", "in", "exists"},
    "time": {"eq", "ne", "gt", "gte", "lt", "lte", "exists"},
    "date": {"eq", "ne", "gt", "gte", "lt", "lte", "exists"},
    "int": {"eq", "ne", "gt", "gte", "lt", "lte", "in"},
    "decimal": {"eq", "ne", "gt", "gte", "lt", "lte"},
    "bool": {"eq", "ne"},
    "tags": {"eq", "contains", "in", "exists"},
}


@dataclass(frozen=True)
class Field:
    """An API field a list can sort or filter on. Sortable columns must be NOT NULL."""

    column: ColumnElement[Any]
    kind: Kind = "text"
    sortable: bool = False


@dataclass(frozen=True)
class ListSpec:
    """What a list rpc offers: fields by lowerCamel API name, a search column, a default order."""

    fields: Mapping[str, Field]
    id_column: ColumnElement[Any]
    search_column: ColumnElement[str] | None = None
    default_sort: str = "-createdAt"


@dataclass(frozen=True)
class Condition:
    field: str
    operator: str
    value: Any
    path: str  # where the condition came from, for error messages ("filters[2]", "ownerId")


@dataclass
class ListParams:
    page: int = 1
    limit: int = DEFAULT_LIMIT
    sort: str = ""
    search: str = ""
    page_token: str = ""
    conditions: list[Condition] = field(default_factory=list)


@dataclass
class Page:
    rows: Sequence[Any]  # SQLAlchemy rows, or asyncpg records on the read path (see `mapping`)
    page: int
    limit: int
    total: int
    next_page_token: str = ""
    total_capped: bool = False  # more rows match than were counted: `total` is a lower bound

    @property
    def has_next(self) -> bool:
        return bool(self.next_page_token) or self.page * self.limit < self.total

    def info(self) -> common_pb2.PageInfo:
        return common_pb2.PageInfo(
            page=self.page,
            limit=self.limit,
            total=self.total,
            has_next=self.has_next,
            has_prev=self.page > 1,
            next_page_token=self.next_page_token,
            total_capped=self.total_capped,
        )


def params(
    *, page: int = 0, limit: int = 0, sort: str = "", search: str = "", page_token: str = ""
) -> ListParams:
    """Validated paging parameters (400 with the offending field otherwise)."""
    problems = []
    if page < 0:
        problems.append(FieldViolation("page", "must be 1 or more", "OUT_OF_RANGE"))
    if limit < 0 or limit > MAX_LIMIT:
        problems.append(FieldViolation("limit", f"must be between 1 and {MAX_LIMIT}", "OUT_OF_RANGE"))
    if len(search) > 200:
        problems.append(FieldViolation("search", "must be at most 200 characters", "TOO_LONG"))
    if problems:
        raise InvalidArgument("invalid paging parameters", violations=problems)
    return ListParams(page=page or 1, limit=limit or DEFAULT_LIMIT, sort=sort, search=search.strip(), page_token=page_token)


def conditions_from_request(request: Message, spec: ListSpec, skip: set[str]) -> list[Condition]:
    """Query-string filters: a set request field named like a spec field means `eq`;
    `<field>After` means `gte` and `<field>Before` means `lt` on a time field (`createdAfter`
    bounds `createdAt`)."""

    def target(base: str) -> str | None:
        return next((n for n in (base, f"{base}At") if n in spec.fields), None)

    found: list[Condition] = []
    for descriptor, value in request.ListFields():
        name = descriptor.json_name
        if name in skip:
            continue
        if isinstance(value, Message):
            value = json_format.MessageToDict(value)  # Timestamp -> RFC 3339 string
        if name in spec.fields:
            found.append(Condition(name, "eq", value, name))
        elif name.endswith("After") and (field_name := target(name[:-5])):
            found.append(Condition(field_name, "gte", value, name))
        elif name.endswith("Before") and (field_name := target(name[:-6])):
            found.append(Condition(field_name, "lt", value, name))
    return found


def conditions_from_filters(filters: Sequence[common_pb2.Filter]) -> list[Condition]:
    """`{field, operator, value}` search filters, values as plain Python."""
    if len(filters) > MAX_FILTERS:
        raise InvalidArgument(
            "too many filters", violations=[FieldViolation("filters", f"at most {MAX_FILTERS}", "TOO_MANY")]
        )
    out = []
    for i, f in enumerate(filters):
        value = json_format.MessageToDict(f.value) if f.HasField("value") else None
        out.append(Condition(f.field, f.operator, value, f"filters[{i}]"))
    return out


def _bad(path: str, message: str, code: str = "INVALID_FILTER") -> InvalidArgument:
    return InvalidArgument(message, violations=[FieldViolation(path, message, code)])


def _coerce(kind: Kind, value: Any, path: str) -> Any:
    try:
        if kind in ("text", "ci_text", "tags"):
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise ValueError
            return str(value)
        if kind == "uuid":
            return uuid.UUID(str(value))
        if kind == "time":
            parsed = dt.datetime.fromisoformat(str(value))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        if kind == "date":
            return dt.date.fromisoformat(str(value))
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if kind == "decimal":
            if isinstance(value, bool):
                raise ValueError
            number = decimal.Decimal(str(value))
            if not number.is_finite():
                raise ValueError
            return number
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false"):
                return str(value).lower() == "true"
            raise ValueError
    except (ValueError, TypeError, decimal.InvalidOperation):
        pass
    raise _bad(f"{path}.value" if path.startswith("filters[") else path, f"not a valid {kind.replace('ci_', '')} value")


def _like_escape(text_value: str) -> str:
    return text_value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def condition_clause(spec: ListSpec, cond: Condition) -> ColumnElement[bool]:
    """The SQL predicate of one condition, after checking field, operator and value."""
    f = spec.fields.get(cond.field)
    field_path = f"{cond.path}.field" if cond.path.startswith("filters[") else cond.path
    if f is None:
        raise _bad(field_path, f"unknown filter field {cond.field!r}; allowed: {', '.join(sorted(spec.fields))}")
    if cond.operator not in OPERATORS:
        raise _bad(f"{cond.path}.operator", f"unknown operator {cond.operator!r}; allowed: {', '.join(OPERATORS)}")
    if cond.operator not in _KIND_OPS[f.kind]:
        raise _bad(f"{cond.path}.operator", f"operator {cond.operator!r} does not apply to {cond.field!r}")
    col = f.column
    op = cond.operator
    if op == "exists":
        wanted = cond.value is None or cond.value is True or str(cond.value).lower() == "true"
        if f.kind == "tags":
            present: ColumnElement[bool] = func.cardinality(col) > 0
        elif f.kind in ("text", "ci_text"):
            present = col != ""
        else:
            present = col.is_not(None)
        return present if wanted else not_(present)
    if op == "in":
        values = cond.value if isinstance(cond.value, list) else [cond.value]
        if not values or len(values) > MAX_IN_VALUES:
            raise _bad(f"{cond.path}.value", f"'in' takes 1 to {MAX_IN_VALUES} values")
        coerced = [_coerce(f.kind, v, cond.path) for v in values]
        if f.kind == "tags":
            return col.op("&&")(coerced)
        if f.kind == "ci_text":
            return func.lower(col).in_([v.lower() for v in coerced])
        return col.in_(coerced)
    value = _coerce(f.kind, cond.value, cond.path)
    if f.kind == "tags":
        return col.op("@>")([value])
    if op in ("contains", "startsWith"):
        pattern = ("%" if op == "contains" else "") + _like_escape(value) + "%"
        return col.ilike(pattern, escape="\\")
    left: ColumnElement[Any] = col
    if f.kind == "ci_text":
        left, value = func.lower(col), value.lower()
    # Only the asked comparison is built: SQLAlchemy refuses `<`/`>` against a bool value.
    compare: ColumnElement[bool] = _COMPARE[op](left, value)
    return compare


def search_clause(spec: ListSpec, search: str) -> ColumnElement[bool]:
    """Every word of the search text must appear (accent- and case-insensitively)."""
    if spec.search_column is None:
        raise _bad("search", "this list has no free-text search")
    folded = "".join(ch for ch in unicodedata.normalize("NFKD", search.lower()) if not unicodedata.combining(ch))
    words = [w for w in folded.split() if w][:8]
    return and_(
        *(spec.search_column.like("%" + _like_escape(w) + "%", escape="\\") for w in words)
    ) if words else true()


def _sort_keys(spec: ListSpec, sort: str) -> list[tuple[str, Field, bool]]:
    keys = []
    for raw in (sort or spec.default_sort).split(","):
        raw = raw.strip()
        if not raw:
            continue
        desc = raw.startswith("-")
        name = raw.lstrip("-+")
        f = spec.fields.get(name)
        if f is None or not f.sortable:
            allowed = sorted(n for n, x in spec.fields.items() if x.sortable)
            raise _bad("sort", f"cannot sort by {name!r}; allowed: {', '.join(allowed)}", "INVALID_SORT")
        keys.append((name, f, desc))
    if len(keys) > 4:
        raise _bad("sort", "at most 4 sort keys", "INVALID_SORT")
    return keys


def _encode_token(values: list[Any]) -> str:
    def plain(v: Any) -> Any:
        if isinstance(v, dt.date):  # datetimes too
            return v.isoformat()
        return str(v) if isinstance(v, uuid.UUID | decimal.Decimal) else v

    raw = json.dumps([plain(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str, kinds: list[Kind]) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != len(kinds):
            raise ValueError
        return [_coerce(k, v, "pageToken") if v is not None else None for k, v in zip(kinds, values, strict=True)]
    except (ValueError, TypeError, InvalidArgument):
        raise _bad("pageToken", "invalid or expired page token", "INVALID_PAGE_TOKEN") from None


def order_by(spec: ListSpec, sort: str) -> list[ColumnElement[Any]]:
    """ORDER BY clauses for a sort string, with the id as the final tie-breaker."""
    keys = _sort_keys(spec, sort)
    out: list[ColumnElement[Any]] = [f.column.desc() if desc else f.column.asc() for _, f, desc in keys]
    out.append(spec.id_column.desc() if keys and keys[-1][2] else spec.id_column.asc())
    return out


Connection = AsyncConnection | PoolConnectionProxy  # the raw path: `Database.read`


async def _fetch(conn: Connection, stmt: Select[Any]) -> Sequence[Any]:
    """Rows of `stmt`: SQLAlchemy rows on a SQLAlchemy connection, asyncpg records on a raw one
    (`Database.read`, the cheaper path: prepared once, no toolkit cost per row)."""
    if isinstance(conn, AsyncConnection):
        return (await conn.execute(stmt)).all()
    sql, args = compile_for_asyncpg(stmt)
    rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
    return rows


def mapping(row: Any) -> Any:
    """A page row by column name, from either path (asyncpg records already are)."""
    return row if isinstance(row, asyncpg.Record) else row._mapping


def _value(row: Any, key: str) -> Any:
    return mapping(row)[key]


async def count_up_to(conn: Connection, stmt: Select[Any], cap: int) -> int:
    """How many rows `stmt` gives, counting no further than `cap` + 1.

    The LIMIT inside stops the scan early; without ORDER BY PostgreSQL counts along the
    cheapest index (an index-only scan where the visibility map allows)."""
    counted = select(func.count()).select_from(stmt.limit(cap + 1).subquery())
    if isinstance(conn, AsyncConnection):
        return int((await conn.execute(counted)).scalar_one())
    sql, args = compile_for_asyncpg(counted)
    return int(await conn.fetchval(sql, *args))


async def fetch_page(
    conn: Connection, base: Select[Any], spec: ListSpec, p: ListParams, where: Sequence[ColumnElement[bool]] = ()
) -> Page:
    """One page of `base` filtered by `where`, the params' conditions and search.

    The page is one ordered, LIMITed statement (an index scan for every offered sort), so it
    costs what the page costs. The total is counted apart, only when the page does not tell it
    (a first page that is also the last needs no count), and only up to COUNT_CAP: beyond it
    the total is a lower bound and `total_capped` says so. Free-text searches, which no index
    serves under row-level security, count in the page's own scan instead (exact). Keyset pages (`pageToken`) seek past
    the last row, as fast at any depth; offset pages (`page`) skip rows, which costs the skipped
    index entries.
    """
    clauses = list(where) + [condition_clause(spec, c) for c in p.conditions]
    if p.search:
        clauses.append(search_clause(spec, p.search))
    keys = _sort_keys(spec, p.sort)
    order_cols: list[tuple[ColumnElement[Any], bool]] = [(f.column, desc) for _, f, desc in keys]
    order_cols.append((spec.id_column, keys[-1][2] if keys else False))
    order_by = [c.desc() if d else c.asc() for c, d in order_cols]
    kinds: list[Kind] = [f.kind for _, f, _ in keys] + ["uuid"]
    stmt = base.where(*clauses)
    skipped: int | None  # rows before this page, when known
    if p.page_token:
        last = _decode_token(p.page_token, kinds)
        seek = []
        for i, (col, desc) in enumerate(order_cols):
            equal = [order_cols[j][0] == last[j] for j in range(i)]
            seek.append(and_(*equal, col < last[i] if desc else col > last[i]))
        rows = await _fetch(conn, stmt.where(or_(*seek)).order_by(*order_by).limit(p.limit + 1))
        page_no, skipped = 1, None
    else:
        skipped = (p.page - 1) * p.limit
        paged = stmt.order_by(*order_by).limit(p.limit + 1).offset(skipped)
        if p.search:
            # No index serves a substring search under row-level security (LIKE is not
            # leakproof), so the page scans every match anyway: count in that same scan.
            paged = paged.add_columns(func.count().over().label("_total"))
        rows = await _fetch(conn, paged)
        page_no = p.page
    more = len(rows) > p.limit
    rows = rows[: p.limit]
    capped = False
    if p.search and rows and skipped is not None:
        total = int(_value(rows[0], "_total"))
    elif skipped is not None and rows and not more:
        total = skipped + len(rows)  # the last page: the total is known without counting
    elif skipped == 0 and not rows:
        total = 0
    else:
        cap = COUNT_CAP  # read at call time, so a test can lower it
        counted = await count_up_to(conn, stmt, cap)
        capped = counted > cap
        # What this page proves exists is a lower bound too (an offset page past the cap).
        seen = (skipped or 0) + len(rows) + int(more) if rows and skipped is not None else 0
        total = max(min(counted, cap), seen)
    token = ""
    if more and rows:
        token = _encode_token([_value(rows[-1], str(c.key)) for c, _ in order_cols])
    return Page(rows=rows, page=page_no, limit=p.limit, total=total, next_page_token=token, total_capped=capped)


def value_to_python(value: struct_pb2.Value) -> Any:
    return json_format.MessageToDict(value)
