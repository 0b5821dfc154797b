"""The search service's read statements, compiled once to asyncpg's SQL.

Searches run on the kernel's raw asyncpg read path (`Database.read()`): no SQL toolkit work
per request, prepared statements, one round trip per statement. Everything a request varies is
a parameter: the tsquery texts, the caller's read scope (`every`: types readable whoever owns
the record; `owned`: `type/owner` keys of the records readable only by their owner), the page.
Statements that depend on the request's shape (sort keys, whether titles that merely look alike
match) are compiled once per shape; filters make a statement of their own per request.

`bench/floor.py` sends these very statements, so the bench compares like with like.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Text,
    and_,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    not_,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.sql.elements import ColumnElement

from services.kernel import listing
from services.kernel.db import RawQuery
from services.search.tables import documents

d = documents.c
Scope = list[tuple[str, tuple[str, ...] | None]]  # (type, owners): None = every owner
RANK_WEIGHTS: ColumnElement[Any] = literal_column("'{0.1, 0.2, 0.4, 1.0}'::float4[]")  # D, C, B, A
SIMPLE: ColumnElement[Any] = literal_column("'simple'::regconfig")
RESULT_COLUMNS = (d.type, d.id, d.owner_id, d.title, d.subtitle, d.data, d.updated_at)
CREATED = func.coalesce(d.created_at, d.updated_at).label("created_sort")

CANDIDATE_SIMILARITY = 0.2  # trigram similarity a vocabulary word needs to be considered a correction
# The tenant's configuration, and the transaction's settings in the same round trip: plans made
# for the actual words (how many records a prefix matches decides between walking the title
# index and the full-text index; a cached generic plan, which asyncpg's prepared statements
# get after five runs, measured 3x slower), and the trigram similarity a look-alike word needs.
CONFIG = RawQuery(
    "SELECT (SELECT config::text FROM search.configs), set_config('plan_cache_mode', 'force_custom_plan', true), "
    f"set_config('pg_trgm.similarity_threshold', '{CANDIDATE_SIMILARITY}', true)", ())
SET_WORD_SIMILARITY = RawQuery("SELECT set_config('pg_trgm.word_similarity_threshold', $1, true)", ("threshold",))


@dataclass(frozen=True)
class Statement:
    """A compiled statement and the values it was compiled with (a filter's constants)."""

    raw: RawQuery
    bound: Mapping[str, Any] = field(default_factory=dict)

    def args(self, **values: Any) -> list[Any]:
        return self.raw.args(**{**self.bound, **values})


def compile_statement(stmt: Any) -> Statement:
    compiled = stmt.compile(dialect=asyncpg_dialect.dialect())
    # `IN` lists become one parameter per value, as SQLAlchemy expands them when it executes.
    expanded = compiled.construct_expanded_state(compiled.params)
    names = tuple(expanded.positiontup or ())
    bound = {k: v for k, v in expanded.parameters.items() if v is not None}
    return Statement(RawQuery(expanded.statement, names), bound)


def tsquery(name: str) -> ColumnElement[Any]:
    """`to_tsquery` of a bound tsquery text, folded again in SQL with unaccent itself, so both
    sides fold alike."""
    return func.to_tsquery(SIMPLE, func.search.fold(bindparam(name, type_=Text)))


def scope_clause() -> ColumnElement[bool]:
    every = bindparam("every", type_=ARRAY(Text))
    owned = bindparam("owned", type_=ARRAY(Text))
    return or_(d.type == any_(every), (d.type + literal_column("'/'", Text) + cast(d.owner_id, Text)) == any_(owned))


def scope_params(scope: Scope) -> dict[str, list[str]]:
    """The parameters of `scope_clause()` for a caller's scope."""
    every = [name for name, owners in scope if owners is None]
    owned = [f"{name}/{uuid.UUID(o)}" for name, owners in scope if owners is not None for o in owners]
    return {"every": every, "owned": owned}


def sort_spec(score: ColumnElement[Any]) -> listing.ListSpec:
    """Sort keys of search results; each is a column of the result rows."""
    return listing.ListSpec(fields={
        "score": listing.Field(score, "int", sortable=True),
        "updatedAt": listing.Field(d.updated_at, "time", sortable=True),
        "createdAt": listing.Field(CREATED, "time", sortable=True),
        "title": listing.Field(d.title_folded, "text", sortable=True),
    }, id_column=d.id)


def _page_select(has_query: bool, titles_alike: bool, excluded: bool, sort: str,
                 filters: Sequence[ColumnElement[bool]]) -> Any:
    """One page of matches with the count of all of them (`_total`, in the same statement).

    Parameters: `tsq` (the query's tsquery text), `plain` and `unwanted` (titles alike), the
    scope's, `limit` (one more than the page: is there a next one?) and `offset`."""
    where: list[ColumnElement[bool]] = [scope_clause(), *filters]
    score: ColumnElement[Any] = literal_column("0.0")
    if has_query:
        tsq = tsquery("tsq")
        match: ColumnElement[bool] = d.tsv.op("@@")(tsq)
        score = func.ts_rank_cd(RANK_WEIGHTS, d.tsv, tsq)
        if titles_alike:
            plain = bindparam("plain", type_=Text)
            looks_alike: ColumnElement[bool] = plain.op("<%")(d.title_folded)
            if excluded:
                looks_alike = and_(looks_alike, not_(d.tsv.bool_op("@@")(tsquery("unwanted"))))
            match = or_(match, looks_alike)
            score = score + func.word_similarity(plain, d.title_folded)
        where.append(match)
    score = score.label("score")
    return (select(*RESULT_COLUMNS, score, func.count().over().label("_total"))
            .where(*where).order_by(*listing.order_by(sort_spec(score), sort))
            .limit(bindparam("limit", type_=Integer)).offset(bindparam("offset", type_=BigInteger)))


@functools.lru_cache(maxsize=64)
def _page_cached(has_query: bool, titles_alike: bool, excluded: bool, sort: str) -> Statement:
    return compile_statement(_page_select(has_query, titles_alike, excluded, sort, ()))


def page(*, has_query: bool, titles_alike: bool = False, excluded: bool = False, sort: str = "-score",
         filters: Sequence[ColumnElement[bool]] = ()) -> Statement:
    """The page statement of a search: compiled once per shape, or for this request when it
    has filters (their columns and constants vary)."""
    if filters:
        return compile_statement(_page_select(has_query, titles_alike, excluded, sort, filters))
    return _page_cached(has_query, titles_alike, excluded, sort)


def _autocomplete() -> RawQuery:
    """Titles starting with what was typed, then titles with a word starting so (weight A), then
    emails, companies, domains (B); each step in title order, which an index walk gives without
    ranking every match (a two-letter prefix matches thousands of records).

    One statement: the steps are the branches of a UNION ALL under one LIMIT, which PostgreSQL
    runs in turn and stops as soon as it has `n` rows, so a later step costs nothing when an
    earlier one filled the answer. Titles start with the prefix when they sort in
    [`low`, `high`) byte-wise: a range an index serves whatever plan is cached (LIKE with a
    parameter only does in a plan made for its value)."""
    title = d.title_folded.collate("C")
    starts = and_(title >= bindparam("low", type_=Text), title < bindparam("high", type_=Text))
    in_title = d.tsv.bool_op("@@")(tsquery("in_title"))
    elsewhere = d.tsv.bool_op("@@")(tsquery("elsewhere"))
    score = func.ts_rank_cd(RANK_WEIGHTS, d.tsv, tsquery("ranked")).label("score")
    n = bindparam("n", type_=Integer)
    steps = [[starts], [in_title, not_(starts)], [elsewhere, not_(in_title), not_(starts)]]
    branches = [select(*RESULT_COLUMNS, score, literal_column(str(i)).label("step"))
                .where(scope_clause(), *where).order_by(title, d.id).limit(n)
                for i, where in enumerate(steps)]
    every = union_all(*branches).subquery("steps")
    compiled = compile_statement(select(every).limit(n))
    assert not compiled.bound, compiled.bound  # every value is a parameter
    return compiled.raw


AUTOCOMPLETE = _autocomplete()


def prefix_range(prefix: str) -> tuple[str, str]:
    """[low, high): the texts that start with `prefix` in byte (code point) order."""
    last = ord(prefix[-1])
    return prefix, prefix[:-1] + chr(last + 1) if last < 0x10FFFF else prefix + "\U0010ffff"


# For each word of 3 letters or more that no document holds, candidate corrections from the
# tenant's vocabulary: by trigrams (any typo in a long word), and among the words of the same
# initial and about the same length (swapped letters in a short one); edit distance decides
# in Python. `%` uses the similarity threshold CONFIG sets.
LOOK_ALIKES = RawQuery(
    "SELECT w.word, c.term, c.documents FROM unnest($1::text[]) AS w(word) "
    "CROSS JOIN LATERAL ((SELECT t.term, t.documents FROM search.tenant_terms t "
    "  WHERE t.term % w.word AND t.documents > 0 AND t.term <> w.word "
    "  ORDER BY similarity(t.term, w.word) DESC, t.documents DESC LIMIT 20) "
    " UNION (SELECT t.term, t.documents FROM search.tenant_terms t "
    "  WHERE left(t.term, 1) = left(w.word, 1) AND length(t.term) BETWEEN length(w.word) - 2 "
    "  AND length(w.word) + 2 AND t.documents > 0 AND t.term <> w.word "
    "  ORDER BY t.documents DESC LIMIT 500)) AS c "
    "WHERE NOT EXISTS (SELECT 1 FROM search.tenant_terms k WHERE k.term = w.word AND k.documents > 0)",
    ("words",),
)
