"""Correction targeting and ingestion live in memory/ (memory.correct, memory.ingest); the API
only orchestrates. Real encrypted profile and real MiniLM embedder."""

from __future__ import annotations

import pytest

from memos_desktop.api import MemosAPI
from memos_desktop.errors import InvalidInputError
from memos_desktop.memory import correct, ingest, targets
from memos_desktop.store.records import MemoryItem, NewMemory


def test_the_target_is_the_memory_about_the_same_attribute(api: MemosAPI) -> None:
    paris, nurse = (
        r.item
        for r in api.add([NewMemory(text="I live in Paris"), NewMemory(text="I work as a nurse")])
    )
    moved = correct.read("I moved to Lyon")
    # the attribute decides, not closeness in meaning
    d = targets.decide(moved, [targets.Candidate(nurse, 0.9), targets.Candidate(paris, 0.4)])
    assert d.action == "supersede" and d.targets == (paris,)
    # a memory known to be about something else is never a target, however close
    assert targets.decide(moved, [targets.Candidate(nurse, 0.99)]).action == "none"


def test_without_a_known_attribute_meaning_decides_with_a_margin(api: MemosAPI) -> None:
    key, folder, said = (
        r.item
        for r in api.add(
            [
                NewMemory(text="The spare key is under the mat"),
                NewMemory(text="The blue folder is in the attic"),
                NewMemory(text="User: the spare key is under the mat", type="episode"),
            ]
        )
    )
    new = correct.read("The spare key is under the flowerpot")
    assert new[0].claims == ()

    def decide(*pairs: tuple[MemoryItem, float | None]) -> targets.Decision:
        return targets.decide(new, [targets.Candidate(i, s) for i, s in pairs])

    clear = decide((key, 0.9), (folder, 0.5))
    assert clear.action == "supersede" and clear.targets == (key,)
    close = decide((key, 0.8), (folder, 0.75))  # too close to call: ask, with both
    assert close.action == "ask" and set(close.candidates) == {key, folder}
    assert decide((key, targets.ASK_COSINE - 0.01)).action == "none"  # not related enough
    assert decide((key, None)).action == "none"  # not found by meaning at all
    assert decide().action == "none"
    assert decide((said, 0.99)).action == "none"  # a raw episode is the record, never a target


def test_a_correction_with_nothing_related_replaces_nothing(api: MemosAPI) -> None:
    new, old = api.correct("  My favourite colour is green  ")
    assert old is None
    assert (new.text, new.type, new.source, new.key) == (
        "My favourite colour is green",
        "preference",
        "user",
        "self:favourite-colour",
    )
    assert new.importance == 0.65 and new.embed_model == api.embedder.model_id  # type: ignore[union-attr]
    with pytest.raises(InvalidInputError, match="empty correction"):
        api.correct("   ")
    with pytest.raises(InvalidInputError, match="question"):
        api.correct("Where do I live?")


def test_a_conversation_is_checked_before_anything_is_written(api: MemosAPI) -> None:
    bad = [{"role": "user", "content": "I have a dog"}, {"role": "robot", "content": "ok"}]
    with pytest.raises(InvalidInputError, match="role"):
        api.add(bad)
    assert api.conversations() == [] and api.list() == []
    assert api.job_counts() == {}
    parsed = ingest.parse([{"role": "user", "content": "I have a dog", "time": 1700000000}])
    assert parsed.items == () and parsed.messages == (
        ingest.ParsedMessage("user", "I have a dog", 1700000000.0),
    )
    assert ingest.parse("plain text").items == (NewMemory(text="plain text"),)
    with pytest.raises(InvalidInputError, match="takes text"):
        ingest.parse([NewMemory(text="a"), 3])  # type: ignore[list-item]


def test_text_the_cube_holds_is_stored_once_and_new_text_embedded(api: MemosAPI) -> None:
    first = api.add("Omar drinks green tea")[0]
    again = api.add([NewMemory(text="Omar drinks green tea"), NewMemory(text="Omar plays chess")])
    assert not again[0].created and again[0].item.id == first.item.id
    assert again[1].created and again[1].item.embed_model == api.embedder.model_id  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("I drive a red Ford Focus", "I sold the Focus and bought a Tesla Model 3"),
        ("My laptop is a ThinkPad X1", "I replaced my ThinkPad with a MacBook Air"),
        ("I have a haircut appointment on Tuesday", "My haircut appointment moved to Thursday"),
        ("I go climbing every Monday", "I moved my climbing to Fridays"),
        ("I prefer wine over beer", "I barely drink wine now"),
        ("I prefer wine over beer", "I have switched to beer"),
        ("My daughter Mia is four", "Mia turned five"),
    ],
)
def test_a_change_told_in_passing_finds_the_memory_it_changes(
    api: MemosAPI, old: str, new: str
) -> None:
    """The reconciler's decision (no similarity fallback, no loose subjects): the memory about
    the same thing is superseded, the unrelated one is not."""
    target, other = (
        r.item for r in api.add([NewMemory(text=old), NewMemory(text="I live in Lisbon")])
    )
    d = targets.decide(
        correct.read(new),
        [targets.Candidate(other, None), targets.Candidate(target, None)],
        fallback=False,
        exact_subject=True,
    )
    assert d.action == "supersede" and d.targets == (target,), d


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("My sister Ana is four", "My sister turned five"),  # which sister: not settled
        ("I have a haircut appointment on Tuesday", "My dentist appointment moved to Monday"),
        ("My laptop is a ThinkPad X1", "I replaced my bike with a scooter"),
        ("I prefer wine over beer", "I barely drink coffee now"),
    ],
)
def test_a_change_about_something_else_supersedes_nothing(
    api: MemosAPI, old: str, new: str
) -> None:
    (item,) = (r.item for r in api.add([NewMemory(text=old)]))
    d = targets.decide(
        correct.read(new), [targets.Candidate(item, None)], fallback=False, exact_subject=True
    )
    assert d.action == "none", d
