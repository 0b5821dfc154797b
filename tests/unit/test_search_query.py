"""Search queries, synonyms, highlights, configuration and documents, without a database."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from services.kernel.errors import InvalidArgument
from services.search import config as search_config
from services.search.domain import _corrected_queries, max_edits
from services.search.indexer import event_target, weight_arrays
from services.search.query import Query, Term, fold, highlight, highlights, parse, to_tsquery
from services.search.records import TYPES, document


def test_fold_matches_what_unaccent_does() -> None:
    assert fold("José Núñez-Ørsted") == "jose nunez-orsted"
    assert fold("Straße Æsir Łódź İstanbul") == "strasse aesir lodz istanbul"


def test_words_all_must_match_and_the_last_is_a_prefix_while_typing() -> None:
    q = parse("Ann  SMI")
    assert q.terms == [Term("ann"), Term("smi", prefix=True)]
    assert to_tsquery(q) == "'ann' & 'smi':*"
    assert parse("ann s").terms[-1] == Term("s"), "one letter is too short to be a prefix"
    assert parse("José").terms == [Term("jose", prefix=True)]


def test_phrases_exclusions_and_punctuation() -> None:
    q = parse('"john smith" acme -lost -"cold lead" bob@example.com')
    assert q.phrases == [["john", "smith"]]
    assert q.excluded == ["lost", "cold", "lead"]
    assert [t.word for t in q.terms] == ["acme", "bob", "example", "com"]
    assert to_tsquery(q) == ("'acme' & 'bob' & 'example' & 'com':* & ('john' <-> 'smith') & !'lost' & !'cold' & "
                             "!'lead'")
    assert parse('"ann"').terms == [Term("ann")], "a quoted word is exact"
    assert parse("-only -exclusions").empty


def test_quotes_cannot_break_out_of_a_lexeme() -> None:
    q = parse("o'brien ' | & ! :* <->")
    assert [t.word for t in q.terms] == ["o", "brien"]
    assert to_tsquery(q) == "'o' & 'brien':*"


def test_synonyms_widen_each_word_and_autocomplete_weights() -> None:
    syn = {"bob": ["robert", "bobby"], "inc": ["incorporated"]}
    assert to_tsquery(parse("bob acme inc"), syn) == "('bob' | 'robert' | 'bobby') & 'acme' & ('inc':* | 'incorporated')"
    assert to_tsquery(parse("jo sm", all_prefix=True), weights="AB") == "'jo':*AB & 'sm':*AB"


def test_query_limits() -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse("x" * 201)
    assert caught.value.violations[0].field == "query"
    with pytest.raises(InvalidArgument):
        parse(" ".join(f"w{i}" for i in range(17)))


def test_highlights_mark_words_in_the_original_text() -> None:
    record = {"firstName": "José", "lastName": "Núñez", "email": "jose@acme.io", "body": "x " * 200 + "call José"}
    q = parse("jose nu")
    found = highlights(record, ["firstName", "lastName", "email", "body"], q)
    assert found[0] == ("firstName", "<em>José</em>")
    assert found[1] == ("lastName", "<em>Núñez</em>"), "a prefix marks the whole word"
    assert found[2] == ("email", "<em>jose</em>@acme.io")
    field, snippet = found[3]
    assert field == "body" and snippet.startswith("…") and snippet.endswith("<em>José</em>")
    assert highlights({"firstName": "<b>Ann</b>"}, ["firstName"], parse("ann")) == [
        ("firstName", "&lt;b&gt;<em>Ann</em>&lt;/b&gt;")]
    assert highlights({"firstName": "Robert"}, ["firstName"], parse("bob"), {"bob": ["robert"]}) == [
        ("firstName", "<em>Robert</em>")]
    assert highlights({"tags": ["vip", "gold"]}, ["tags"], parse("gold")) == [("tags", "vip, <em>gold</em>")]
    assert highlights({"firstName": "Ann"}, ["firstName"], Query()) == []
    assert highlight("abc", [(0, 1), (2, 3)]) == "<em>a</em>b<em>c</em>"


def test_configuration_defaults_updates_and_problems() -> None:
    cfg = search_config.default()
    assert cfg.weighted("contact")[:3] == [("firstName", "A"), ("lastName", "A"), ("email", "B")]
    assert weight_arrays(cfg, "account") == {"a": ["name"], "b": ["domain", "website"],
                                             "c": ["industry", "territory", "description", "phone", "tags"],
                                             "d": ["address", "customFields"]}
    new, problems = search_config.merge(cfg, [("deal", [("name", "a"), ("description", "C")])],
                                        [["Bob", "Robert", "bob"]], False, 0.45)
    assert problems == []
    assert new.fields["deal"] == {"A": ["name"], "B": [], "C": ["description"], "D": []}
    assert new.fields["contact"] == cfg.fields["contact"]
    assert new.synonyms == [["bob", "robert"]] and new.fuzzy is False and new.fuzzy_threshold == 0.45
    assert new.synonym_map() == {"bob": ["robert"], "robert": ["bob"]}
    assert search_config.changed_types(cfg, new) == ["deal"]
    assert search_config.from_json(new.to_json()) == new
    _, problems = search_config.merge(cfg, [("deal", []), ("deal", [("x", "A")]), ("robot", [("x", "A")]),
                                            ("lead", [("a.b.c.d", "A"), ("x", "Z"), ("y", "A"), ("y", "B")])],
                                      [["a b", "c"], ["ok"]], None, 0.95)
    assert [p.field for p in problems] == [
        "types[0].fields", "types[1].type", "types[2].type", "types[3].fields[0].field", "types[3].fields[1].weight",
        "types[3].fields[3].field", "synonyms[0].terms[0]", "synonyms[0].terms", "synonyms[1].terms",
        "fuzzyThreshold"]
    _, problems = search_config.merge(cfg, [], [["a", "b"]] * 201, None, 0)
    assert [p.field for p in problems] == ["synonyms"]


def test_records_become_documents() -> None:
    rid, owner = str(uuid.uuid4()), str(uuid.uuid4())
    doc = document(TYPES["deal"], {"id": rid, "name": "Big deal", "amount": "1250.00", "currency": "EUR",
                                   "status": "open", "stageId": "s1", "ownerId": owner, "tags": ["vip"],
                                   "updatedAt": "2026-01-02T03:04:05.678Z"})
    assert doc is not None
    assert (doc.title, doc.subtitle, doc.stage, doc.status, doc.tags) == ("Big deal", "1250.00 EUR · open", "s1",
                                                                         "open", ["vip"])
    assert doc.owner_id == uuid.UUID(owner)
    assert doc.updated_at == dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
    c = document(TYPES["contact"], {"email": "a@b.c", "lifecycleStage": "lead"}, rid)
    assert c is not None and (c.title, c.subtitle, c.stage, c.owner_id) == ("a@b.c", "a@b.c", "lead", None)
    assert document(TYPES["contact"], {"id": "not-a-uuid"}) is None
    a = document(TYPES["activity"], {"id": rid, "type": "call", "status": "open", "dueAt": "2026-03-04T10:00:00Z"})
    assert a is not None and (a.title, a.subtitle) == ("call", "call · open · 2026-03-04")


def test_which_events_the_index_takes() -> None:
    assert event_target({"type": "crm.contacts.contact.created"}) == (TYPES["contact"], "created")
    assert event_target({"type": "crm.deals.deal.stage_changed"}) == (TYPES["deal"], "stage_changed")
    assert event_target({"type": "crm.activities.activity.deleted"}) == (TYPES["activity"], "deleted")
    for ignored in ("crm.contacts.import.completed", "crm.activities.calendar_connection.updated",
                    "crm.auth.session.revoked", "crm.search.config.updated", "other.contacts.contact.created", ""):
        assert event_target({"type": ignored}) is None, ignored


def test_did_you_mean_replaces_unknown_words() -> None:
    corrections = [("margerat", False, ["margaret", "margarete"]), ("smith", True, []), ("pembrton", False, ["pemberton"])]
    candidates = {"margerat": [("margaret", 0.75), ("margarete", 0.6)], "pembrton": [("pemberton", 0.9)]}
    assert _corrected_queries(corrections, candidates, 5) == [("margaret smith pemberton", 0.825),
                                                              ("margarete smith pemberton", 0.75)]
    assert _corrected_queries([("smith", True, [])], {}, 5) == []
    assert [max_edits(w) for w in ("abc", "abcde", "abcdefghi")] == [1, 2, 3]
