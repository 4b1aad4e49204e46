"""Answers the rules give from one note or a few, about someone the person named or a kind of
relative: "How many kids do I have?" counted from the relatives named, "Is Dominika vegan?"
said from the note naming her, a yes/no question said back as the answer needing a note
that holds it, a number asked for coming from a note about it, and the packaged Gemma through
``MemosAPI.chat`` with a real encrypted store."""

from __future__ import annotations

from pathlib import Path

from memos_desktop.engines.base import Embedder
from memos_desktop.memory import completion
from memos_desktop.memory.note_answers import count_answer, named_yes_no_answer
from memos_desktop.store.records import MemoryItem
from tests.memory.conftest import told_api
from tests.memory.test_slot_answers import _item
from tests.model_fixtures import GEMMA_BASE


def _hits(*texts: str) -> list[MemoryItem]:
    return [_item(t, 100.0 + i) for i, t in enumerate(texts)]


def _note(item: MemoryItem) -> str | None:
    return completion.note_text(item.text)


def _count(question: str, *texts: str) -> str | None:
    got = count_answer(question, _hits(*texts))
    return None if got is None else got.text


def test_relatives_of_a_kind_are_counted_by_the_names_told() -> None:
    kids = _count(
        "how many kids do I have",
        "Our daughter Zosia is 4 and obsessed with dinosaurs",
        "We have a beagle called Fasola",
    )
    assert kids == "You've told me about one daughter, Zosia."
    siblings = _count(
        "How many siblings do I have?",
        "My sister Joanna lives in Gdańsk",
        "Younger brother Michał studies architecture in Warsaw",
        "My mum is called Halina",
    )
    assert siblings is not None and siblings.startswith("You've told me about two:"), siblings
    assert "sister Joanna" in siblings and "brother Michał" in siblings
    assert "Halina" not in siblings
    brothers = _count(
        "How many brothers have I got?",
        "Younger brother Michał studies architecture in Warsaw",
        "My brother Tomek is a chef",
    )
    assert brothers == "You've told me about two brothers, Michał and Tomek."
    # a child told as "my kid" counts too
    mixed = _count("How many kids do I have?", "My kid Tom is 7", "Our daughter Zosia is 4")
    assert mixed is not None and mixed.startswith("You've told me about two:"), mixed


def test_no_count_without_a_relative_of_that_kind_named() -> None:
    assert _count("How many cousins do I have?", "My sister Joanna lives in Gdańsk") is None
    assert _count("How many kids do I have?", "I work as a software tester") is None
    assert _count("How many books have I read?", "My sister Joanna lives in Gdańsk") is None


def _named(question: str, *texts: str) -> str | None:
    got = named_yes_no_answer(question, _hits(*texts), _note)
    return None if got is None else got.text


def test_a_yes_no_about_someone_named_is_said_from_the_note_naming_them() -> None:
    note = "Dominika sits next to me at work, she's a backend developer and she's vegan"
    said = _named("is Dominika vegan?", note)
    assert said is not None and said.startswith("Yes, Dominika") and "vegan" in said, said
    said = _named("Does Ola eat meat?", "Ola doesn't eat meat")
    assert said is not None and said.startswith("No,"), said
    # a note that does not say it, or one about someone else, does not answer
    assert _named("Is Rafał married?", "Rafał is my team lead, really big into sailing") is None
    assert _named("is Dominika vegan?", "Marzena is vegan") is None


def test_a_later_note_that_may_have_changed_it_leaves_the_answer_to_the_model() -> None:
    first = "Kuba plays bass in a punk band and works as a barista"
    assert _named("Is Kuba a barista?", first) is not None
    later = "Kuba quit the café, he works as a sound engineer now"
    assert _named("Is Kuba a barista?", first, later) is None


def test_the_question_said_back_needs_a_note_that_holds_it() -> None:
    note = "- Kuba plays bass in a punk band.\n"
    asked = "Does Kuba play drums?"
    assert not completion.supported("Kuba plays drums.", note, asked)
    assert completion.supported("Kuba plays bass.", note, "Does Kuba play bass?")
    # a denial and one side of a choice are judged as before
    assert completion.supported("No, Kuba does not play drums.", note, asked)
    assert completion.supported(
        "You're a morning person.", "- You get up at 5.\n", "Am I a morning person or a night owl?"
    )


def test_a_number_asked_for_comes_from_a_note_about_what_is_asked() -> None:
    notes = (
        "- Your parking spot in the underground garage is number 112.\n"
        "- You moved! new flat in Bronowice, ul. Balicka, flat 27.\n"
        "- Last Saturday you did the night run, 10 km in 52 minutes.\n"
        "- Agnieszka is 33, a year younger than you.\n"
    )
    assert not completion.supported("112.", notes, "What's my flat number?")
    assert completion.supported("27.", notes, "What's my flat number?")
    assert completion.supported("112.", notes, "What's our parking spot number?")
    assert not completion.supported("10 km.", notes, "how long is my commute")
    # whom it is about is the subject test's: "my wife" is Agnieszka of another note
    assert completion.supported("She is 33.", notes, "How old is my wife?")


def test_gemma_counts_the_kids_named_and_walks_the_dog_named(
    embedder: Embedder, gemma_path: Path, sha_cache: Path
) -> None:
    said = (
        "our daughter Zosia is 4 and completely obsessed with dinosaurs",
        "we have a beagle called Fasola, she's 6",
        "I walk Fasola every morning at 6:30 before anyone else is awake",
        "Dominika sits next to me at work, she's a backend developer and she's vegan",
    )
    with told_api(embedder, gemma_path, sha_cache, GEMMA_BASE, said) as api:
        kids = "".join(api.chat("how many kids do I have"))
        assert "one daughter" in kids and "Zosia" in kids, kids
        vegan = "".join(api.chat("is Dominika vegan?"))
        assert vegan.startswith("Yes") and "vegan" in vegan, vegan
        # the model, or the note naming Fasola once she is known to be the dog
        walk = api.chat("When do I walk the dog?")
        answer = "".join(walk)
        assert "6:30" in answer, answer
        assert [u.text for u in walk.used if u.origin != "core"], walk.used
