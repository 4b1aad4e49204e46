"""Asked again with one note: when the base model's answer to a question is not supported by
its notes (it took the wrong one, or none) and no note says the answer in so many words, it is
asked again with each of the best notes alone, and the first answer that note supports is
given. Which notes may be asked with (about whom and what is asked), pets named by their
breed, the kinds a plural relation stands for, a surname from the full name told, checks on
the model's answer (a time of day, a yes one note must say, an age in years), and the
packaged Gemma through ``MemosAPI.chat`` with a real encrypted store."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from memos_desktop.engines.base import CancelToken, Embedder
from memos_desktop.memory import asked_kind, chat, completion, slot_answers
from memos_desktop.memory.lexicon import same_relation
from memos_desktop.memory.note_answers import on_topic
from memos_desktop.memory.slot_answers import claims_of
from tests.memory.conftest import told_api
from tests.memory.test_slot_answers import _item
from tests.model_fixtures import GEMMA_BASE


def _on_topic(question: str, text: str) -> bool:
    return on_topic(question, _item(text, 100.0), text)


# --- which notes a question may be asked again with -----------------------------------------


@pytest.mark.parametrize(
    ("question", "note"),
    [
        ("Where did we go for our anniversary?", "We went to Sicily for our 5th anniversary."),
        ("What kind of bike have I got?", "My bike is a Canyon road bike."),
        ("What does Lea do?", "Lea is a pilot."),  # nothing asked beside the name
    ],
)
def test_a_note_about_what_is_asked_may_be_asked_with(question: str, note: str) -> None:
    assert _on_topic(question, note)


@pytest.mark.parametrize(
    ("question", "note"),
    [
        # nothing of the size: the flat's number is no shoe size
        ("What is my shoe size?", "I live in flat 14 on Limanowskiego street."),
        # "last" says when, not what: a museum visit is no holiday
        ("Where did I go on holiday last winter?", "Last weekend we visited the Serralves museum."),
        # the mother's name is not the person's surname
        ("What's my surname?", "My mum's name is Halina."),
        # not about Mruczek
        ("What breed is Mruczek?", "We have a beagle called Fasola."),
        # someone else's brother
        ("What does my brother do?", "Agnieszka's brother Krzysztof is a firefighter."),
    ],
)
def test_a_note_about_something_else_is_not_asked_with(question: str, note: str) -> None:
    assert not _on_topic(question, note)


def test_a_date_after_is_is_no_name() -> None:
    # "is on 18 December" names nothing: no answer to what the kindergarten is called
    asked = "What's the name of Zosia's kindergarten?"
    note = "Zosia's kindergarten nativity play is on 18 December, she's going to be a sheep."
    assert asked_kind.missing(asked, note)
    assert not asked_kind.missing(asked, "It is called Sunflower.")
    assert not asked_kind.missing("What's my sister called?", "Your sister is joanna.")


# --- pets by breed, plural relations -----------------------------------------------------------


def test_a_pet_named_by_its_breed_is_the_dog() -> None:
    said = {(c.subject, c.attribute, c.value) for c in claims_of("We have a beagle called Fasola")}
    assert ("dog", "name", "fasola") in said
    assert ("cat", "name", "mruczek") in {
        (c.subject, c.attribute, c.value) for c in claims_of("Our siamese is called Mruczek")
    }
    # an everyday word is no breed
    assert not any(c.subject == "dog" for c in claims_of("My boxer friend Tomek lives in Łódź"))


def test_the_word_search_finds_a_son_or_daughter_for_kids() -> None:
    others = same_relation("How many kids do I have?")
    assert {"daughter", "son"} <= set(others)
    assert "beagle" in same_relation("When do I walk the dog?")
    assert "daughter" not in same_relation("When do I walk the dog?")


# --- the packaged Gemma ----------------------------------------------------------------------


def _ask_one_note(svc: chat.ChatService, asked: str) -> tuple[str, str] | None:
    hits = svc.retrieve(asked, 8)
    note_of = svc.scheduler.note_for
    assembled = svc.scheduler.assemble(svc.cube, asked, hits, [], now=time.time(), note_of=note_of)
    links = slot_answers.Memories([h.item for h in hits]).links
    got = svc._one_note(
        asked,
        hits,
        note_of,
        assembled,
        completion.sampling(None),
        CancelToken(),
        lambda _n: True,
        links,
    )
    return None if got is None else (got[0], got[1].text)


def test_gemma_asked_with_one_note_answers_from_the_note_about_what_is_asked(
    embedder: Embedder, gemma_path: Path, sha_cache: Path
) -> None:
    said = (
        "I have mild asthma so I always carry a salbutamol inhaler when I go climbing",
        "we went to Sicily in September for our 5th wedding anniversary",
        "my bike is a Canyon road bike, bought it last spring",
        "I live in flat 14 on Limanowskiego street",
    )
    with told_api(embedder, gemma_path, sha_cache, GEMMA_BASE, said) as api:
        svc = api._chat_service()
        got = _ask_one_note(svc, "What kind of bike have I got?")
        assert got is not None
        answer, note = got
        assert "Canyon" in answer and "Canyon" in note, got
        # no note is about shoes: none is asked with ("Your shoe size is 14." from the flat)
        assert _ask_one_note(svc, "What is my shoe size?") is None


def test_gemma_names_the_dog_told_by_its_breed(
    embedder: Embedder, gemma_path: Path, sha_cache: Path
) -> None:
    said = (
        "we have a beagle called Fasola, she's 6",
        "the car is a 2015 Skoda Octavia estate, fits the dog and all of Zosia's stuff",
    )
    with told_api(embedder, gemma_path, sha_cache, GEMMA_BASE, said) as api:
        turn = api.chat("What's my dog called?")
        answer = "".join(turn)
        assert "Fasola" in answer, answer


# --- a surname from the full name -------------------------------------------------------------


def test_a_surname_is_the_last_word_of_the_full_name_told() -> None:
    items = [
        _item("I'm Bartosz Nowicki, but everyone calls me Bartek", 100.0),
        _item("My mum's name is Halina", 101.0),
    ]
    for q in ("what's my surname", "What is my last name?", "What's my family name?"):
        ask = slot_answers.asked(q)
        assert ask is not None and ask.attribute == "surname", q
        got = slot_answers.answer(ask, slot_answers.Memories(items), items)
        assert got is not None and got.text == "Your surname is Nowicki.", (q, got)
    # one word is no surname: nothing to say
    ask = slot_answers.asked("What's my sister's surname?")
    assert ask is not None
    one = [_item("My sister is Joanna", 100.0)]
    assert slot_answers.answer(ask, slot_answers.Memories(one), one) is None
    # "last name" is the surname, not a name slot of its own
    assert slot_answers.asked("What's my middle name?").attribute == "middle-name"  # type: ignore[union-attr]


def test_what_everyone_calls_the_person_is_a_clause_of_its_own() -> None:
    said = {
        (c.attribute, c.value)
        for c in claims_of("I'm Bartosz Nowicki, but everyone calls me Bartek")
    }
    assert ("name", "bartosz nowicki") in said


# --- checks on the model's answer ----------------------------------------------------------------


def test_what_time_asks_a_time_of_day_not_a_date() -> None:
    asked = "What time do I drop Zosia at kindergarten?"
    assert asked_kind.missing(asked, "Zosia's nativity play is on 18 December.")
    for said in ("You drop her off at 8 every morning.", "At 6:30.", "Half past six.", "At 7pm."):
        assert not asked_kind.missing(asked, said), said
    # "When" may be a date
    assert not asked_kind.missing("When is my dentist appointment?", "On 18 December.")


def test_a_yes_needs_one_note_that_says_it() -> None:
    asked = "is my sister married?"
    halves = "- Your sister Joanna lives in Gdańsk.\n- Marzena is getting married next summer."
    assert not completion.supported("Yes, she is married.", halves, asked)
    whole = "- Your sister Joanna is married to Piotr."
    assert completion.supported("Yes, she is married.", whole, asked)
    # a relation's other name and a breed count as the word asked
    assert completion.supported(
        "Yes, she is.",
        "- Your mum is allergic to cats.",
        asked.replace("is my sister married", "Is my mother allergic to cats"),
    )
    assert completion.supported(
        "Yes, you do.", "- You have a beagle called Fasola.", "Do I have a dog?"
    )
    # the question's own line in the prompt does not count
    assert not completion.supported(
        "Yes.", "Question: Do I have a dog?\nAnswer:", "Do I have a dog?"
    )


def test_an_age_may_be_said_in_years() -> None:
    notes = "- Your daughter Zosia is 4 and completely obsessed with dinosaurs."
    assert completion.supported("She is 4 years old.", notes, "How old is Zosia?")
    assert not completion.supported("She is 5 years old.", notes, "How old is Zosia?")
