"""Duplicate detection and merging (services.contacts.dedupe)."""

from __future__ import annotations

import copy
import random
from datetime import datetime, timedelta

import pytest

from services.contacts import dedupe
from services.contacts.dedupe import (
    MAX_BLOCK,
    WINDOW,
    DedupeRecord,
    DedupeStats,
    DuplicateGroup,
    find_duplicate_groups,
    merge_fields,
)

T0 = datetime(2024, 1, 1, 12, 0)


def rec(rid: str, age: int = 0, first: str = "", last: str = "", email: str = "", phone: str = "") -> DedupeRecord:
    """A record created `age` minutes after T0."""
    return DedupeRecord(id=rid, created_at=T0 + timedelta(minutes=age), first_name=first, last_name=last,
                        email=email, phone=phone)


def ids(groups: list[DuplicateGroup]) -> list[tuple[str, ...]]:
    return [g.ids for g in groups]


@pytest.fixture(params=["default", "difflib"])
def ratio_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run name tests with the installed matcher (rapidfuzz if present) and with difflib."""
    if request.param == "difflib":
        monkeypatch.setattr(dedupe, "_at_least", dedupe._difflib_at_least)
    return str(request.param)


# --- normalization ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        (" Ann.Lee@Example.COM ", "ann.lee@example.com"),
        ("ann+news@example.com", "ann@example.com"),
        ("a.n.n+x@gmail.com", "ann@gmail.com"),
        ("Ann.Lee@GoogleMail.com", "annlee@gmail.com"),
        ("Ann Lee <ann@example.com>", "ann@example.com"),
        ("mailto:ann@example.com", "ann@example.com"),
        ("+only@example.com", "+only@example.com"),
        ("not-an-email", ""),
        ("@example.com", ""),
        ("", ""),
    ],
)
def test_normalize_email(raw: str, normalized: str) -> None:
    assert dedupe.normalize_email(raw) == normalized


@pytest.mark.parametrize(
    ("raw", "keys"),
    [
        ("+49 151 1234567", ("1511234567",)),
        ("0049 (0)151 1234567", ("1511234567",)),
        ("0151 / 123 45 67", ("1511234567",)),
        ("+491511234567", ("1511234567",)),
        ("4915112345678", ("4915112345678", "15112345678")),
        ("+1 (415) 555-2671 ext. 12", ("4155552671",)),
        ("415.555.2671 x3", ("4155552671",)),
        ("1-415-555-2671", ("14155552671", "4155552671")),
        ("+44 (0)20 7946 0958", ("2079460958",)),
        ("020 7946 0958", ("2079460958",)),
        ("+33 6 12 34 56 78", ("612345678",)),
        ("06 12 34 56 78", ("612345678",)),
        ("+39 06 1234 5678", ("612345678",)),
        ("+352 621 123 456", ("621123456",)),
        ("12345", ()),
        ("+1 555 12", ()),
        ("", ()),
        ("n/a", ()),
    ],
)
def test_phone_keys(raw: str, keys: tuple[str, ...]) -> None:
    assert dedupe.phone_keys(raw) == keys


def test_normalize_name() -> None:
    assert dedupe.normalize_name("  Jürgen-Ömer  ") == "jurgen omer"
    assert dedupe.normalize_name("STRAßE") == "strasse"
    assert dedupe.normalize_name("O'Brien") == "o brien"
    assert dedupe.normalize_name("Łukasz Øster") == "lukasz oster"
    assert dedupe.normalize_name("...") == ""


# --- signals --------------------------------------------------------------------------------


def test_email_duplicates() -> None:
    records = [
        rec("a", 0, email="ann.lee+crm@gmail.com"),
        rec("b", 1, email="AnnLee@googlemail.com"),
        rec("c", 2, email="ann.lee@example.com"),
        rec("d", 3, email="ann.lee+x@example.com"),
        rec("e", 4, email="annlee@example.com"),  # dots matter outside gmail
        rec("f", 5),
        rec("g", 6, email="garbage"),
        rec("h", 7, email="garbage"),
    ]
    groups = find_duplicate_groups(records, {"email"})
    assert groups == [
        DuplicateGroup(primary_id="a", ids=("a", "b"), reasons=("email",)),
        DuplicateGroup(primary_id="c", ids=("c", "d"), reasons=("email",)),
    ]


def test_phone_duplicates() -> None:
    records = [
        rec("a", 0, phone="+49 151 1234567"),
        rec("b", 1, phone="0049 151 1234567"),
        rec("c", 2, phone="0151-1234567"),
        rec("d", 3, phone="+1 415 555 2671"),
        rec("e", 4, phone="(415) 555-2671 ext 9"),
        rec("f", 5, phone="4155552672"),
        rec("g", 6, phone="112"),
        rec("h", 7, phone="112"),
        rec("i", 8, phone="4915112345678"),  # a spreadsheet dropped the +
        rec("j", 9, phone="+49 151 12345678"),
    ]
    groups = find_duplicate_groups(records, {"phone"})
    assert ids(groups) == [("a", "b", "c"), ("d", "e"), ("i", "j")]
    assert all(g.reasons == ("phone",) for g in groups)


def test_name_duplicates(ratio_backend: str) -> None:
    records = [
        rec("a", 0, "John", "Smith"),
        rec("b", 1, "Jon", "Smith"),
        rec("c", 2, "JOHN", "smith "),
        rec("d", 3, "Mary", "Jones"),
        rec("e", 4, "Mark", "Jones"),  # one letter swapped in a short first name: someone else
        rec("f", 5, "Catherine", "Zeta-Jones"),
        rec("g", 6, "Katherine", "Zeta Jones"),  # different initial, same sound class
        rec("h", 7, "José", "Müller"),
        rec("i", 8, "Jose", "Mueller"),
        rec("j", 9, "", "Mueller"),  # a part missing: never matched by name
        rec("k", 10, "Jose", ""),
        rec("l", 11, "Jose", "Miller"),
        rec("m", 12, "Philip", "Andersen"),
        rec("n", 13, "Filip", "Andersen"),  # same block, but 0.897: under the threshold
        rec("o", 14, "Alexandra", "Smith"),
        rec("p", 15, "Alexander", "Smith"),  # one letter in a long name: 0.93
        rec("q", 16, "Alex", "Smith"),  # 0.79
    ]
    groups = find_duplicate_groups(records, {"name"})
    assert ids(groups) == [("a", "b", "c"), ("f", "g"), ("h", "i", "l"), ("o", "p")]
    assert all(g.reasons == ("name",) for g in groups)


def test_names_match() -> None:
    assert dedupe.names_match("Jon", "Smith", "John", "Smith")
    assert dedupe.names_match("Ann", "Lee", "ANN", "LEE ")
    assert not dedupe.names_match("Mary", "Smith", "Mark", "Smith")
    assert not dedupe.names_match("John", "", "John", "")
    assert not dedupe.names_match("John", "Smith", "Smith", "John")


def test_transitive_grouping_across_signals() -> None:
    records = [
        rec("a", 0, "Ann", "Lee", email="ann@x.io"),
        rec("b", 1, "Annie", "Leigh", email="ANN@x.io", phone="+49 30 1234567"),
        rec("c", 2, "A.", "L.", phone="030 1234567"),
        rec("d", 3, "Dan", "Brown", email="dan@x.io"),
        rec("e", 4, "Dan", "Brown", email="other@x.io"),
    ]
    groups = find_duplicate_groups(records, set())
    assert groups == [
        DuplicateGroup(primary_id="a", ids=("a", "b", "c"), reasons=("email", "phone")),
        DuplicateGroup(primary_id="d", ids=("d", "e"), reasons=("name",)),
    ]
    # Without phone the chain breaks: c stays alone.
    assert ids(find_duplicate_groups(records, {"email", "name"})) == [("a", "b"), ("d", "e")]


def test_primary_is_the_oldest_then_lowest_id() -> None:
    records = [
        rec("z", 5, email="x@x.io"),
        rec("m", 1, email="x@x.io"),
        rec("b", 1, email="x@x.io"),
        rec("a", 9, email="x@x.io"),
    ]
    (group,) = find_duplicate_groups(records, {"email"})
    assert group.primary_id == "b"
    assert group.ids == ("b", "m", "z", "a")


def test_groups_ordered_by_primary_and_independent_of_input_order() -> None:
    records = [
        rec("p1", 50, email="p@x.io"), rec("p2", 51, email="p@x.io"),
        rec("q1", 10, phone="+1 212 555 0100"), rec("q2", 60, phone="212-555-0100"),
        rec("r1", 30, "Grace", "Hopper"), rec("r2", 31, "Grace", "Hoper"),
        rec("s1", 10, email="s@x.io"), rec("s2", 11, email="s@x.io"),
        rec("lone", 0, "Alan", "Turing", "alan@x.io", "+44 20 1111 2222"),
    ]
    expected = find_duplicate_groups(records, [])
    assert [g.primary_id for g in expected] == ["q1", "s1", "r1", "p1"]
    shuffler = random.Random(42)
    for _ in range(25):
        shuffled = records[:]
        shuffler.shuffle(shuffled)
        assert find_duplicate_groups(shuffled, []) == expected


def test_match_on_validation() -> None:
    records = [rec("a", 0, "Ann", "Lee", "a@x.io"), rec("b", 1, "Ann", "Lee", "b@x.io")]
    assert find_duplicate_groups(records, {"email"}) == []
    assert ids(find_duplicate_groups(records, {"name"})) == [("a", "b")]
    assert ids(find_duplicate_groups(records, ["Name", " EMAIL "])) == [("a", "b")]
    with pytest.raises(ValueError, match="unknown match signals"):
        find_duplicate_groups(records, {"email", "fax"})
    assert find_duplicate_groups([], set()) == []


def test_match_reasons_for_a_single_pair() -> None:
    a = rec("a", 0, "Jon", "Smith", "jon@x.io", "+49 30 1234567")
    b = rec("b", 1, "John", "Smith", "JON@x.io", "030-1234567")
    assert dedupe.match_reasons(a, b) == ("email", "name", "phone")
    assert dedupe.match_reasons(a, b, ["phone"]) == ("phone",)
    assert dedupe.match_reasons(a, rec("c")) == ()


# --- scale ----------------------------------------------------------------------------------

_SYLLABLES = [c + v for c in "bdgklmnprstvz" for v in "aeiou"]


def _distinct_records(count: int, seed: int) -> list[DedupeRecord]:
    rng = random.Random(seed)
    names: set[tuple[str, str]] = set()
    while len(names) < count:
        first = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3)))
        last = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
        names.add((first, last))
    return [
        rec(f"id{i:05d}", i, first, last, f"user{i}@example.com", f"+1 415 {i:07d}")
        for i, (first, last) in enumerate(sorted(names))
    ]


def test_twenty_thousand_records_compare_far_fewer_than_all_pairs() -> None:
    records = _distinct_records(20_000, seed=7)
    stats = DedupeStats()
    groups = find_duplicate_groups(records, set(), stats=stats)
    n = len(records)
    all_pairs = n * (n - 1) // 2
    assert stats.records == n
    assert stats.distinct_names == n
    # Each name sits in 2 blocks and meets fewer than MAX_BLOCK others in each.
    assert stats.name_comparisons <= n * MAX_BLOCK
    assert stats.name_comparisons < all_pairs // 100
    # Distinct emails and phones: only (rare) near-identical random names may group.
    assert all(g.reasons == ("name",) for g in groups)
    assert sum(len(g.ids) for g in groups) < n // 100


def test_one_huge_block_falls_back_to_a_window() -> None:
    # Same last name and first-name initial: all 5,000 distinct names share one block.
    rng = random.Random(3)
    firsts: set[str] = set()
    while len(firsts) < 5_000:
        firsts.add("j" + "".join(rng.choice(_SYLLABLES) for _ in range(3)))
    records = [rec(str(i), i, first, "Smith") for i, first in enumerate(sorted(firsts))]
    stats = DedupeStats()
    find_duplicate_groups(records, {"name"}, stats=stats)
    assert stats.largest_block > MAX_BLOCK
    assert stats.name_comparisons <= 2 * len(records) * WINDOW


def test_identical_names_cost_no_comparisons() -> None:
    records = [rec(str(i), i, "Maria", "Garcia") for i in range(10_000)]
    stats = DedupeStats()
    (group,) = find_duplicate_groups(records, {"name"}, stats=stats)
    assert len(group.ids) == 10_000
    assert group.ids[:3] == ("0", "1", "2")
    assert stats.name_comparisons == 0


# --- merging --------------------------------------------------------------------------------


def test_merge_fields_primary_wins_and_gaps_are_filled_in_order() -> None:
    primary: dict[str, object] = {
        "first_name": "Ann", "last_name": "", "email": "ann@x.io", "phone": None, "title": "  ",
        "company": "Acme", "lifecycle_stage": "lead", "tags": ["VIP", "b2b"],
        "address": {"street": "Main 1", "city": "", "region": None},
        "custom_fields": {"size": "M", "color": ""},
        "score": 0, "active": False,
    }
    older = {
        "first_name": "Annie", "last_name": "Lee", "phone": "+4930111", "title": "CTO", "company": "Other",
        "tags": ["vip", "Partner"], "address": {"city": "Berlin", "country": "DE"},
        "custom_fields": {"color": "blue", "size": "L", "shoe": "38"}, "score": 5, "active": True,
    }
    newer = {
        "last_name": "Leigh", "phone": "+4930222", "tags": ["partner", "new"], "address": {"city": "Paris", "region": "IDF"},
        "custom_fields": {"color": "red", "pet": "cat"}, "source": "web",
    }
    before = copy.deepcopy((primary, older, newer))
    merged = merge_fields(primary, [older, newer])
    assert merged == {
        "first_name": "Ann", "last_name": "Lee", "email": "ann@x.io", "phone": "+4930111", "title": "CTO",
        "company": "Acme", "lifecycle_stage": "lead", "tags": ["VIP", "b2b", "Partner", "new"],
        "address": {"street": "Main 1", "city": "Berlin", "region": "IDF", "country": "DE"},
        "custom_fields": {"size": "M", "color": "blue", "shoe": "38", "pet": "cat"},
        "score": 0, "active": False, "source": "web",
    }
    assert list(merged)[:3] == ["first_name", "last_name", "email"]
    assert (primary, older, newer) == before
    assert merged["tags"] is not primary["tags"]


def test_merge_fields_edge_cases() -> None:
    assert merge_fields({"a": "x"}, []) == {"a": "x"}
    assert merge_fields({"tags": None}, [{"tags": ["a"]}, {"tags": ("A", "b")}]) == {"tags": ["a", "b"]}
    assert merge_fields({"custom_fields": None}, [{"custom_fields": {"k": "v"}}]) == {"custom_fields": {"k": "v"}}
    assert merge_fields({"email": ""}, [{"email": None}]) == {"email": ""}
    assert merge_fields({"email": None}, [{"email": ""}]) == {"email": None}
