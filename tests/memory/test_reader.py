"""What becomes memory, and what a correction replaces (issue 10): real encrypted profile,
MiniLM, and the packaged Gemma (a base model) answering the chat turns."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from memos_desktop.api import MemosAPI
from memos_desktop.api.types import LISTED_TYPES
from memos_desktop.engines.base import Embedder, SamplingParams
from memos_desktop.errors import AmbiguousError
from memos_desktop.memory import reader, statements
from memos_desktop.store.records import MEMORY_STATUSES, NewMemory, SearchFilters
from tests.memory.conftest import make_api
from tests.model_fixtures import GEMMA

SHORT = SamplingParams.greedy(max_tokens=8)
LISTED = SearchFilters(types=LISTED_TYPES)
EVERY = SearchFilters(statuses=tuple(MEMORY_STATUSES))


@pytest.fixture
def gapi(embedder: Embedder, gemma_path: Path, sha_cache: Path) -> Iterator[MemosAPI]:
    a = make_api(embedder, gemma_path, sha_cache, settings=GEMMA)
    yield a
    a.close()


def say(api: MemosAPI, text: str, conv: str | None = None) -> str | None:
    turn = api.chat(text, conv, sampling=SHORT)
    "".join(turn)
    assert turn.done
    return turn.conversation_id


def texts(api: MemosAPI, f: SearchFilters = LISTED) -> list[str]:
    return sorted(it.text for it in api.list(f))


def test_facts_are_read_from_what_is_said_and_questions_are_not(gapi: MemosAPI) -> None:
    conv = say(gapi, "Hi! My name is Dana and I live in Porto.")
    say(gapi, "What am I allergic to?", conv)
    say(gapi, "Thanks, that helps.", conv)
    say(gapi, "I'm allergic to shellfish, is paella safe?", conv)
    facts = gapi.list(LISTED)
    assert sorted((f.text, f.type, f.key) for f in facts) == [
        ("I am allergic to shellfish", "fact", "self:allergy:shellfish"),
        ("I live in Porto", "fact", "self:residence"),
        ("My name is Dana", "fact", "self:name"),
    ]
    name = next(f for f in facts if f.key == "self:name")
    assert name.layer == "user"  # who the person is: in every prompt's core profile
    assert all(f.sources and f.sources[0].conversation_id == conv for f in facts)
    # every exchange is kept as a raw episode, hidden from the default list, ranked lower
    episodes = gapi.list(SearchFilters(types=("episode",)))
    assert len(episodes) == 4 and {e.importance for e in episodes} == {0.2}
    assert all(e.type_weight < f.type_weight for e in episodes for f in facts)
    assert "User: What am I allergic to?" in [e.text for e in episodes]
    hits = gapi.search("What am I allergic to?").hits
    assert hits[0].item.text == "I am allergic to shellfish"


def test_a_question_or_a_greeting_never_becomes_a_memory(gapi: MemosAPI) -> None:
    conv = say(gapi, "Where do I live?")
    for text in ("hello", "Good morning!", "ok thanks", "what should I cook tonight", "lol"):
        say(gapi, text, conv)
    assert gapi.list(LISTED) == []
    assert len(gapi.list(SearchFilters(types=("episode",)))) == 6


def test_braga_supersedes_the_fact_not_the_question(gapi: MemosAPI) -> None:
    conv = say(gapi, "I live in Porto.")
    say(gapi, "Where do I live?", conv)
    new, old = gapi.correct("I moved to Braga in May")
    assert old is not None and old.text == "I live in Porto" and old.status == "archived"
    assert old.superseded_by == new.id and new.key == "self:residence"
    assert texts(gapi) == ["I moved to Braga in May"]
    question = next(e for e in gapi.list(EVERY) if e.text == "User: Where do I live?")
    assert question.status == "active"  # the record of what was asked is untouched
    assert [v.change for v in gapi.history(old.id)] == ["create", "supersede"]


def test_moving_said_in_chat_supersedes_where_the_person_lived(gapi: MemosAPI) -> None:
    conv = say(gapi, "I live in Porto and I work as a nurse.")
    say(gapi, "By the way, I moved to Berlin in May.", conv)
    assert texts(gapi) == ["I moved to Berlin in May", "I work as a nurse"]
    porto = next(it for it in gapi.list(EVERY) if it.text == "I live in Porto")
    assert porto.status == "archived"


def test_a_compound_memory_keeps_the_part_a_correction_is_not_about(gapi: MemosAPI) -> None:
    compound = gapi.add(NewMemory(text="My name is Dana and I live in Porto."))[0].item
    new, old = gapi.correct("I live in Berlin now, not Porto")
    assert old is not None and old.id == compound.id and old.status == "archived"
    assert texts(gapi) == ["I live in Berlin now", "My name is Dana"]
    name = next(it for it in gapi.list(LISTED) if it.text == "My name is Dana")
    assert name.key == "self:name" and "kept apart" in gapi.history(old.id)[-1].reason
    assert new.text == "I live in Berlin now"


def test_an_ambiguous_correction_changes_nothing_and_names_the_candidates(
    gapi: MemosAPI,
) -> None:
    ana = gapi.add(NewMemory(text="My sister Ana is a nurse"))[0].item
    eva = gapi.add(NewMemory(text="My sister Eva is a lawyer"))[0].item
    before = texts(gapi, EVERY)
    with pytest.raises(AmbiguousError) as err:
        gapi.correct("My sister is a teacher now")
    assert {i for i, _ in err.value.candidates} == {ana.id, eva.id}
    assert err.value.exit_code == 10 and texts(gapi, EVERY) == before
    # the person chooses; or names her, and no question is needed
    new, old = gapi.correct("My sister is a teacher now", target=eva.id)
    assert old is not None and old.id == eva.id and new.supersedes == eva.id
    new, old = gapi.correct("Ana is a doctor now")
    assert old is not None and old.id == ana.id and new.supersedes == ana.id
    assert texts(gapi) == ["Ana is a doctor now", "My sister is a teacher now"]


def test_consolidate_counts_and_says_a_failed_extraction(
    gapi: MemosAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An extraction the model cannot finish (here the packaged Gemma's real structured answer,
    cut off by a 3-token budget: the engine raises, as it does for invalid JSON) is counted and
    said, never "0 failed"."""
    monkeypatch.setattr(reader, "EXTRACTION_MAX_TOKENS", 3)
    say(gapi, "I started a new job at the bakery on Monday.")
    report = gapi.consolidate()
    assert report.done == 1 and report.failed == 0 and report.added == 0
    assert report.extraction_failed == report.windows == 1 and report.failure_kinds
    assert report.failure_kinds == {"EngineError": 1}
    assert "extraction FAILED on 1 of 1 conversation window" in report.summary()
    # and what the reader took from the message at once is still there
    assert texts(gapi) == ["I started a new job at the bakery on Monday"]


def test_consolidate_with_the_packaged_model_adds_nothing_ungrounded(gapi: MemosAPI) -> None:
    """The packaged Gemma asked for the JSON extraction: whether it manages (grammar-constrained,
    it may return an empty list) differs between CPUs, so what holds everywhere is checked: the
    report says what happened, and nothing the person did not say becomes a memory."""
    say(gapi, "I started a new job at the bakery on Monday.")
    report = gapi.consolidate()
    assert report.done == 1 and report.failed == 0 and report.windows == 1
    if report.extraction_failed:
        assert report.failure_kinds
        assert "extraction FAILED on 1 of 1 conversation window" in report.summary()
    else:
        assert "FAILED" not in report.summary()
    for text in texts(gapi):
        assert {"job", "bakery"} & set(text.lower().split()), text
    assert "I started a new job at the bakery on Monday" in texts(gapi)


def test_the_reader_splits_and_resolves_within_a_message() -> None:
    got = [
        (s.text, s.type)
        for s in statements.read("My sister Marta lives in London and works as a nurse.")
    ]
    assert got == [
        ("My sister Marta lives in London", "fact"),
        ("My sister Marta works as a nurse", "fact"),
    ]
    got = [s.text for s in statements.read("I have a daughter. She is 11.")]
    assert got == ["I have a daughter", "My daughter is 11"]
    got = [s.text for s in statements.read("We have a dog, he is called Rex.")]
    assert got == ["We have a dog", "My dog is called Rex"]


def test_a_relative_typed_without_my_and_a_named_persons_move_are_read() -> None:
    def claims(text: str) -> set[tuple[str, str, str]]:
        return {(c.subject, c.attribute, c.value) for s in statements.read(text) for c in s.claims}

    said = claims("younger brother Michał studies architecture in Warsaw")
    assert ("brother:michał", "study", "architecture") in said
    assert ("joanna", "residence", "poznań") in claims("Joanna relocated to Poznań last month")
    assert ("michał", "residence", "berlin") in claims(
        "Michał finished his degree and moved to Berlin"
    )


def test_what_the_answers_are_not_to_have_is_an_instruction() -> None:
    said = statements.read("no emojis in your answers pls")
    assert [(s.text, s.type) for s in said] == [("No emojis in your answers pls", "instruction")]
    assert [s.type for s in statements.read("No bullet points please")] == ["instruction"]
    # a "no" of its own is not one
    assert statements.read("no worries, thanks") == []
    assert [s.type for s in statements.read("No, my sister is called Ana")] != ["instruction"]


def test_what_the_person_did_told_without_i_is_read_as_theirs() -> None:
    def read(text: str) -> list[tuple[str, str]]:
        return [(s.text, s.type) for s in statements.read(text)]

    assert read("switched bouldering to Tuesdays and Fridays, Mondays got way too crowded") == [
        ("I switched bouldering to Tuesdays and Fridays, Mondays got way too crowded", "fact")
    ]
    assert read("just started learning Spanish last month") == [
        ("I just started learning Spanish last month", "fact")
    ]
    assert read("got a new car, a red Mazda") == [("I got a new car, a red Mazda", "fact")]
    # a new thing of theirs told without a verb, and "ul." no end of a sentence
    assert read("we moved! new flat in Bronowice, ul. Balicka, flat 27") == [
        ("We moved", "fact"),
        ("My new flat in Bronowice, ul Balicka, flat 27", "fact"),
    ]
    # small talk, a state of mind, a request and a question stay out
    assert read("Got it, thanks") == []
    assert read("Tired today") == []
    assert read("Need a recipe for dinner") == []
    assert read("moved the meeting yet?") == []
