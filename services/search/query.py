"""What a user typed, as PostgreSQL full-text queries, and where it matched. Pure code.

Syntax: words (`ann smith`: all must match; the last one may be a prefix while typing),
"quoted phrases" (words next to each other), and `-word` (must not match). Case and accents
never matter: both sides are folded (`José` ~ `jose`). Synonyms of the tenant's configuration
widen each word (`bob` -> `bob | robert`).
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.kernel.errors import FieldViolation, InvalidArgument

MAX_QUERY_LENGTH = 200
MAX_WORDS = 16
MIN_PREFIX = 2  # a one-letter prefix would match half the index
WORD_RE = re.compile(r"\w+")
TOKEN_RE = re.compile(r'(-?)"([^"]*)"?|(\S+)')
# Letters unaccent() folds that Unicode decomposition leaves alone.
_SPECIAL = str.maketrans({"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th",
                          "ı": "i", "Æ": "ae", "Œ": "oe", "Ø": "o", "Ł": "l", "Đ": "d", "Ð": "d", "Þ": "th"})
SNIPPET_CONTEXT = 60
MAX_SNIPPET = 200
MAX_HIGHLIGHTS = 5


def fold(text: str) -> str:
    """Lower case without accents, as the index stores words (search.fold in SQL)."""
    if text.isascii():  # most text: nothing to decompose
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.translate(_SPECIAL))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def _fold_mapped(text: str) -> tuple[str, Sequence[int]]:
    """`fold(text)` and, for each folded character, the index of the character it came from."""
    if text.isascii():  # one character for one
        return text.lower(), range(len(text))
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        for c in fold(ch):
            out.append(c)
            where.append(i)
    return "".join(out), where


@dataclass(frozen=True)
class Term:
    word: str
    prefix: bool = False


@dataclass
class Query:
    terms: list[Term] = field(default_factory=list)
    phrases: list[list[str]] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.terms and not self.phrases

    @property
    def words(self) -> list[str]:
        """Every word that must match, in order (terms and phrase words)."""
        return [t.word for t in self.terms] + [w for p in self.phrases for w in p]

    def plain(self) -> str:
        """The positive words as one text, for trigram similarity with titles."""
        return " ".join(self.words)


def _bad(message: str, field_name: str = "query") -> InvalidArgument:
    return InvalidArgument(message, violations=[FieldViolation(field_name, message)])


def parse(text: str, *, all_prefix: bool = False, field_name: str = "query") -> Query:
    """Parse a query; with `all_prefix` every word is a prefix (autocomplete), else only the last
    one of two letters or more (the word being typed)."""
    if len(text) > MAX_QUERY_LENGTH:
        raise _bad(f"at most {MAX_QUERY_LENGTH} characters", field_name)
    q = Query()
    for m in TOKEN_RE.finditer(text):
        negated, phrase, token = m.group(1) == "-", m.group(2), m.group(3)
        if phrase is not None:
            words = WORD_RE.findall(fold(phrase))
            if negated:
                q.excluded.extend(words)
            elif len(words) == 1:
                q.terms.append(Term(words[0]))
            elif words:
                q.phrases.append(words)
            continue
        assert token is not None
        if token.startswith("-") and len(token) > 1:
            q.excluded.extend(WORD_RE.findall(fold(token[1:])))
            continue
        q.terms.extend(Term(w) for w in WORD_RE.findall(fold(token)))
    if len(q.words) + len(q.excluded) > MAX_WORDS:
        raise _bad(f"at most {MAX_WORDS} words", field_name)
    if q.terms:
        if all_prefix:
            q.terms = [Term(t.word, prefix=True) for t in q.terms]
        else:
            last = q.terms[-1]
            typing = not text.rstrip().endswith('"') and len(last.word) >= MIN_PREFIX
            q.terms[-1] = Term(last.word, prefix=typing)
    return q


def _lexeme(word: str, *, prefix: bool = False, weights: str = "") -> str:
    # Words are \w+ only, so quoting cannot be broken out of.
    return f"'{word}'" + (f":*{weights}" if prefix else (f":{weights}" if weights else ""))


def to_tsquery(q: Query, synonyms: Mapping[str, Sequence[str]] | None = None, *, weights: str = "") -> str:
    """The tsquery text of a parsed query (for `to_tsquery('simple', ...)`); synonyms widen words."""
    synonyms = synonyms or {}
    parts: list[str] = []
    for t in q.terms:
        options = [_lexeme(t.word, prefix=t.prefix, weights=weights)]
        options += [_lexeme(s, weights=weights) for s in synonyms.get(t.word, ()) if s != t.word]
        parts.append(options[0] if len(options) == 1 else "(" + " | ".join(options) + ")")
    for phrase in q.phrases:
        parts.append("(" + " <-> ".join(_lexeme(w, weights=weights) for w in phrase) + ")")
    parts += [f"!{_lexeme(w)}" for w in q.excluded]
    return " & ".join(parts)


def _value_text(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, list):
        return ", ".join(_value_text(v) for v in value if _value_text(v))
    if isinstance(value, dict):
        return ", ".join(_value_text(v) for v in value.values() if _value_text(v))
    return str(value)


def field_value(record: Mapping[str, Any], path: str) -> str:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return ""
        value = value.get(part)
    return _value_text(value)


def _spans(folded: str, patterns: Iterable[re.Pattern[str]]) -> list[tuple[int, int]]:
    found = sorted((m.start(), m.end()) for p in patterns for m in p.finditer(folded) if m.end() > m.start())
    merged: list[tuple[int, int]] = []
    for start, end in found:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _patterns(q: Query, synonyms: Mapping[str, Sequence[str]]) -> list[tuple[str, re.Pattern[str]]]:
    """Each pattern with a word any match of it contains (a cheap test before the regex)."""
    out = []
    for t in q.terms:
        tail = r"\w*" if t.prefix else r"(?!\w)"
        out.append((t.word, re.compile(r"(?<!\w)" + re.escape(t.word) + tail)))
        out += [(s, re.compile(r"(?<!\w)" + re.escape(s) + r"(?!\w)")) for s in synonyms.get(t.word, ())]
    for phrase in q.phrases:
        out.append((phrase[0], re.compile(r"(?<!\w)" + r"\W+".join(re.escape(w) for w in phrase) + r"(?!\w)")))
    return out


def highlight(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` HTML-escaped with each (start, end) span in <em>; long texts cut around the first."""
    start, end = 0, len(text)
    if len(text) > MAX_SNIPPET and spans:
        start = max(0, spans[0][0] - SNIPPET_CONTEXT)
        end = min(len(text), start + MAX_SNIPPET)
    out = ["…" if start > 0 else ""]
    at = start
    for s, e in spans:
        if s >= end:
            break
        s, e = max(s, at), min(e, end)
        out.append(html.escape(text[at:s]) + "<em>" + html.escape(text[s:e]) + "</em>")
        at = e
    out.append(html.escape(text[at:end]) + ("…" if end < len(text) else ""))
    return "".join(out)


class Highlighter:
    """Where a query's words occur in records: its patterns compiled once for a whole answer."""

    def __init__(self, q: Query, synonyms: Mapping[str, Sequence[str]] | None = None) -> None:
        self.patterns = [] if q.empty else _patterns(q, synonyms or {})

    def __call__(self, record: Mapping[str, Any], fields: Sequence[str]) -> list[tuple[str, str]]:
        """(field, snippet) for the fields of `record` where the query's words occur, in field order."""
        if not self.patterns:
            return []
        out: list[tuple[str, str]] = []
        for name in fields:
            # Most fields are plain strings or absent: only the others take the general path.
            value = record.get(name) if "." not in name else None
            text = value if type(value) is str else field_value(record, name)
            if not text:
                continue
            folded, where = _fold_mapped(text)
            wanted = [p for word, p in self.patterns if word in folded]
            if not wanted:
                continue
            spans = _spans(folded, wanted)
            if not spans:
                continue
            original = [(where[s], where[e - 1] + 1) for s, e in spans]
            out.append((name, highlight(text, original)))
            if len(out) >= MAX_HIGHLIGHTS:
                break
        return out


def highlights(record: Mapping[str, Any], fields: Sequence[str], q: Query,
               synonyms: Mapping[str, Sequence[str]] | None = None) -> list[tuple[str, str]]:
    """(field, snippet) for the fields of `record` where the query's words occur, in field order."""
    return Highlighter(q, synonyms)(record, fields)
