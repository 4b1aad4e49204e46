"""Correction targeting and ingestion live in memory/ (memory.correct, memory.ingest); the API
only orchestrates. Real encrypted profile and real MiniLM embedder."""

from __future__ import annotations

import dataclasses

import pytest

from memos_desktop.api import MemosAPI
from memos_desktop.errors import InvalidInputError
from memos_desktop.memory import correct, ingest
from memos_desktop.store.records import NewMemory


def test_the_target_is_the_best_hit_related_enough(api: MemosAPI) -> None:
    api.add([NewMemory(text="I live in Paris"), NewMemory(text="I work as a nurse in Paris")])
    hits = api.search("I live in Paris").hits
    assert len(hits) == 2 and all(h.distance is not None for h in hits)
    assert correct.target(hits) is hits[0].item
    far = dataclasses.replace(hits[0], distance=1.0 - correct.MIN_COSINE + 0.01)
    assert correct.target([far, hits[1]]) is hits[1].item  # too far in meaning: skipped
    unmatched = dataclasses.replace(hits[0], distance=None, fts_rank=None)
    assert correct.target([unmatched]) is None  # found by neither words nor meaning
    assert correct.target([]) is None


def test_a_correction_with_nothing_related_replaces_nothing(api: MemosAPI) -> None:
    new, old = api.correct("  My favourite colour is green  ")
    assert old is None
    assert (new.text, new.type, new.source, new.key) == (
        "My favourite colour is green",
        "fact",
        "user",
        "",
    )
    assert new.importance == 0.6 and new.embed_model == api.embedder.model_id  # type: ignore[union-attr]
    with pytest.raises(InvalidInputError, match="empty correction"):
        api.correct("   ")


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
