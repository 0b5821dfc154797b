"""A tenant's search configuration: searched fields and weights per type, synonyms, fuzziness.

Stored as JSON (`search.configs`); defaults fill what a tenant never set. Pure code.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.kernel.errors import FieldViolation
from services.search.query import fold
from services.search.records import TYPES

WEIGHTS = ("A", "B", "C", "D")
MAX_FIELDS = 30
MAX_SYNONYM_GROUPS = 200
MAX_GROUP_TERMS = 10
MAX_TERM_LENGTH = 50
DEFAULT_THRESHOLD = 0.3
FIELD_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}(\.[A-Za-z][A-Za-z0-9]{0,63}){0,2}$")
TERM_RE = re.compile(r"^\w[\w-]*$")

# A: the name or title, B: how one reaches it (email, company, domain), C: other text, D: the rest.
DEFAULT_FIELDS: dict[str, dict[str, list[str]]] = {
    "contact": {"A": ["firstName", "lastName"], "B": ["email", "company"],
                "C": ["title", "phone", "tags", "lifecycleStage", "source"], "D": ["address", "customFields"]},
    "account": {"A": ["name"], "B": ["domain", "website"],
                "C": ["industry", "territory", "description", "phone", "tags"], "D": ["address", "customFields"]},
    "lead": {"A": ["firstName", "lastName"], "B": ["email", "company", "website"],
             "C": ["title", "phone", "source", "status", "description", "tags"], "D": ["customFields"]},
    "deal": {"A": ["name"], "B": [], "C": ["description", "status", "currency", "lostReason", "tags"],
             "D": ["customFields"]},
    "activity": {"A": ["subject"], "B": [], "C": ["body", "type", "status", "location"], "D": []},
}


@dataclass(frozen=True)
class Config:
    """The effective configuration of one tenant."""

    fields: dict[str, dict[str, list[str]]]  # type -> weight -> fields
    synonyms: list[list[str]]
    fuzzy: bool = True
    fuzzy_threshold: float = DEFAULT_THRESHOLD

    def synonym_map(self) -> dict[str, list[str]]:
        """Each word -> the other words of its groups."""
        out: dict[str, list[str]] = {}
        for group in self.synonyms:
            for term in group:
                out.setdefault(term, []).extend(t for t in group if t != term and t not in out[term])
        return out

    def weighted(self, record_type: str) -> list[tuple[str, str]]:
        """(field, weight) of a type, heaviest first."""
        return [(f, w) for w in WEIGHTS for f in self.fields[record_type][w]]

    def to_json(self) -> dict[str, Any]:
        return {"types": {t: {w: list(fs) for w, fs in by.items()} for t, by in self.fields.items()},
                "synonyms": [list(g) for g in self.synonyms], "fuzzy": self.fuzzy,
                "fuzzyThreshold": self.fuzzy_threshold}


def default() -> Config:
    return Config(fields=copy.deepcopy(DEFAULT_FIELDS), synonyms=[])


def from_json(stored: Mapping[str, Any] | None) -> Config:
    """The stored configuration over the defaults (types it never set keep theirs)."""
    base = default()
    if not stored:
        return base
    fields = base.fields
    for t, by in (stored.get("types") or {}).items():
        if t in fields:
            fields[t] = {w: list(by.get(w, [])) for w in WEIGHTS}
    return Config(fields=fields, synonyms=[list(g) for g in stored.get("synonyms", [])],
                  fuzzy=bool(stored.get("fuzzy", True)),
                  fuzzy_threshold=float(stored.get("fuzzyThreshold") or DEFAULT_THRESHOLD))


def merge(current: Config, types: list[tuple[str, list[tuple[str, str]]]], synonyms: list[list[str]],
          fuzzy: bool | None, threshold: float) -> tuple[Config, list[FieldViolation]]:
    """An update over `current`: listed types replace theirs, synonyms are replaced whole.

    Returns the new configuration and every problem found (nothing is applied when any).
    """
    problems: list[FieldViolation] = []
    fields = copy.deepcopy(current.fields)
    seen_types: set[str] = set()
    for i, (name, pairs) in enumerate(types):
        where = f"types[{i}]"
        if name not in TYPES:
            problems.append(FieldViolation(f"{where}.type", f"unknown type; use one of {', '.join(TYPES)}"))
            continue
        if name in seen_types:
            problems.append(FieldViolation(f"{where}.type", "type listed twice", "DUPLICATE"))
            continue
        seen_types.add(name)
        if not pairs or len(pairs) > MAX_FIELDS:
            problems.append(FieldViolation(f"{where}.fields", f"give 1 to {MAX_FIELDS} fields", "OUT_OF_RANGE"))
            continue
        by: dict[str, list[str]] = {w: [] for w in WEIGHTS}
        names: set[str] = set()
        for j, (field, weight) in enumerate(pairs):
            at = f"{where}.fields[{j}]"
            if not FIELD_RE.match(field):
                problems.append(FieldViolation(f"{at}.field", "a field name as the API spells it (e.g. email, address.city)"))
            elif field in names:
                problems.append(FieldViolation(f"{at}.field", "field listed twice", "DUPLICATE"))
            weight = weight.upper()
            if weight not in WEIGHTS:
                problems.append(FieldViolation(f"{at}.weight", "must be A, B, C or D"))
            elif FIELD_RE.match(field) and field not in names:
                by[weight].append(field)
            names.add(field)
        fields[name] = by
    groups, group_problems = clean_synonyms(synonyms)
    problems += group_problems
    if threshold and not 0.1 <= threshold <= 0.9:
        problems.append(FieldViolation("fuzzyThreshold", "must be between 0.1 and 0.9", "OUT_OF_RANGE"))
    new = Config(fields=fields, synonyms=groups, fuzzy=current.fuzzy if fuzzy is None else fuzzy,
                 fuzzy_threshold=round(threshold, 3) if threshold else DEFAULT_THRESHOLD)
    return new, problems


def clean_synonyms(groups: list[list[str]]) -> tuple[list[list[str]], list[FieldViolation]]:
    """Folded, de-duplicated synonym groups, and what is wrong with them."""
    problems: list[FieldViolation] = []
    if len(groups) > MAX_SYNONYM_GROUPS:
        return [], [FieldViolation("synonyms", f"at most {MAX_SYNONYM_GROUPS} groups", "TOO_MANY")]
    out: list[list[str]] = []
    for i, group in enumerate(groups):
        terms: list[str] = []
        for j, raw in enumerate(group):
            term = fold(raw.strip())
            if not term or len(term) > MAX_TERM_LENGTH or not TERM_RE.match(term):
                problems.append(FieldViolation(f"synonyms[{i}].terms[{j}]",
                                               f"one word of letters, digits or '-', up to {MAX_TERM_LENGTH} characters"))
            elif term not in terms:
                terms.append(term)
        if not 2 <= len(terms) <= MAX_GROUP_TERMS:
            problems.append(FieldViolation(f"synonyms[{i}].terms", f"a group holds 2 to {MAX_GROUP_TERMS} different words",
                                           "OUT_OF_RANGE"))
        out.append(terms)
    return out, problems


def changed_types(old: Config, new: Config) -> list[str]:
    """Types whose searched fields or weights differ: their documents must be re-weighed."""
    return [t for t in TYPES if old.fields[t] != new.fields[t]]
