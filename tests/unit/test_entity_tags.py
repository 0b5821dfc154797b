"""Entity tags and If-Match parsing (RFC 9110 §8.8.3, §13.1.1)."""

from __future__ import annotations

import datetime as dt

import pytest
from google.protobuf import timestamp_pb2

from services.kernel import context, preconditions
from services.kernel.errors import InvalidArgument


def test_a_tag_is_the_same_from_the_row_and_from_the_answer() -> None:
    when = dt.datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=dt.UTC)
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(when)
    assert preconditions.entity_tag(when) == preconditions.entity_tag(stamp)
    assert preconditions.entity_tag(when) != preconditions.entity_tag(when + dt.timedelta(microseconds=1))


@pytest.mark.parametrize(("header", "tags"), [
    ('"a"', {'"a"'}),
    ('"a", "b" ,"c"', {'"a"', '"b"', '"c"'}),
    ('W/"weak", "strong"', {'"strong"'}),
    ('W/"weak"', set()),
    ('""', {'""'}),
])
def test_if_match_lists_strong_tags(header: str, tags: set[str]) -> None:
    assert preconditions.parse_if_match(header) == frozenset(tags)


def test_a_star_matches_any_version() -> None:
    assert preconditions.parse_if_match(" * ") is None


@pytest.mark.parametrize("header", ["abc", '"a" "b"', '"a",,', '"unterminated', 'W/abc', '"a", *', '"' + "x" * 2000 + '"'])
def test_a_malformed_if_match_is_refused(header: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        preconditions.parse_if_match(header)
    assert err.value.violations[0].field == "If-Match"


def test_require_current_compares_with_the_locked_row() -> None:
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    token = context.bind(context.RequestContext(if_match=preconditions.entity_tag(when)))
    extras = context.bind_extras()
    try:
        preconditions.require_current(when)  # current: goes ahead
        with pytest.raises(preconditions.PreconditionFailed) as err:
            preconditions.require_current(when + dt.timedelta(seconds=1))
        assert err.value.http_status == 412
        assert context.extras().headers["etag"] == preconditions.entity_tag(when + dt.timedelta(seconds=1))
    finally:
        context.reset_extras(extras)
        context.reset(token)
