"""A later note that changed what an answer says (``memory/later.py``): found among the hits
or by searching with the old note's words, and said after the old answer; and the packaged
Gemma through ``MemosAPI.chat`` with a real encrypted store."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from memos_desktop.engines.base import Embedder
from memos_desktop.memory import completion, later
from memos_desktop.store.records import MemoryItem
from tests.memory.conftest import told_api
from tests.memory.test_slot_answers import _item
from tests.model_fixtures import GEMMA_BASE

SWIM = "I go swimming on Mondays and Wednesdays before work"
MOVED = "I moved swimming to Tuesdays and Saturdays, Mondays got way too busy"
ASKED = "Which days do I go swimming?"
OLD = "Mondays and Wednesdays."


def _note(item: MemoryItem) -> str | None:
    return completion.note_text(item.text)


def _changes(answer: str, question: str, old: str, *newer: str) -> list[later.Change]:
    held = _item(old, 100.0)
    pairs = [(i, n) for i in (_item(t, 200.0 + k) for k, t in enumerate(newer)) if (n := _note(i))]
    return later.changes(answer, question, (held, _note(held) or ""), pairs)


def test_a_later_note_that_says_something_changed_changes_the_answer() -> None:
    got = _changes(OLD, ASKED, SWIM, MOVED)
    assert [c.note for c in got] == [_note(_item(MOVED, 1.0))]
    # one sharing no word with the question, but the old answer's ("got an iPhone 15 now")
    phone = _changes(
        "You have a Pixel 7.",
        "what phone do I have",
        "My phone's a Pixel 7",
        "I dropped my pixel in the river, got an iPhone 15 now",
    )
    assert len(phone) == 1


def test_later_notes_that_change_nothing_are_not_changes() -> None:
    # it holds the answer itself
    assert (
        _changes(
            "Fasola.",
            "What's my dog called?",
            "We have a beagle called Fasola",
            "Fasola turned 7 now, we got her a cake",
        )
        == []
    )
    # no word says something changed
    assert _changes(OLD, ASKED, SWIM, "I love swimming, it clears my head") == []
    # about someone else
    assert _changes(OLD, ASKED, SWIM, "My sister moved her swimming to Fridays now") == []
    # about something else
    assert _changes(OLD, ASKED, SWIM, "I switched to oat milk now") == []
    # told before the note that holds the answer
    held = _item(SWIM, 300.0)
    older = _item(MOVED, 200.0)
    assert later.changes(OLD, ASKED, (held, _note(held) or ""), [(older, _note(older) or "")]) == []


def _answer(
    hits: Sequence[MemoryItem], found: Sequence[MemoryItem], question: str = ASKED
) -> tuple[str, MemoryItem, MemoryItem] | None:
    return later.changed_answer(question, OLD, hits, _note, lambda _n: True, lambda _t: found)


def test_the_later_note_is_told_after_the_old_answer() -> None:
    old, new = _item(SWIM, 100.0), _item(MOVED, 200.0)
    # found by the old note's words, not the question's
    got = _answer([old], [new])
    assert got is not None and got[1:] == (old, new)
    assert got[0] == f"{OLD} Later you told me you moved swimming to Tuesdays and Saturdays, " + (
        "Mondays got way too busy."
    )
    # nothing later, no note holding the answer, or a question about a past occasion
    assert _answer([old], []) is None
    assert _answer([_item("I love swimming", 100.0)], [new]) is None
    assert _answer([old], [new], "Which days did I go swimming last year?") is None
    # a note that is no "You ..." sentence follows a colon; one told without "I" gets "you"
    told = later.told_later("Fasola.", "Fasola turned 7 last week.")
    assert told == "Fasola. Later you told me: Fasola turned 7 last week."
    told = later.told_later("Mondays.", "Switched bouldering to Tuesdays.")
    assert told == "Mondays. Later you told me you switched bouldering to Tuesdays."


def test_gemma_says_what_the_person_changed_later(
    embedder: Embedder, gemma_path: Path, sha_cache: Path
) -> None:
    said = (
        SWIM,
        "my phone's a Pixel 7",
        "my sister Ola lives in Gdańsk",
        "moved swimming to Tuesdays and Saturdays, Mondays got way too busy",
        "dropped my pixel in the river (long story), got an iPhone 15 now",
    )
    with told_api(embedder, gemma_path, sha_cache, GEMMA_BASE, said) as api:
        turn = api.chat(ASKED)
        days = "".join(turn)
        assert "Tuesday" in days, days
        # the notes shown as used hold the old days and the new ones
        used = " ".join(u.text for u in turn.used if u.origin != "core")
        assert "Tuesdays" in used and "Wednesdays" in used, turn.used
        phone = "".join(api.chat("what phone do I have"))
        assert "iPhone" in phone, phone
        # an answer nothing later changed is said as it was
        ola = "".join(api.chat("Where does my sister live?"))
        assert "Gdańsk" in ola and "Later" not in ola, ola


def test_a_later_note_sharing_only_the_question_or_giving_the_answer_is_no_change() -> None:
    # "health" is the question's, not the diabetes note's
    assert (
        _changes(
            "You have type 1 diabetes.",
            "What health condition do I have?",
            "I have type 1 diabetes",
            "I now work at the Braga health centre",
        )
        == []
    )
    # the answer is mostly the later note's already ("blue" from the older one aside)
    assert (
        _changes(
            "You have a blue iPhone 15.",
            "What phone do I have?",
            "My phone is a blue Fairphone 4",
            "I replaced my Fairphone with an iPhone 15",
        )
        == []
    )
