"""Finding duplicate contacts by email, phone and fuzzy name, and merging their fields.

Plain data in and out (no database), so the rules can be tested on their own and reused by
DeduplicateContacts and ValidateContact alike.

How it stays near-linear: email and phone are matched by hashing a normalized key (one dict
pass). Names are compared fuzzily, but only inside blocks: identical normalized names are
joined without comparing, and each distinct name goes into two blocks, keyed by
  L: phonetic code of the last name + sound class of the first name's initial, and
  F: phonetic code of the first name + sound class of the last name's initial,
so a typo anywhere in one of the two names still shares a block. Pairs are compared only
within a block; a block of more than MAX_BLOCK distinct names (very common names) is sorted
and each name compared with its next WINDOW neighbours only, which caps the work at about
2 * names * WINDOW comparisons whatever the data.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

__all__ = [
    "MAX_BLOCK",
    "NAME_THRESHOLD",
    "PART_THRESHOLD",
    "SIGNALS",
    "WINDOW",
    "DedupeRecord",
    "DedupeStats",
    "DuplicateGroup",
    "find_duplicate_groups",
    "match_reasons",
    "merge_fields",
    "names_match",
    "normalize_email",
    "normalize_name",
    "phone_keys",
]

SIGNALS: Final = ("email", "phone", "name")
NAME_THRESHOLD: Final = 0.9
"""Least similarity of "first last" (0..1) for two names to be one person; 0.9 allows about
one typo in a ten-letter name ("jon smith" ~ "john smith") but not two."""
PART_THRESHOLD: Final = 0.8
"""Least similarity of the first names and of the last names each: a letter added or dropped
passes ("jon"/"john", "wolf"/"wolff"), a letter swapped in a short name does not ("mary"/"mark",
"hall"/"hill"), which the full-name ratio alone would accept."""
MAX_BLOCK: Final = 200
"""Blocks with more distinct names than this are compared with a sliding window instead."""
WINDOW: Final = 30
"""Neighbours each name is compared with inside an oversized block."""
MIN_PHONE_DIGITS: Final = 7


@dataclass(frozen=True, slots=True)
class DedupeRecord:
    """The fields duplicate detection looks at; `created_at` decides which contact survives."""

    id: str
    created_at: datetime
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str = ""


@dataclass(frozen=True, slots=True)
class DuplicateGroup:
    """Contacts found to be one person: `ids` starts with `primary_id` (the oldest), then by
    age; `reasons` is the sorted set of signals that tied the group together."""

    primary_id: str
    ids: tuple[str, ...]
    reasons: tuple[str, ...]


@dataclass(slots=True)
class DedupeStats:
    """Work counters, so tests and logs can check the blocking keeps name matching near-linear."""

    records: int = 0
    distinct_names: int = 0
    blocks: int = 0
    largest_block: int = 0
    name_comparisons: int = 0


# --- normalization ---------------------------------------------------------------------------

_GMAIL_DOMAINS: Final = frozenset({"gmail.com", "googlemail.com"})
_PHONE_EXTENSION_RE: Final = re.compile(r"(?i)(?:ext|x|#|;|,)")
_NON_DIGIT_RE: Final = re.compile(r"\D")
_NAME_JUNK_RE: Final = re.compile(r"[^\w]+|_")
_SPECIAL_LETTERS: Final = str.maketrans(
    {"ß": "ss", "ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "\u0131": "i"}
)
# E.164 country codes are prefix-free: these lead to 1- and 2-digit codes, all else is 3 digits.
_CC_ONE: Final = frozenset({"1", "7"})
_CC_TWO: Final = frozenset({
    "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47",
    "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65",
    "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
})


def normalize_email(value: str) -> str:
    """Lower-cased address with sub-addressing removed ("" when it is no address).

    `a.b+news@googlemail.com` -> `ab@gmail.com` (Gmail ignores dots); elsewhere only the
    `+tag` is dropped, since dots are significant for most providers.
    """
    text = (value or "").strip().lower()
    if "<" in text and text.endswith(">"):
        text = text[text.rindex("<") + 1 : -1].strip()
    text = text.removeprefix("mailto:")
    local, at, domain = text.rpartition("@")
    domain = domain.rstrip(".")
    if not at or not local or not domain:
        return ""
    if domain in _GMAIL_DOMAINS:
        domain = "gmail.com"
        stripped = local.split("+", 1)[0].replace(".", "")
    else:
        stripped = local.split("+", 1)[0]
    return f"{stripped or local}@{domain}"


def _strip_country_code(digits: str) -> str:
    if digits[:1] in _CC_ONE:
        return digits[1:]
    if digits[:2] in _CC_TWO:
        return digits[2:]
    return digits[3:]


def phone_keys(value: str) -> tuple[str, ...]:
    """Match keys of a phone number: its national significant digits (1 key, sometimes 2).

    The country code (after `+` or `00`), trunk zeros and any extension are removed, so
    "+49 151 1234567", "0049 (0)151 1234567" and "0151 1234567" share "1511234567". A long
    number without prefix ("4915112345678", typical of a spreadsheet that dropped the `+`) is
    ambiguous: it yields itself and the number without its country code. Fewer than 7 digits
    give no key. Numbers of different countries with equal national digits also match: rare
    within one tenant, and accepted.
    """
    text = (value or "").strip()
    if not text:
        return ()
    text = _PHONE_EXTENSION_RE.split(text, 1)[0]
    international = text.lstrip().startswith("+")
    digits = _NON_DIGIT_RE.sub("", text)
    if not international and digits.startswith("00"):
        international, digits = True, digits[2:]
    if international:
        keys = [_strip_country_code(digits).lstrip("0")]
    elif digits.startswith("0"):
        keys = [digits.lstrip("0")]
    elif len(digits) >= 11:
        keys = [digits, _strip_country_code(digits).lstrip("0")]
    else:
        keys = [digits]
    return tuple(dict.fromkeys(k for k in keys if len(k) >= MIN_PHONE_DIGITS))


def normalize_name(value: str) -> str:
    """Case-folded, accent-free words: " Jürgen-Ömer " -> "jurgen omer"."""
    text = unicodedata.normalize("NFKD", (value or "").casefold().translate(_SPECIAL_LETTERS))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(_NAME_JUNK_RE.sub(" ", text).split())


_SOUND_CLASS: Final = {
    ch: code
    for letters, code in (("bfpv", "1"), ("cgjkqsxz", "2"), ("dt", "3"), ("l", "4"), ("mn", "5"), ("r", "6"))
    for ch in letters
}
_VOWELS: Final = frozenset("aeiouy")


def _phonetic(word: str) -> str:
    """Soundex-like 4-character code whose first character is a sound class too, so that
    Catherine/Katherine and Philip/Filip share it. Letters outside a-z stand for themselves."""
    letters = [ch for ch in word if ch.isalnum()]
    if not letters:
        return ""
    codes: list[str] = []
    previous = ""
    for ch in letters:
        if ch in "hw" and codes:
            continue  # as in Soundex, h and w do not separate equal sounds
        code = "0" if ch in _VOWELS or ch in "hw" else _SOUND_CLASS.get(ch, ch)
        if not codes:
            codes.append(code)
        elif code == "0":
            code = ""  # vowels separate, but are not written
        elif code != previous:
            codes.append(code)
        previous = code
        if len(codes) == 4:
            break
    return "".join(codes).ljust(4, "0")


def _difflib_at_least(a: str, b: str, threshold: float) -> bool:
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    # The cheap upper bounds reject most pairs before the real ratio is computed.
    return (
        matcher.real_quick_ratio() >= threshold
        and matcher.quick_ratio() >= threshold
        and matcher.ratio() >= threshold
    )


def _load_matcher() -> Callable[[str, str, float], bool]:
    """rapidfuzz's C implementation when installed (same 2*matches/total scale, much faster),
    else the standard library's difflib."""
    try:
        from rapidfuzz.fuzz import ratio  # type: ignore[import-not-found, unused-ignore]
    except ImportError:  # pragma: no cover - depends on the environment
        return _difflib_at_least

    def rapid_at_least(a: str, b: str, threshold: float) -> bool:
        cutoff = threshold * 100.0
        return bool(ratio(a, b, score_cutoff=cutoff) >= cutoff)

    return rapid_at_least


_at_least: Callable[[str, str, float], bool] = _load_matcher()


def names_match(first_a: str, last_a: str, first_b: str, last_b: str) -> bool:
    """Whether two names are one person's: both parts present on both sides, "first last"
    similar by NAME_THRESHOLD and each part by PART_THRESHOLD (after normalize_name)."""
    a = (normalize_name(first_a), normalize_name(last_a))
    b = (normalize_name(first_b), normalize_name(last_b))
    if not all((*a, *b)):
        return False
    return a == b or _parts_match(a, b)


def _parts_match(a: tuple[str, str], b: tuple[str, str]) -> bool:
    return (
        _close(a[0], b[0], PART_THRESHOLD)
        and _close(a[1], b[1], PART_THRESHOLD)
        and _close(f"{a[0]} {a[1]}", f"{b[0]} {b[1]}", NAME_THRESHOLD)
    )


def _close(a: str, b: str, threshold: float) -> bool:
    if a == b:
        return True
    shorter, longer = sorted((len(a), len(b)))
    # The ratio is at most 2*shorter/(shorter+longer): skip pairs that cannot reach it.
    if 2 * shorter < threshold * (shorter + longer):
        return False
    return _at_least(a, b, threshold)


def _signals(match_on: Iterable[str]) -> frozenset[str]:
    wanted = frozenset(s.strip().lower() for s in match_on)
    unknown = wanted - set(SIGNALS)
    if unknown:
        raise ValueError(f"unknown match signals {sorted(unknown)}; use email, phone or name")
    return wanted or frozenset(SIGNALS)


def match_reasons(a: DedupeRecord, b: DedupeRecord, match_on: Iterable[str] = ()) -> tuple[str, ...]:
    """The signals on which two contacts look like one person (sorted; empty when none).

    For checking one contact against a few candidates (ValidateContact); use
    find_duplicate_groups for a whole tenant.
    """
    signals = _signals(match_on)
    reasons = []
    if "email" in signals:
        email = normalize_email(a.email)
        if email and email == normalize_email(b.email):
            reasons.append("email")
    if "name" in signals and names_match(a.first_name, a.last_name, b.first_name, b.last_name):
        reasons.append("name")
    if "phone" in signals and set(phone_keys(a.phone)) & set(phone_keys(b.phone)):
        reasons.append("phone")
    return tuple(sorted(reasons))


# --- grouping ----------------------------------------------------------------------------------


class _UnionFind:
    """Disjoint sets over record indexes, with path halving and union by size."""

    def __init__(self, size: int) -> None:
        self.parent = list(range(size))
        self.size = [1] * size

    def find(self, item: int) -> int:
        parent = self.parent
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]


def find_duplicate_groups(
    records: Sequence[DedupeRecord],
    match_on: Iterable[str] = frozenset(),
    *,
    stats: DedupeStats | None = None,
) -> list[DuplicateGroup]:
    """Groups of records that are one person, joined transitively across signals.

    `match_on` is a subset of {"email", "phone", "name"} (empty: all three; anything else is
    a ValueError). A~B by email and B~C by phone give one group {A, B, C}. Groups are ordered
    by their primary's (created_at, id); the result does not depend on the input order.
    """
    signals = _signals(match_on)
    stats = stats if stats is not None else DedupeStats()
    stats.records = len(records)
    sets = _UnionFind(len(records))
    edges: list[tuple[int, str]] = []

    def join(a: int, b: int, reason: str) -> None:
        sets.union(a, b)
        edges.append((a, reason))

    if "email" in signals:
        _join_by_key(((i, normalize_email(r.email)) for i, r in enumerate(records)), "email", join)
    if "phone" in signals:
        _join_by_key(((i, key) for i, r in enumerate(records) for key in phone_keys(r.phone)), "phone", join)
    if "name" in signals:
        _join_by_name(records, join, stats)

    reasons: dict[int, set[str]] = {}
    for index, reason in edges:
        reasons.setdefault(sets.find(index), set()).add(reason)
    members: dict[int, list[int]] = {}
    for index in range(len(records)):
        members.setdefault(sets.find(index), []).append(index)

    groups: list[tuple[tuple[datetime, str], DuplicateGroup]] = []
    for root, indexes in members.items():
        if len(indexes) < 2:
            continue
        ordered = sorted(indexes, key=lambda i: (records[i].created_at, records[i].id))
        ids = tuple(records[i].id for i in ordered)
        primary = records[ordered[0]]
        group = DuplicateGroup(primary_id=primary.id, ids=ids, reasons=tuple(sorted(reasons[root])))
        groups.append(((primary.created_at, primary.id), group))
    groups.sort(key=lambda item: item[0])
    return [group for _, group in groups]


_Join = Callable[[int, int, str], None]


def _join_by_key(keyed: Iterable[tuple[int, str]], reason: str, join: _Join) -> None:
    first_with_key: dict[str, int] = {}
    for index, key in keyed:
        if not key:
            continue
        first = first_with_key.setdefault(key, index)
        if first != index:
            join(first, index, reason)


def _join_by_name(records: Sequence[DedupeRecord], join: _Join, stats: DedupeStats) -> None:
    # 1. Identical normalized names: joined without any comparison.
    holders: dict[str, int] = {}
    parts: dict[str, tuple[str, str]] = {}
    for index, record in enumerate(records):
        first, last = normalize_name(record.first_name), normalize_name(record.last_name)
        if not first or not last:
            continue
        full = f"{first} {last}"
        holder = holders.setdefault(full, index)
        if holder != index:
            join(holder, index, "name")
        else:
            parts[full] = (first, last)
    stats.distinct_names = len(parts)

    # 2. Blocking: each distinct name lands in two blocks (see the module docstring).
    blocks: dict[str, list[str]] = {}
    for full, (first, last) in parts.items():
        first_code, last_code = _phonetic(first), _phonetic(last)
        blocks.setdefault(f"L{last_code}{first_code[:1]}", []).append(full)
        blocks.setdefault(f"F{first_code}{last_code[:1]}", []).append(full)

    # 3. Fuzzy comparison inside blocks.
    compared: set[tuple[str, str]] = set()
    for key in sorted(blocks):
        names = sorted(blocks[key])
        if len(names) < 2:
            continue
        stats.blocks += 1
        stats.largest_block = max(stats.largest_block, len(names))
        reach = len(names) if len(names) <= MAX_BLOCK else WINDOW + 1
        for i, a in enumerate(names):
            for b in names[i + 1 : i + reach]:
                if (a, b) in compared:
                    continue
                compared.add((a, b))
                stats.name_comparisons += 1
                if _parts_match(parts[a], parts[b]):
                    join(holders[a], holders[b], "name")


# --- merging -------------------------------------------------------------------------------------


def _is_empty(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        return len(value) == 0
    return False


def _union_list(values: Iterable[object]) -> list[object]:
    """Items in first-seen order; strings compared ignoring case and surrounding spaces."""
    seen: set[object] = set()
    out: list[object] = []
    for item in values:
        marker = item.strip().casefold() if isinstance(item, str) else repr(item)
        if marker not in seen:
            seen.add(marker)
            out.append(item)
    return out


def merge_fields(primary: Mapping[str, object], others: Sequence[Mapping[str, object]]) -> dict[str, object]:
    """The surviving contact's values when `others` are folded into `primary`.

    The primary's non-empty values win; its empty ones (None, blank text, empty list or
    mapping) are filled from `others` in the order given (pass them oldest first, as in
    DuplicateGroup.ids). Lists (tags) are unioned in order, de-duplicated ignoring case;
    mappings (custom_fields, address) are merged key by key by the same rules. Keys are those
    of the primary, then new ones from the others; inputs are not modified.
    """
    merged: dict[str, object] = {}
    keys = list(dict.fromkeys([*primary.keys(), *(k for other in others for k in other)]))
    for key in keys:
        values = [primary.get(key), *(other.get(key) for other in others)]
        merged[key] = _merge_values(values)
    return merged


def _merge_values(values: Sequence[object]) -> object:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, list | tuple) for v in present):
        return _union_list(item for v in present if isinstance(v, list | tuple) for item in v)
    if present and all(isinstance(v, Mapping) for v in present):
        mappings = [v for v in present if isinstance(v, Mapping)]
        return merge_fields(mappings[0], mappings[1:])
    for value in values:
        if not _is_empty(value):
            return value
    return values[0]
