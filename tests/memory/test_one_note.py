"""Asked again with one note: when the base model's answer to a question is not supported by
its notes (it took the wrong one, or none) and no note says the answer in so many words, it is
asked again with each of the best notes alone, and the first answer that note supports is
given. Which notes may be asked with (about whom and what is asked), pets named by their
breed, the kinds a plural relation stands for, and the packaged Gemma through
``MemosAPI.chat`` with a real encrypted store."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from memos_desktop.api import MemosAPI
from memos_desktop.engines.base import CancelToken, Embedder
from memos_desktop.memory import asked_kind, chat, completion
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


def _service(api: MemosAPI) -> chat.ChatService:
    c = api.cube
    return chat.ChatService(
        api.store,
        api.engine,
        api._embedder_for(c),
        c,
        api.user.id,
        lambda q, k: api.search(q, top_k=k, cube=c.id).hits,
        api.budget,
    )


def _ask_one_note(svc: chat.ChatService, asked: str) -> tuple[str, str] | None:
    hits = svc.retrieve(asked, 8)
    note_of = svc.scheduler.note_for
    assembled = svc.scheduler.assemble(svc.cube, asked, hits, [], now=time.time(), note_of=note_of)
    got = svc._one_note(
        asked, hits, note_of, assembled, completion.sampling(None), CancelToken(), lambda _n: True
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
    api = told_api(embedder, gemma_path, sha_cache, GEMMA_BASE, said)
    try:
        svc = _service(api)
        got = _ask_one_note(svc, "What kind of bike have I got?")
        assert got is not None
        answer, note = got
        assert "Canyon" in answer and "Canyon" in note, got
        # no note is about shoes: none is asked with ("Your shoe size is 14." from the flat)
        assert _ask_one_note(svc, "What is my shoe size?") is None
    finally:
        api.close()


def test_gemma_names_the_dog_told_by_its_breed(
    embedder: Embedder, gemma_path: Path, sha_cache: Path
) -> None:
    said = (
        "we have a beagle called Fasola, she's 6",
        "the car is a 2015 Skoda Octavia estate, fits the dog and all of Zosia's stuff",
    )
    api = told_api(embedder, gemma_path, sha_cache, GEMMA_BASE, said)
    try:
        turn = api.chat("What's my dog called?")
        answer = "".join(turn)
        assert "Fasola" in answer, answer
    finally:
        api.close()
