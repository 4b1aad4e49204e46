"""Corrections in plain words ("I moved to Berlin in May"): which memory a correction
replaces, and what is stored.

Design rules:
- The correction is stored as a new user fact that supersedes the most related active memory
  (the best search hit of a correctable type that is related enough); the old one is archived,
  and its history keeps both.
- A vector hit must have cosine >= ``MIN_COSINE``; a hit found by neither words nor meaning
  is never a target. Nothing related: the correction is stored and replaces nothing.
- The search itself is the caller's (the API's hybrid search), passed in as a function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from memos_desktop.errors import InvalidInputError
from memos_desktop.store.profile import Store
from memos_desktop.store.records import Cube, MemoryItem, NewMemory, SearchFilters, SearchHit

MIN_COSINE = 0.3
TYPES = ("fact", "preference", "event", "instruction", "episode")  # what a correction replaces
CANDIDATES = 5  # search hits considered

Search = Callable[[SearchFilters, int], Sequence[SearchHit]]


def check(text: str) -> str:
    if not text.strip():
        raise InvalidInputError("an empty correction", hint="say what is true now")
    return text.strip()


def target(hits: Sequence[SearchHit], min_cosine: float = MIN_COSINE) -> MemoryItem | None:
    """The memory a correction replaces: the best hit related enough, or None."""
    for h in hits:
        if h.distance is not None and 1.0 - h.distance < min_cosine:
            continue
        if h.distance is None and h.fts_rank is None:
            continue
        return h.item
    return None


def corrected_memory(text: str, old: MemoryItem | None) -> NewMemory:
    """The new fact: it takes the old memory's key, and at least its importance (0.6 floor)."""
    return NewMemory(
        text=text.strip(),
        type="fact",
        key=old.key if old is not None else "",
        source="user",
        importance=max(0.6, old.importance if old else 0.6),
    )


def correct(
    store: Store,
    cube: Cube,
    text: str,
    vector: Any | None,
    embed_model: str,
    search: Search,
    min_cosine: float = MIN_COSINE,
) -> tuple[MemoryItem, MemoryItem | None]:
    """Store the correction and supersede its target; returns (new, the target as now)."""
    hits = search(SearchFilters(cube_ids=(cube.id,), types=TYPES), CANDIDATES)
    old = target(hits, min_cosine)
    added = store.memories.add_many(
        cube,
        [corrected_memory(text, old)],
        None if vector is None else [vector],
        embed_model=embed_model,
        dedupe=False,
    )[0].item
    if old is not None:
        store.memories.supersede(old.id, added.id, reason=f"corrected: {text.strip()}")
        old = store.memories.get(old.id)
    return added, old
