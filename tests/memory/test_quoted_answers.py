"""A note told as the person said it, when the base model's own answer is not supported by the
notes (or is "I don't know." beside a note that says it): which notes answer a question and
which do not, the word search finding a relation by its other names, and the packaged Gemma
through ``MemosAPI.chat`` with a real encrypted store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from memos_desktop.api import MemosAPI
from memos_desktop.engines.base import Embedder, SamplingParams
from memos_desktop.memory import asked_kind, completion
from memos_desktop.memory.lexicon import same_relation
from memos_desktop.memory.note_answers import kinds_named, on_topic, quoted_answer
from memos_desktop.memory.search import SearchParams, retriever_alone
from memos_desktop.memory.slot_answers import Memories, claims_of
from memos_desktop.store.records import NewMemory
from tests.memory.conftest import told_api
from tests.memory.test_slot_answers import _item
from tests.model_fixtures import GEMMA_BASE


def _note(item):  # type: ignore[no-untyped-def]
    return completion.note_text(item.text)


def _quote(question: str, *texts: str) -> str | None:
    hits = [_item(t, 100.0 + i) for i, t in enumerate(texts)]
    got = quoted_answer(question, hits, _note)
    return None if got is None else got.text


# --- which notes answer ----------------------------------------------------------------------


def test_a_number_asked_for_is_told_from_the_note_that_holds_it() -> None:
    said = _quote("How old is my dad?", "My dad is still working at 63, he loves it.")
    assert said is not None and "63" in said, said
    assert said.startswith("You told me"), said


def test_a_note_without_the_kind_of_answer_asked_for_is_not_told() -> None:
    assert _quote("What colour is my car?", "My car is a Skoda Octavia estate.") is None
    said = _quote("What colour is my car?", "My car is a blue Skoda Octavia estate.")
    assert said is not None and "blue" in said, said


def test_someone_elses_relative_is_not_the_persons_own() -> None:
    note = "Agnieszka's brother Krzysztof runs a bike shop in Toruń."
    assert _quote("What's my brother's name?", note) is None
    said = _quote("What's my brother's name?", "My brother Krzysztof runs a bike shop.")
    assert said is not None and "Krzysztof" in said, said


def test_a_note_about_another_thing_is_not_told_for_what_the_person_cannot_stand() -> None:
    assert _quote("Which herb can't I stand?", "I can't stand olives, never could.") is None


def test_a_yes_no_question_needs_every_word_it_asks() -> None:
    assert _quote("Is my sister married?", "My sister Joanna lives in Gdańsk.") is None
    said = _quote("Is Dominika vegan?", "Dominika has been vegan for six years.")
    assert said is not None and "vegan" in said, said


def test_a_time_asked_for_is_told_from_the_note_with_a_date() -> None:
    said = _quote("When did I get married?", "We got married in June 2021 in Kraków.")
    assert said is not None and "June 2021" in said, said
    assert _quote("When did I get married?", "We got married in a tiny chapel.") is None


def test_of_two_notes_that_answer_the_newer_one_speaks() -> None:
    said = _quote("How old is my dad?", "My dad is 62.", "My dad turned 63 last week.")
    assert said is not None and "63" in said, said


def test_a_statement_or_a_question_naming_only_its_subject_is_not_answered() -> None:
    assert _quote("My dad is 63.", "My dad is 63.") is None
    assert _quote("What about my dad?", "My dad is 63.") is None


# --- a relation by its other names -----------------------------------------------------------


def test_a_relation_has_its_other_names() -> None:
    assert {"dad", "daddy", "papa"} <= set(same_relation("How old is my father?"))
    assert "father" not in same_relation("How old is my father?")
    assert "mom" in same_relation("what's my mum's job")
    assert same_relation("Where do I live?") == []


def test_the_word_search_finds_my_dad_asked_about_my_father(api: MemosAPI) -> None:
    api.add(
        [
            NewMemory(text="My dad turned 63 in May.", type="fact"),
            NewMemory(text="I live in Gdynia near the harbour.", type="fact"),
            NewMemory(text="My sister teaches maths in a secondary school.", type="fact"),
        ]
    )
    words_only = retriever_alone(SearchParams(), "bm25")
    hits = api.hybrid.search("How old is my father?", None, None, top_k=3, params=words_only)
    assert [h.item.text for h in hits][:1] == ["My dad turned 63 in May."]


# --- through the chat ------------------------------------------------------------------------


def test_a_random_models_answer_gives_way_to_the_note_that_says_it(
    completion_api: MemosAPI,
) -> None:
    # A random-weight model under the completion prompt: its text is never supported by the
    # notes, so what is said is the note that answers, and only that memory is shown as used.
    completion_api.add(
        [
            NewMemory(text="We got married in June 2021 in a tiny chapel.", type="event"),
            NewMemory(text="I live in Gdynia near the harbour.", type="fact"),
            NewMemory(text="My sister teaches maths in a secondary school.", type="fact"),
        ]
    )
    greedy = SamplingParams.greedy(max_tokens=8)
    turn = completion_api.chat("When did I get married?", sampling=greedy)
    said = "".join(turn)
    assert turn.quoted and turn.unsupported, said
    assert said == "You told me you got married in June 2021 in a tiny chapel.", said
    assert [u.text for u in turn.used] == ["We got married in June 2021 in a tiny chapel."]
    # nothing says what the sister is called: the random text is not answered with a note
    turn = completion_api.chat("What is my sister's name?", sampling=greedy)
    said = "".join(turn)
    assert not turn.quoted and said == completion.DONT_KNOW, said


# --- the packaged Gemma ----------------------------------------------------------------------

SAID = (
    "My dad is still working at 63, he loves the job",
    "my car is a blue skoda octavia, the estate one",
    "Agnieszka's brother Krzysztof fixes bikes in Toruń",
)


@pytest.fixture
def told(embedder: Embedder, gemma_path: Path, sha_cache: Path) -> Iterator[MemosAPI]:
    with told_api(embedder, gemma_path, sha_cache, GEMMA_BASE, SAID) as api:
        yield api


def test_gemma_answers_from_what_the_person_said(told: MemosAPI) -> None:
    turn = told.chat("How old is my father?")
    said = "".join(turn)
    assert "63" in said, said
    turn = told.chat("What colour is my car?")
    said = "".join(turn)
    assert "blue" in said.lower(), said
    # nothing was said of the person's own brother: no answer from Agnieszka's
    turn = told.chat("What's my brother's name?")
    said = "".join(turn)
    assert "Krzysztof" not in said, said


def test_someone_elses_relative_does_not_support_an_answer_about_the_persons_own() -> None:
    notes = "- Agnieszka's brother Krzysztof fixes bikes in Toruń."
    asked = "What's my brother's name?"
    assert not completion.supported("Agnieszka's brother Krzysztof.", notes, asked)
    notes = "- Your brother Krzysztof fixes bikes in Toruń."
    assert completion.supported("Your brother is Krzysztof.", notes, asked)


def test_working_at_a_number_is_an_age_not_a_workplace() -> None:
    said = {
        (c.attribute, c.value) for c in claims_of("My dad is an electrician, still working at 63")
    }
    assert said == {("occupation", "electrician"), ("age", "63")}
    said = {(c.attribute, c.value) for c in claims_of("My sister is a nurse at St Mary hospital")}
    assert ("employer", "st mary hospital") in said


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        ("She's going to be a sheep.", False),
        ("At 8 every morning.", True),
        ("Every morning before work.", True),
    ],
)
def test_an_answer_to_when_must_say_a_time(answer: str, ok: bool) -> None:
    notes = (
        "- Zosia is going to be a sheep in the nativity play.\n"
        "- You drop Zosia at kindergarten at 8 every morning before work."
    )
    asked = "What time do I drop Zosia at kindergarten?"
    assert completion.supported(answer, notes, asked) is ok


@pytest.mark.parametrize(
    ("question", "text", "found"),
    [
        ("How often do I call my mum?", "You call her twice a week.", True),
        ("How often do I call my mum?", "You call your mum.", False),
        ("How many kids do I have?", "You have three kids.", True),
        ("What colour is my bike?", "Your bike is a green Canyon.", True),
        ("Where does Kuba live?", "Kuba lives in Gdynia.", True),
        ("Where does Kuba live?", "Kuba lives near the sea.", False),
        ("Which city is my mum in?", "You call your mum every Sunday evening.", False),
        ("What do I do for a living?", "You're a nurse.", None),
    ],
)
def test_the_kind_of_answer_asked_for(question: str, text: str, found: bool | None) -> None:
    assert asked_kind.found(question, text) is found


def test_a_bare_yes_to_a_question_asking_which_says_too_little() -> None:
    assert completion.says_too_little("Yes.", "Am I allergic to anything?")
    assert completion.says_too_little(
        "Yes, you have a chronic condition.", "any chronic conditions?"
    )
    assert not completion.says_too_little("Yes, to penicillin.", "Am I allergic to anything?")
    assert not completion.says_too_little("Yes.", "Am I allergic to penicillin?")
    said = _quote("Am I allergic to anything?", "I'm allergic to penicillin, found out as a kid.")
    assert said is not None and "penicillin" in said, said


@pytest.mark.parametrize(
    ("question", "answer", "missing"),
    [
        ("What colour is my car?", "Your car is a Toyota Corolla hybrid.", True),
        ("What colour is Pixel?", "Pixel is a ginger cat.", False),
        ("What's Kuba's surname?", "Kuba is a sound engineer.", True),
        ("What's my sister called?", "Your sister is joanna.", False),
        ("Who is Kuba?", "Your best friend since primary school.", False),
        ("What's the name of the street I live on?", "You live on limanowskiego street.", False),
        ("How many kids do I have?", "You have a daughter.", True),
        ("How long should your answers be?", "You asked me to keep my answers short.", False),
    ],
)
def test_an_answer_that_leaves_out_what_was_asked(
    question: str, answer: str, missing: bool
) -> None:
    assert asked_kind.missing(question, answer) is missing


def test_a_memory_that_does_not_say_the_colour_asked_is_no_answer(completion_api: MemosAPI) -> None:
    completion_api.add(NewMemory(text="We drive a Toyota Corolla hybrid now", type="fact"))
    greedy = SamplingParams.greedy(max_tokens=8)
    turn = completion_api.chat("What colour is my car?", sampling=greedy)
    assert "".join(turn) == completion.DONT_KNOW
    completion_api.add(NewMemory(text="The car is dark green, by the way", type="fact"))
    turn = completion_api.chat("What colour is my car?", sampling=greedy)
    said = "".join(turn)
    assert "green" in said, said


def test_gemma_does_not_answer_about_someone_from_the_persons_own_notes(
    embedder: Embedder, gemma_path: Path, sha_cache: Path
) -> None:
    said = (
        "I studied computer science at AGH in Kraków",
        "Dominika sits next to me at work, she's a backend developer",
    )
    with told_api(embedder, gemma_path, sha_cache, GEMMA_BASE, said) as api:
        turn = api.chat("Where did Dominika study?")
        answer = "".join(turn)
        assert "AGH" not in answer and "computer science" not in answer.lower(), answer
        turn = api.chat("Where did I study?")
        answer = "".join(turn)
        assert "AGH" in answer, answer


def test_days_and_months_are_no_names() -> None:
    assert asked_kind.names("What do I do on Fridays with Kuba?") == {"kuba"}
    assert asked_kind.names("Where am I going in May?") == set()


def test_a_relative_named_by_their_name_is_the_relative_asked_about() -> None:
    # "the dog" of the question is Fasola of the note once another memory says so
    texts = ("I walk Fasola every morning at 6:30", "We have a beagle called Fasola")
    hits = [_item(t, 100.0 + i) for i, t in enumerate(texts)]
    assert quoted_answer("When do I walk the dog?", hits, _note) is None
    links = Memories(hits).links
    assert ("dog", "fasola") in links
    got = quoted_answer("When do I walk the dog?", hits, _note, links=links)
    assert got is not None and "6:30" in got.text, got
    # a name no memory links to the dog is not the dog
    other = [_item("I walk Kasia to school at 8", 100.0), hits[1]]
    assert quoted_answer("When do I walk the dog?", other, _note, links=links) is None


def test_go_is_no_topic_of_its_own() -> None:
    said = _quote(
        "Where did we go for our anniversary?",
        "We went to Sicily in September for our 5th wedding anniversary.",
    )
    assert said is not None and "Sicily" in said, said
    # "go" alone shares no topic: "you go climbing" does not say where you studied
    assert _quote("where did I go to university?", "I go bouldering at a gym in Zabłocie.") is None


def test_half_of_what_is_asked_is_enough_beside_the_names_the_note_holds() -> None:
    note = "Languages: polish obviously, english at work, and my german is rusty"
    said = _quote("Which languages do I speak besides Polish and English?", note)
    assert said is not None and "german" in said, said
    # without names to anchor it, half is not enough
    assert _quote("Which languages do I speak at home?", "Languages are hard to learn") is None


def test_a_kind_of_thing_asked_for_is_told_from_the_note_naming_one() -> None:
    sailing = "Rafał is my team lead, good guy, really big into sailing"
    said = _quote("What's Rafał's hobby?", "I work at Hexbyte", sailing)
    assert said == "You told me: Rafał is your team lead, good guy, really big into sailing.", said
    beagle = "We have a beagle called Fasola, she's 6"
    assert on_topic("What breed is Fasola?", _item(beagle, 1.0), completion.note_text(beagle) or "")
    # a note naming no member of the kind is not about it
    assert _quote("What's Rafał's hobby?", "Rafał is my team lead, good guy") is None
    # the kinds a note names one of, as the words that ask for them
    assert {"sport", "hobby", "unwind"} <= kinds_named("I love bouldering, it's my therapy")
    assert kinds_named("I had pasta") == set()


def test_where_the_person_is_originally_from_is_where_they_were_born() -> None:
    said = _quote("Where am I originally from?", "I'm 34, born on 17 March 1992 in Rzeszów")
    assert said == "You told me you're 34, born on 17 March 1992 in Rzeszów.", said
    # the office is where they work
    office = "I take tram 50 to the office, it's about 25 minutes door to door"
    assert on_topic("How do I get to work?", _item(office, 1.0), completion.note_text(office) or "")


def test_what_the_person_cannot_stand_is_what_they_hate() -> None:
    said = _quote("Which herb can't I stand?", "I love bouldering", "I hate coriander, it's soap")
    assert said == "You told me you hate coriander, it's soap.", said
    # a note naming no herb is not told
    assert _quote("Which herb can't I stand?", "I hate Mondays") is None
