"""Scheduler: working memory per conversation, retrieval within a token budget, prompt assembly.

The prompt is assembled in three parts, in this order:

1. the **stable prefix** (system messages): persona, pinned core memories, user profile
   (preferences). It changes rarely, so its KV state is saved once as activation memory and
   restored on the next chat instead of being prefilled again;
2. the **retrieved memories** for this query (hybrid search + recency + importance + the
   conversation's working set), as many as fit the retrieval budget;
3. the **recent turns** of the conversation, newest kept first, then the question.

Design rules:
- Every memory that reaches the prompt is reported back (id, score, where it came from), so
  front ends can show which memories an answer used; one left out is not reported.
- A chat model (``style == "chat"``) gets chat messages for its own template. A base model
  (``style == "completion"``) gets the few-shot prompt of ``completion.py`` in the same three
  parts: the stable prefix (examples + core memories) as the system message, the rest as one
  user message, so the prefix's KV state is saved and restored the same way.
- A stopped (cancelled) exchange is left out of the recent turns: its question was put back in
  the prompt box and is normally sent again.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from memos_desktop.engines.base import ChatMessage
from memos_desktop.memory import completion, statements
from memos_desktop.memory.reader import READ_KEY, grounded
from memos_desktop.store.profile import Store
from memos_desktop.store.records import Cube, MemoryItem, Message, SearchFilters, SearchHit

PERSONA = (
    "You are Memos, a private assistant that runs entirely on this computer. You remember what "
    "the user told you in earlier conversations. Use the memories below when they are relevant "
    "and say plainly when you do not know. Answer briefly and directly."
)


@dataclass(frozen=True)
class UsedMemory:
    id: str
    text: str
    type: str
    score: float
    origin: str  # "core" (pinned/profile), "retrieved", "working"
    sources: tuple[dict[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "type": self.type,
            "score": self.score,
            "origin": self.origin,
            "sources": list(self.sources),
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> UsedMemory:
        """What :meth:`to_json` recorded with an answer (in the message's meta)."""
        return UsedMemory(
            d["id"],
            d["text"],
            d["type"],
            float(d["score"]),
            d["origin"],
            tuple(d.get("sources") or ()),
        )


@dataclass(frozen=True)
class Budget:
    core_tokens: int = 300
    retrieved_tokens: int = 500
    history_tokens: int = 600
    top_k: int = 12
    # A base model reads few notes well: at most this many retrieved ones (the best-scored).
    completion_notes: int = 4


@dataclass(frozen=True)
class Assembled:
    prefix: tuple[ChatMessage, ...]
    messages: tuple[ChatMessage, ...]
    used: tuple[UsedMemory, ...]
    tokens: dict[str, int] = field(default_factory=dict)


def _date(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%d %b %Y")


def memory_line(item: MemoryItem) -> str:
    return f"- [{_date(item.valid_from or item.created_at)}] {item.text}"


# The best hits a base model sees again beside the question when they are core facts.
CORE_REPEATS = 2
# Recent exchanges a base model sees before the question (more and it copies old answers).
HISTORY_EXCHANGES = 2


def _notes(items: Iterable[MemoryItem]) -> list[str]:
    """The memories as plain facts (completion prompts), each once, in the given order."""
    out: dict[str, None] = {}
    for i in items:
        note = completion.note_text(i.text)
        if note is not None:
            out.setdefault(note)
    return list(out)


def _intact(episode: MemoryItem, pieces: Sequence[MemoryItem]) -> bool:
    """Does everything the reader found in ``episode``'s message still hold as it was read?
    All active, none edited, none purged: the pieces are exactly what the reader reads from
    the message again (a piece merged into an older duplicate also fails: then the pieces
    speak, as before)."""
    if episode.status != "active" or any(i.status != "active" for i in pieces):
        return False
    said = re.sub(r"^[^:\n]{1,40}:\s*", "", episode.text, count=1)  # "User: ..."
    expect = {st.text for st in statements.read(said) if grounded(st.text, said)}
    return bool(expect) and {i.text for i in pieces} == expect


def finished(history: Sequence[Message]) -> list[Message]:
    """The messages of a conversation without its stopped exchanges (a cancelled answer and
    the question before it)."""
    out: list[Message] = []
    for m in history:
        if m.role == "assistant" and m.meta.get("cancelled"):
            if out and out[-1].role == "user":
                out.pop()
            continue
        out.append(m)
    return out


def used_memory(item: MemoryItem, score: float, origin: str) -> UsedMemory:
    return UsedMemory(
        item.id, item.text, item.type, score, origin, tuple(s.to_json() for s in item.sources)
    )


class Scheduler:
    def __init__(
        self,
        store: Store,
        count_tokens: Callable[[str], int],
        budget: Budget = Budget(),
        persona: str = PERSONA,
        style: str = "chat",
    ) -> None:
        self.store = store
        self.count = count_tokens
        self.budget = budget
        self.persona = persona
        self.style = style

    def core_memories(self, cube: Cube) -> list[MemoryItem]:
        """Pinned memories, then profile-layer items by importance, within the core budget."""
        pinned = self.store.memories.list(
            SearchFilters(cube_ids=(cube.id,), pinned=True), limit=50, order="importance DESC"
        )
        profile = self.store.memories.list(
            SearchFilters(cube_ids=(cube.id,), layers=("user",), pinned=False),
            limit=50,
            order="importance DESC",
        )
        out: list[MemoryItem] = []
        used = 0
        for item in [*pinned, *profile]:
            if self.style == "completion" and completion.note_text(item.text) is None:
                continue
            t = self.count(item.text) + 4
            if used + t > self.budget.core_tokens:
                continue
            out.append(item)
            used += t
        # Stable order so the prefix (and its KV state) does not change between turns.
        return sorted(out, key=lambda i: i.created_at)

    def prefix(self, cube: Cube) -> tuple[tuple[ChatMessage, ...], list[MemoryItem]]:
        core = self.core_memories(cube)
        if self.style == "completion":
            notes = _notes(core)
            return (ChatMessage("system", completion.prefix_text(notes)),), core
        text = self.persona
        if core:
            text += "\n\nWhat you know about the user:\n" + "\n".join(memory_line(i) for i in core)
        return (ChatMessage("system", text),), core

    def note_for(self, item: MemoryItem) -> str | None:
        """A memory as a base model's note: what the person said in the message it was read
        from, whole, while everything the reader found in that message still holds ("I work
        as a software tester at Lumina Soft" for "I am a software tester"; "gym locker code
        is 4471, I keep forgetting it" for "I keep forgetting it"). The reader's pieces keep
        a statement's parts apart for corrections and the memory list, but lose what its
        patterns did not read; a small model answers from the whole better. Once one of them
        was replaced, forgotten, edited or purged, the message holds what no longer holds,
        and the memory speaks for itself (and the message, found itself, is no note)."""
        read = item.type == "episode" and item.key == READ_KEY
        if (item.type == "episode" and not read) or item.source != "conversation":
            return completion.note_text(item.text)
        said = self.store.memories.said_with(item)
        episode = item if read else next((i for i in said if i.key == READ_KEY), None)
        if episode is None or not _intact(episode, [i for i in said if i.type != "episode"]):
            # the message holds what no longer holds: its memories speak for themselves
            return None if read else completion.note_text(item.text)
        return completion.note_text(episode.text) or (
            None if read else completion.note_text(item.text)
        )

    def working_set(self, history: Sequence[Message]) -> list[str]:
        """Ids of memories used earlier in this conversation (most recent first)."""
        seen: list[str] = []
        for m in reversed(history):
            for u in m.meta.get("used", []):
                if isinstance(u, dict) and u.get("id") and u["id"] not in seen:
                    seen.append(str(u["id"]))
        return seen

    def assemble(
        self,
        cube: Cube,
        query: str,
        hits: Sequence[SearchHit],
        history: Sequence[Message],
        *,
        now: float,
        note_of: Callable[[MemoryItem], str | None] | None = None,
    ) -> Assembled:
        """``note_of``: a memory's note for a base model (default :meth:`note_for`; a caller
        that already asked for some passes its memo)."""
        note_of = note_of or self.note_for
        prefix, core = self.prefix(cube)
        used = [used_memory(i, 1.0, "core") for i in core]
        core_ids = {i.id for i in core}
        plain = self.style == "completion"
        seen_notes = set(_notes(core)) if plain else set()
        chosen: list[tuple[MemoryItem, float, str, str]] = []
        budget = self.budget.retrieved_tokens

        def take(item: MemoryItem, score: float, origin: str, again: bool = False) -> None:
            nonlocal budget
            if item.type == "episode" and item.key == READ_KEY and not plain:
                return  # the memories read from it stand for it (and carry corrections)
            note = note_of(item) if plain else None
            if plain and (note is None or (note in seen_notes and not again)):
                return  # no fact in it (a question), or already in the notes
            t = self.count(note or item.text) + 8
            if t > budget or (plain and len(chosen) >= self.budget.completion_notes):
                return
            if note is not None:
                seen_notes.add(note)
            chosen.append((item, score, origin, note or ""))
            budget -= t

        for rank, h in enumerate(hits):
            if h.item.id not in core_ids:
                take(h.item, h.score, "retrieved")
            elif plain and rank < CORE_REPEATS:
                # A base model answers from the notes nearest the question: a core fact that
                # is the best hit ("My name is Marta" for "What is my name?") is said again
                # there, or a retrieved "My mother's name is Rosa" wins.
                take(h.item, h.score, "retrieved", again=True)
        have = {i.id for i, *_ in chosen} | core_ids
        for wid in self.working_set(history):
            if wid in have:
                continue
            try:
                item = self.store.memories.get(wid)
            except Exception:
                continue
            if item.status == "active":
                take(item, 0.0, "working")
        used += [used_memory(i, s, o) for i, s, o, _ in chosen if i.id not in core_ids]
        by_time = sorted(chosen, key=lambda c: c[0].valid_from or c[0].created_at)

        recent: list[ChatMessage] = []
        hist_budget = self.budget.history_tokens
        for m in reversed(finished(history)):
            t = self.count(m.content) + 6
            if t > hist_budget:
                break
            recent.insert(0, ChatMessage(m.role, m.content))
            hist_budget -= t
        # The prompt must start with a user turn after the system prefix.
        while recent and recent[0].role != "user":
            recent.pop(0)

        if plain:
            pairs = [
                (recent[i].content, recent[i + 1].content)
                for i in range(len(recent) - 1)
                if recent[i].role == "user" and recent[i + 1].role == "assistant"
            ][-HISTORY_EXCHANGES:]
            text = completion.question_text(
                list(dict.fromkeys(n for *_, n in by_time)), pairs, query, any_notes=bool(core)
            )
            messages: tuple[ChatMessage, ...] = (*prefix, ChatMessage("user", text))
        else:
            question = query
            if chosen:
                block = "\n".join(memory_line(i) for i, *_ in by_time)
                question = (
                    f"Memories that may be relevant (today is {_date(now)}):\n{block}\n\n{query}"
                )
            messages = (*prefix, *recent, ChatMessage("user", question))
        return Assembled(
            prefix=prefix,
            messages=messages,
            used=tuple(used),
            tokens={
                "core": self.budget.core_tokens - 0,
                "retrieved": self.budget.retrieved_tokens - budget,
                "history": self.budget.history_tokens - hist_budget,
            },
        )
