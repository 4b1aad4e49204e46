"""Memory-augmented chat: retrieve, assemble, restore the prefix's KV state, stream, record.

Design rules:
- The turn is recorded only after the answer is complete (or cancelled: then the question is
  kept and the partial answer is marked as such), and then the exchange is stored at once as a
  raw episodic memory (MemReader fast mode) and a fine-extraction job is queued for the daemon,
  all in one unit of work (a crash leaves all of these records or none).
- Temporary chats write nothing: no conversation, no message, no memory, no job, no KV state.
- The stable prefix's KV state is looked up under (model sha256, adapter, prefix sha256,
  settings); on a miss it is computed and saved (encrypted, in the profile DB) for next time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from memos_desktop.engines.base import (
    CancelToken,
    ChatEngine,
    Embedder,
    GenerationStats,
    KVState,
    SamplingParams,
)
from memos_desktop.memory.consolidate import EXTRACT
from memos_desktop.memory.ingest import store_read
from memos_desktop.memory.scheduler import Assembled, Budget, Scheduler, UsedMemory
from memos_desktop.store.profile import Store
from memos_desktop.store.records import Cube, Message, SearchHit

log = logging.getLogger(__name__)

Retriever = Callable[[str, int], Sequence[SearchHit]]


@dataclass
class ChatTurn:
    """One answer in progress. Iterate it for text; afterwards read the fields."""

    conversation_id: str | None
    used: tuple[UsedMemory, ...]
    kv_restored: bool
    prefix_tokens: int
    _stream: Iterator[str] = field(repr=False, default_factory=lambda: iter(()))
    answer: str = ""
    stats: GenerationStats | None = None
    done: bool = False

    def __iter__(self) -> Iterator[str]:
        yield from self._stream


class ChatService:
    def __init__(
        self,
        store: Store,
        engine: ChatEngine,
        embedder: Embedder | None,
        cube: Cube,
        user_id: str,
        retrieve: Retriever,
        budget: Budget | None = None,
    ) -> None:
        """``retrieve(query, top_k)`` is the API's hybrid search over this cube."""
        self.retrieve = retrieve
        self.store = store
        self.engine = engine
        self.embedder = embedder
        self.cube = cube
        self.user_id = user_id
        self.conversations = store.conversations
        self.jobs = store.jobs
        self.activation = store.activations
        self.scheduler = Scheduler(store, engine.count_tokens, budget or Budget())

    def prepare_prefix(self, assembled: Assembled, *, save: bool) -> tuple[bool, int]:
        """Restore the prefix's KV state from activation memory, or compute (and save) it."""
        e = self.engine
        key = (e.model_sha256, e.adapter_id, e.prefix_sha256(assembled.prefix), e.settings_key)
        rec = self.activation.get(*key)
        if rec is not None and e.restore_prefix_state(KVState.from_record(rec), assembled.prefix):
            return True, rec.n_tokens
        state = e.save_prefix_state(assembled.prefix)
        if save:
            self.activation.put(state, user_id=self.user_id, cube_id=self.cube.id)
            self.activation.evict_to(self.store.settings.engine.activation_cache_mib * 2**20)
        return False, state.n_tokens

    def turn(
        self,
        query: str,
        conversation_id: str | None = None,
        *,
        temporary: bool = False,
        sampling: SamplingParams | None = None,
        cancel: CancelToken | None = None,
    ) -> ChatTurn:
        now = time.time()
        conv_id = conversation_id
        history: list[Message] = []
        if not temporary:
            if conv_id is None:
                conv_id = self.conversations.create(self.user_id, self.cube.id, title=query[:60]).id
            else:
                history = self.conversations.messages(conv_id, last=20)
        hits = self.retrieve(query, self.scheduler.budget.top_k)
        assembled = self.scheduler.assemble(self.cube, query, hits, history, now=now)
        restored, n_prefix = self.prepare_prefix(assembled, save=not temporary)
        turn = ChatTurn(
            conversation_id=conv_id,
            used=assembled.used,
            kv_restored=restored,
            prefix_tokens=n_prefix,
        )

        def stream() -> Iterator[str]:
            parts: list[str] = []
            for chunk in self.engine.chat_stream(assembled.messages, sampling, cancel):
                if chunk.text:
                    parts.append(chunk.text)
                    yield chunk.text
                if chunk.stats is not None:
                    turn.stats = chunk.stats
            turn.answer = "".join(parts)
            turn.done = True
            if not temporary and conv_id is not None:
                self._record(conv_id, query, turn, now)

        turn._stream = stream()
        return turn

    def _record(self, conv_id: str, query: str, turn: ChatTurn, asked_at: float) -> None:
        """Both messages, the used-memory marks, the raw episode and its extraction job: one
        unit of work, so a crash leaves all of them or none."""
        with self.store.unit_of_work():
            self._record_writes(conv_id, query, turn, asked_at)

    def _record_writes(self, conv_id: str, query: str, turn: ChatTurn, asked_at: float) -> None:
        cancelled = turn.stats is not None and turn.stats.finish_reason == "cancelled"
        user_msg = self.conversations.add_message(conv_id, "user", query, at=asked_at)
        meta: dict[str, Any] = {
            "used": [u.to_json() for u in turn.used],
            "kv_restored": turn.kv_restored,
        }
        if turn.stats is not None:
            meta["stats"] = {
                "ttft_s": turn.stats.ttft_s,
                "tokens_per_s": turn.stats.tokens_per_s,
                "prompt_tokens": turn.stats.prompt_tokens,
                "completion_tokens": turn.stats.completion_tokens,
                "finish_reason": turn.stats.finish_reason,
            }
        if cancelled:
            meta["cancelled"] = True
        bot_msg = self.conversations.add_message(conv_id, "assistant", turn.answer, meta=meta)
        self.store.memories.mark_used([u.id for u in turn.used if u.origin != "core"])
        emb = self.embedder
        if emb is None or emb.model_id != self.cube.embed_model:
            emb = None
        # A stopped message sent again reads the same memories: the reconciler keeps one.
        store_read(self.store, self.cube, [(user_msg, bot_msg)], emb)
        self.jobs.enqueue(
            EXTRACT.name,
            {
                "conversation_id": conv_id,
                "cube_id": self.cube.id,
                "message_ids": [user_msg.id, bot_msg.id],
            },
            dedupe_key=f"extract:{user_msg.id}",
        )
