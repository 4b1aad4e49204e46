"""The memory half of the facade: add, remember, correct, search, get, list, count, update,
forget, restore, purge, history, pin.

Design rules:
- Policy lives in ``memory/`` (what ``add`` ingests: ``memory.ingest``; what a correction
  replaces: ``memory.correct``; reconciliation: ``memory.reconcile``); these methods resolve
  the cube and the embedder, and call it.
- The embedder is injected. Without one (model missing) memories are still stored and found by
  full-text search, and are re-embedded later: nothing is lost.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from memos_desktop.api.base import ApiBase, locked
from memos_desktop.errors import InvalidInputError
from memos_desktop.memory import correct as correction
from memos_desktop.memory import ingest
from memos_desktop.memory.reconcile import Plan
from memos_desktop.memory.retrieve import fine_search
from memos_desktop.store.memories import AddResult
from memos_desktop.store.records import (
    Cube,
    MemoryItem,
    MemoryVersion,
    NewMemory,
    SearchFilters,
    SearchHit,
)


@dataclass(frozen=True)
class SearchResult:
    hits: list[SearchHit]
    mode: str  # "hybrid" or "lexical" (no embedder), "+fine" when the model rewrote the query
    rewrites: tuple[str, ...] = ()


class MemoriesApi(ApiBase):
    @locked
    def add(self, items: ingest.AddInput, cube: str | None = None) -> list[AddResult]:
        """Remember text, memory items, or a conversation (``ChatMessage``s or dicts with role,
        content and optionally ``time``, a Unix timestamp): a conversation is recorded, each
        exchange stored at once as a raw episode followed by the memories the rule reader finds
        in what the person said (results in that order), with fine extraction queued; all in
        one unit of work."""
        parsed = ingest.parse(items)
        c = self._cube_for(cube)
        emb = self._embedder_for(c)
        if parsed.messages is not None:
            with self.store.unit_of_work():
                return ingest.store_conversation(self.store, self.user.id, c, parsed.messages, emb)
        return ingest.store_items(self.store, c, parsed.items, emb)

    @locked
    def remember(self, item: NewMemory | str, cube: str | None = None) -> tuple[Plan, MemoryItem]:
        """Add one memory through reconciliation (ADD / UPDATE / SUPERSEDE / NOOP)."""
        new = NewMemory(text=item) if isinstance(item, str) else item
        c = self._cube_for(cube)
        emb = self._embedder_for(c)
        vec = emb.embed([new.text])[0] if emb is not None else None
        plan = self.reconciler.plan(c, new, vec)
        return plan, self.reconciler.apply(c, plan, vec, emb.model_id if emb else "")

    @locked
    def correct(
        self,
        text: str,
        cube: str | None = None,
        *,
        target: str | None = None,
        replace_nothing: bool = False,
    ) -> tuple[MemoryItem, MemoryItem | None]:
        """A natural-language correction ("I moved to Berlin in May"): stored as new memories,
        and the memory it contradicts (same subject and attribute) is superseded, its history
        keeping both; the other parts of a compound memory are kept. When several memories
        could be meant, raises :class:`~memos_desktop.errors.AmbiguousError` with them as
        ``candidates`` and changes nothing: call again with ``target`` (an id) or
        ``replace_nothing=True``."""
        correction.check(text)
        c = self._cube_for(cube)
        emb = self._embedder_for(c)
        vec = emb.embed([text])[0] if emb is not None else None
        return correction.correct(
            self.store,
            c,
            text,
            emb.embed if emb is not None else None,
            emb.model_id if emb else "",
            lambda f, k: self._search(text, vec, c, f, k).hits,
            target=target,
            replace_nothing=replace_nothing,
        )

    @locked
    def search(
        self,
        query: str,
        filters: SearchFilters | None = None,
        top_k: int = 10,
        cube: str | None = None,
        mode: str = "fast",
        now: float | None = None,
    ) -> SearchResult:
        """``mode="fast"``: hybrid search. ``mode="fine"``: the chat model also rewrites the
        question into search queries whose results are fused in (falls back to fast).
        ``now``: the moment the question is asked (default: the clock), which "last week" or
        "in May" in it are resolved against."""
        if not query.strip():
            raise InvalidInputError("empty search", hint="give some words to search for")
        if mode not in ("fast", "fine"):
            raise InvalidInputError(f"unknown search mode {mode!r}", hint="use fast or fine")
        c = self._cube_for(cube)
        f = filters or SearchFilters()
        if not f.cube_ids:
            f = SearchFilters(**{**f.__dict__, "cube_ids": (c.id,)})
        emb = self._embedder_for(c)

        def run(q: str, k: int) -> SearchResult:
            vec = emb.embed([q])[0] if emb is not None else None
            return self._search(q, vec, c, f, k, now)

        if mode == "fast":
            return run(query, top_k)
        hits, queries = fine_search(query, lambda q, k: run(q, k).hits, self.engine, top_k)
        return SearchResult(
            hits, ("hybrid" if emb is not None else "lexical") + "+fine", tuple(queries)
        )

    def _search(
        self,
        query: str,
        vec: Any | None,
        c: Cube,
        f: SearchFilters,
        top_k: int,
        now: float | None = None,
    ) -> SearchResult:
        hits = self.hybrid.search(
            query,
            vec,
            c.embed_dim if vec is not None else None,
            f,
            top_k=top_k,
            params=self.store.settings.search,
            now=now,
        )
        return SearchResult(hits, "hybrid" if vec is not None else "lexical")

    @locked
    def get(self, item_id: str) -> MemoryItem:
        return self.store.memories.get(item_id)

    @locked
    def list(
        self,
        filters: SearchFilters | None = None,
        *,
        limit: int = 50,
        offset: int = 0,
        cube: str | None = None,
        all_cubes: bool = False,
    ) -> builtins.list[MemoryItem]:
        f = filters or SearchFilters()
        if not f.cube_ids and not all_cubes:
            f = SearchFilters(**{**f.__dict__, "cube_ids": (self._cube_for(cube).id,)})
        return self.store.memories.list(f, limit=limit, offset=offset)

    @locked
    def count(self, filters: SearchFilters | None = None, cube: str | None = None) -> int:
        f = filters or SearchFilters()
        if not f.cube_ids:
            f = SearchFilters(**{**f.__dict__, "cube_ids": (self._cube_for(cube).id,)})
        return self.store.memories.count(f)

    @locked
    def update(self, item_id: str, *, reason: str = "", **fields: Any) -> MemoryItem:
        item = self.get(item_id)
        embedding = None
        if fields.get("text") and fields["text"].strip() != item.text:
            cube = self.store.cubes.get(item.cube_id)
            emb = self._embedder_for(cube)
            if emb is not None:
                embedding = emb.embed([fields["text"]])[0]
        updated = self.store.memories.update(item.id, embedding=embedding, reason=reason, **fields)
        return updated

    @locked
    def forget(self, item_id: str, reason: str = "") -> MemoryItem:
        return self.store.memories.forget(item_id, reason)

    @locked
    def restore(self, item_id: str, reason: str = "") -> MemoryItem:
        return self.store.memories.restore(item_id, reason)

    @locked
    def purge(self, item_ids: Sequence[str]) -> int:
        return self.store.memories.purge(item_ids)

    @locked
    def history(self, item_id: str) -> builtins.list[MemoryVersion]:
        return self.store.memories.history(item_id)

    @locked
    def pin(self, item_id: str, pinned: bool = True) -> MemoryItem:
        """Pin to (or unpin from) the core profile: pinned memories are in every prompt's
        stable prefix (and so in its saved KV state)."""
        return self.update(item_id, pinned=pinned, reason="pinned" if pinned else "unpinned")
