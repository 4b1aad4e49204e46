"""Ingestion: what ``add`` stores and how.

Design rules:
- One input is text, memory items, or a conversation (``ChatMessage``s or role/content dicts,
  optionally with ``time``, a Unix timestamp). Everything is checked before anything is
  written.
- A conversation is recorded, each exchange is stored at once as a raw episode and the rule
  reader's memories go through the reconciler (MemReader fast mode: ``store_read``, shared
  with the chat turn), and its fine extraction is queued (``extract`` job), so nothing said
  is lost.
- Unchanged text is never embedded twice: the content hash is looked up first.
- Only an item's text is embedded; its retrieval context goes to the full-text index only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from memos_desktop.engines.base import ChatMessage, Embedder
from memos_desktop.errors import InvalidInputError
from memos_desktop.memory.reader import exchange_item, read_message
from memos_desktop.memory.reconcile import Reconciler
from memos_desktop.store.memories import AddResult
from memos_desktop.store.profile import Store
from memos_desktop.store.records import Cube, Message, NewMemory, content_hash

AddInput = Sequence[NewMemory] | Sequence[ChatMessage] | Sequence[dict[str, Any]] | NewMemory | str
ROLES = ("user", "assistant", "system")


@dataclass(frozen=True)
class ParsedMessage:
    role: str
    content: str
    at: float | None


@dataclass(frozen=True)
class Ingest:
    """What an ``add`` input is: memory items, or a conversation (``messages`` set)."""

    items: tuple[NewMemory, ...] = ()
    messages: tuple[ParsedMessage, ...] | None = None


def embed_text(item: NewMemory) -> str:
    """What is embedded for an item. Only its text: on LoCoMo, embedding the previous turn as
    context lowered vector-only R@10 from 0.440 to 0.422, while the same context in BM25 raised
    R@10 from 0.603 to 0.668 (BENCHMARKS.md), so context goes to the full-text index only."""
    return item.text


def parse(items: AddInput) -> Ingest:
    """Classify and check an ``add`` input (raises InvalidInputError, nothing written)."""
    if (
        isinstance(items, Sequence)
        and items
        and not isinstance(items, str)
        and all(isinstance(m, ChatMessage | dict) for m in items)
    ):
        return Ingest(
            messages=parse_conversation(cast(Sequence[ChatMessage | dict[str, Any]], items))
        )
    if isinstance(items, str):
        memories: Sequence[NewMemory] = [NewMemory(text=items)]
    elif isinstance(items, NewMemory):
        memories = [items]
    else:
        memories = cast(Sequence[NewMemory], items)
    if not all(isinstance(m, NewMemory) for m in memories):
        raise InvalidInputError(
            "add() takes text, memory items, or a conversation (role/content messages)"
        )
    return Ingest(items=tuple(memories))


def parse_conversation(
    messages: Sequence[ChatMessage | dict[str, Any]],
) -> tuple[ParsedMessage, ...]:
    parsed: list[ParsedMessage] = []
    for m in messages:
        role = m.role if isinstance(m, ChatMessage) else str(m.get("role", ""))
        content = m.content if isinstance(m, ChatMessage) else str(m.get("content", ""))
        at = None if isinstance(m, ChatMessage) else m.get("time")
        if role not in ROLES or not content.strip():
            raise InvalidInputError(
                f"a conversation message needs a role (user/assistant) and content, got {role!r}",
                hint="pass dicts like {'role': 'user', 'content': '...'}",
            )
        parsed.append(ParsedMessage(role, content, float(at) if at is not None else None))
    return tuple(parsed)


def store_items(
    store: Store, cube: Cube, items: Sequence[NewMemory], embedder: Embedder | None
) -> list[AddResult]:
    """Store memory items with their embeddings (``embedder`` None: full-text only, embedded
    later). Text the cube already holds is not embedded again."""
    vectors = None
    if embedder is not None and items:
        # Content hash first: those rows stay zero; add_many reports the existing item for
        # them and ignores the row.
        known = store.memories.known_hashes(cube.id, [content_hash(n.text) for n in items])
        todo = [i for i, n in enumerate(items) if content_hash(n.text) not in known]
        vectors = np.zeros((len(items), embedder.dim), dtype=np.float32)
        if todo:
            vectors[todo] = embedder.embed([embed_text(items[i]) for i in todo])
    return store.memories.add_many(
        cube, items, vectors, embed_model=embedder.model_id if embedder else ""
    )


def store_read(
    store: Store,
    cube: Cube,
    exchanges: Sequence[tuple[Message, Message | None]],
    embedder: Embedder | None,
) -> list[AddResult]:
    """Fast mode for recorded exchanges (user message, the answer or None): each one's raw
    episode, then the memories the rule reader finds in what the person said, each through
    the reconciler (a duplicate is not stored twice; a new value of the same attribute
    supersedes the old one). Returns, per exchange, the episode then its memories. Call inside
    the caller's unit of work."""
    read = [read_message(u, a) for u, a in exchanges]
    episodes = [
        exchange_item(u, a, read=bool(r)) for (u, a), r in zip(exchanges, read, strict=True)
    ]
    results = store_items(store, cube, episodes, embedder)
    out: list[AddResult] = []
    reconciler = Reconciler(store)
    model = embedder.model_id if embedder is not None else ""
    embed = embedder.embed if embedder is not None else None
    for episode, reads in zip(results, read, strict=True):
        out.append(episode)
        vectors = embed([r.memory.text for r in reads]) if embed is not None and reads else None
        for i, r in enumerate(reads):
            vec = vectors[i] if vectors is not None else None
            plan = reconciler.plan(cube, r.memory, vec, r.statement)
            item = reconciler.apply(cube, plan, vec, model, embed)
            out.append(AddResult(item=item, created=plan.action in ("add", "supersede")))
    return out


def store_conversation(
    store: Store,
    user_id: str,
    cube: Cube,
    messages: Sequence[ParsedMessage],
    embedder: Embedder | None,
) -> list[AddResult]:
    """Record an imported conversation, store each exchange as a raw episode and what the
    reader finds in it, queue extraction. Call inside a unit of work (the API does)."""
    conv = store.conversations.create(user_id, cube.id, title="imported")
    recorded = [
        store.conversations.add_message(conv.id, m.role, m.content, at=m.at) for m in messages
    ]
    exchanges = [
        (m, nxt if nxt is not None and nxt.role == "assistant" else None)
        for m, nxt in zip(recorded, [*recorded[1:], None], strict=True)
        if m.role == "user"
    ]
    results = store_read(store, cube, exchanges, embedder) if exchanges else []
    store.jobs.enqueue(
        "extract",
        {"conversation_id": conv.id, "cube_id": cube.id, "message_ids": [m.id for m in recorded]},
        dedupe_key=f"extract:{conv.id}",
    )
    return results
