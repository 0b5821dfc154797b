"""The accounts rules without a database: hierarchy cycles and depth, how a merge re-hangs
children, what a merge keeps from its sources, and account validation."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from services.accounts import rules
from services.accounts.rules import MAX_DEPTH, check, fold_sources, merge_levels, merge_parents, parent_violation


def ids(n: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(n)]


# --- cycles and depth ----------------------------------------------------------------------

def test_an_account_cannot_be_its_own_parent() -> None:
    a = uuid.uuid4()
    problem = parent_violation(a, [a], 0)
    assert problem is not None and problem.code == "HIERARCHY_CYCLE" and problem.field == "parentId"


@pytest.mark.parametrize("levels_below", [1, 2, 5, 8])
def test_a_descendant_at_any_depth_cannot_become_the_parent(levels_below: int) -> None:
    account, *below = ids(levels_below + 1)
    # The would-be parent's chain runs up through the account itself.
    chain = list(reversed(below)) + [account]
    problem = parent_violation(account, chain, levels_below)
    assert problem is not None and problem.code == "HIERARCHY_CYCLE"


def test_an_unrelated_parent_is_fine_and_new_accounts_never_loop() -> None:
    account, parent, grand = ids(3)
    assert parent_violation(account, [parent, grand], 3) is None
    assert parent_violation(None, [parent, grand], 0) is None


def test_stored_data_that_loops_is_never_built_on() -> None:
    account, a, b = ids(3)
    problem = parent_violation(account, [a, b, a, b], 0)
    assert problem is not None and problem.code == "HIERARCHY_CYCLE"


def test_depth_counts_the_parents_the_account_and_its_subtree() -> None:
    account = uuid.uuid4()
    chain = ids(MAX_DEPTH - 1)  # the parent sits at level MAX_DEPTH - 1
    assert parent_violation(account, chain, 0) is None  # the account becomes the last level
    problem = parent_violation(account, chain, 1)
    assert problem is not None and problem.code == "HIERARCHY_TOO_DEEP"
    assert parent_violation(account, chain[:-3], 3) is None
    problem = parent_violation(account, chain, 0, field="childId")
    assert problem is None
    problem = parent_violation(account, [*chain, uuid.uuid4()], 0, field="childId")
    assert problem is not None and problem.field == "childId"


# --- merge re-hanging ----------------------------------------------------------------------

def test_children_of_sources_move_under_the_target() -> None:
    target, s1, s2, k1, k2, k3 = ids(6)
    moves = merge_parents(target, [], [s1, s2], {k1: s1, k2: s1, k3: s2})
    assert moves == {k1: target, k2: target, k3: target}


def test_the_target_under_a_source_moves_up_to_the_nearest_kept_ancestor() -> None:
    target, source, top, sibling = ids(4)
    # top > source > target, and source > sibling
    moves = merge_parents(target, [source, top], [source], {target: source, sibling: source})
    assert moves == {target: top, sibling: target}


def test_an_ancestor_between_target_and_source_skips_every_source_above_it() -> None:
    target, a, s1, b, s2, root = ids(6)
    # root > s2 > b > s1 > a > target: a and b hang under sources and are target's ancestors.
    moves = merge_parents(target, [a, s1, b, s2, root], [s1, s2], {a: s1, b: s2})
    assert moves == {a: b, b: root}
    # Then no account of the target's chain ends up under the target: no loop.
    parents = {target: a, **moves}
    seen, node = set(), target
    while node in parents:
        assert node not in seen
        seen.add(node)
        node = parents[node]  # type: ignore[assignment]


def test_a_root_source_above_the_target_leaves_its_child_a_root() -> None:
    target, source = ids(2)
    assert merge_parents(target, [source], [source], {target: source}) == {target: None}


def test_sources_under_sources_are_not_moved() -> None:
    target, s1, s2, kid = ids(4)
    assert merge_parents(target, [], [s1, s2], {s2: s1, kid: s2}) == {kid: target}


def test_merge_levels_counts_kept_ancestors_target_and_moved_subtrees() -> None:
    target_chain, source = ids(3), uuid.uuid4()
    assert merge_levels(target_chain, [source], [0, 2]) == 3 + 2 + 2
    assert merge_levels([source, *target_chain], [source], [0]) == 3 + 2
    assert merge_levels(target_chain, [source], []) == 4


# --- merge field folding -------------------------------------------------------------------

def _account(**values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"domain": "", "industry": "", "website": "", "phone": "", "description": "",
                            "territory": None, "employee_count": 0, "annual_revenue": None, "currency": "",
                            "address": {}, "tags": [], "custom_fields": {}}
    return {**base, **values}


def test_fold_fills_only_what_the_target_lacks() -> None:
    target = _account(domain="acme.com", tags=["Customer"], custom_fields={"a": 1})
    sources = [
        _account(domain="other.com", industry="", tags=["customer", "vip"], custom_fields={"a": 2, "b": 3}),
        _account(industry="Software", annual_revenue=Decimal("10.00"), currency="EUR", territory="north",
                 address={"city": "Oslo"}, employee_count=12),
    ]
    assert fold_sources(target, sources) == {
        "industry": "Software", "territory": "north", "employee_count": 12, "annual_revenue": Decimal("10.00"),
        "currency": "EUR", "address": {"city": "Oslo"}, "tags": ["Customer", "vip"], "custom_fields": {"a": 1, "b": 3},
    }
    assert fold_sources(_account(industry="X"), [_account()]) == {}


# --- validation ----------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    ("acme.com", "acme.com"), ("https://www.Acme.COM/about?x=1", "acme.com"), ("shop.acme.co.uk.", "shop.acme.co.uk"),
    ("münchen.de", "xn--mnchen-3ya.de"), ("", ""),
    ("localhost", None), ("not a domain", None), ("10.0.0.1", None), ("-bad-.com", None), ("a..com", None),
])
def test_domains_are_normalized_or_refused(raw: str, expected: str | None) -> None:
    assert rules.normalize_domain(raw) == expected


@pytest.mark.parametrize(("raw", "ok"), [("0", True), ("1250000.5", True), ("1e3", True), ("-1", False),
                                         ("1.234", False), ("NaN", False), ("abc", False), ("1" * 17, False)])
def test_revenue_is_a_non_negative_amount_with_cents(raw: str, ok: bool) -> None:
    if ok:
        assert rules.parse_revenue(raw) == Decimal(raw).quantize(Decimal("0.01"))
    else:
        with pytest.raises(ValueError):
            rules.parse_revenue(raw)


def test_check_names_every_problem_with_its_prefix() -> None:
    _, problems = check({"name": "", "domain": "x", "currency": "eu", "territory": "Not Valid",
                         "tags": ["t" * 51], "employee_count": -5}, "account.")
    assert {(p.field, p.code) for p in problems} == {
        ("account.name", "REQUIRED"), ("account.domain", "INVALID"), ("account.currency", "INVALID"),
        ("account.territory", "INVALID"), ("account.tags", "TOO_LONG"), ("account.employeeCount", "OUT_OF_RANGE"),
    }


def test_partial_checks_do_not_require_a_name_and_empty_ids_clear() -> None:
    clean, problems = check({"parent_id": "", "territory": " NORTH "}, partial=True)
    assert problems == [] and clean == {"parent_id": None, "territory": "north"}
    clean, problems = check({"parent_id": ""}, partial=True)
    assert clean == {"parent_id": None}
    _, problems = check({"annual_revenue": "5", "currency": ""})
    assert {(p.field, p.code) for p in problems} == {("name", "REQUIRED"), ("currency", "REQUIRED")}


def test_check_territory() -> None:
    clean, problems = rules.check_territory({"key": " EMEA_North-2 ", "name": " EMEA  North "}, creating=True)
    assert problems == [] and clean == {"key": "emea_north-2", "name": "EMEA North", "description": ""}
    _, problems = rules.check_territory({"key": "-x", "name": ""}, creating=True)
    assert {(p.field, p.code) for p in problems} == {("key", "INVALID"), ("name", "REQUIRED")}
    clean, problems = rules.check_territory({"key": "ignored", "name": "N"}, creating=False)
    assert problems == [] and "key" not in clean


def test_the_hierarchy_answer_nests_children_and_drops_what_the_size_limit_cut_off() -> None:
    import datetime as dt

    from services.accounts.domain import Hierarchy
    from services.accounts.servicer import hierarchy_to_proto

    now = dt.datetime.now(dt.UTC)
    root, a, b, a1, orphan, missing = ids(6)

    def row(key: uuid.UUID, name: str, parent: uuid.UUID | None, depth: int) -> dict[str, Any]:
        return {**_account(), "id": key, "name": name, "parent_id": parent, "owner_id": None, "created_by": None,
                "created_at": now, "updated_at": now, "depth": depth}

    rows = [row(root, "Root", None, 0), row(a, "A", root, 1), row(b, "B", root, 1), row(a1, "A1", a, 2),
            row(orphan, "Under a cut-off node", missing, 3)]
    answer = hierarchy_to_proto(Hierarchy(account_id=a1, root_id=root, rows=rows, truncated=True))  # type: ignore[arg-type]
    assert (answer.root_id, answer.account_id, answer.node_count, answer.depth, answer.truncated) == (
        str(root), str(a1), 4, 3, True)
    assert [n.account.name for n in answer.root.children] == ["A", "B"]
    assert [n.account.name for n in answer.root.children[0].children] == ["A1"]
    assert answer.root.children[0].children[0].depth == 2
