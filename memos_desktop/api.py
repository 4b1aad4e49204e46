"""The facade every front end uses (CLI, TUI, daemon): MemOS-like add / search / get / list /
update / forget / restore / purge / history, on one open profile.

Design rules:
- Front ends call this module only; it calls ``memory`` / ``store`` / ``engines``.
- The embedder is injected. Without one (model missing) memories are still stored and found by
  full-text search, and are re-embedded later (:meth:`MemosAPI.reembed`): nothing is lost.
- Unchanged text is never embedded twice (content hash first).
"""

from __future__ import annotations

import builtins
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from memos_desktop.config import Paths, Settings, save_settings
from memos_desktop.engines import models
from memos_desktop.engines.base import (
    CancelToken,
    ChatEngine,
    ChatMessage,
    Embedder,
    SamplingParams,
)
from memos_desktop.engines.catalog import Kind
from memos_desktop.engines.models import ModelInfo
from memos_desktop.errors import InvalidInputError
from memos_desktop.memory.chat import ChatService, ChatTurn
from memos_desktop.memory.consolidate import RunReport, run_pending
from memos_desktop.memory.reader import exchange_item
from memos_desktop.memory.reconcile import Plan, Reconciler
from memos_desktop.memory.retrieve import fine_search
from memos_desktop.memory.scheduler import Budget
from memos_desktop.store.memories import AddResult
from memos_desktop.store.models import (
    Conversation,
    Cube,
    MemoryItem,
    MemoryVersion,
    Message,
    NewMemory,
    SearchFilters,
    SearchHit,
    User,
    content_hash,
)
from memos_desktop.store.profile import DEFAULT_CUBE, PassphraseProvider, Store, open_profile

log = logging.getLogger(__name__)

EmbedderFactory = Callable[[], Embedder | None]
EngineFactory = Callable[[], ChatEngine]


@dataclass(frozen=True)
class SearchResult:
    hits: list[SearchHit]
    mode: str  # "hybrid" or "lexical" (no embedder), "+fine" when the model rewrote the query
    rewrites: tuple[str, ...] = ()


def embed_text(item: NewMemory) -> str:
    """What is embedded for an item. Only its text: on LoCoMo, embedding the previous turn as
    context lowered vector-only R@10 from 0.440 to 0.422, while the same context in BM25 raised
    R@10 from 0.603 to 0.668 (BENCHMARKS.md), so context goes to the full-text index only."""
    return item.text


class MemosAPI:
    def __init__(
        self,
        store: Store,
        embedder: Embedder | None,
        *,
        user: str | None = None,
        engine_factory: EngineFactory | None = None,
        budget: Budget | None = None,
    ) -> None:
        self.store = store
        self.budget = budget or Budget()
        self.embedder = embedder
        users = store.users.list()
        self.user: User = store.users.get(user) if user else users[0]
        self._cube: Cube | None = None
        self._engine_factory = engine_factory
        self._engine: ChatEngine | None = None
        self.reconciler = Reconciler(store)

    # --- users ------------------------------------------------------------------------------

    def switch_user(self, name: str) -> User:
        """Each user has their own cubes (and so their own memories, KV states, adapters)."""
        self.user = self.store.users.get(name)
        self._cube = None
        return self.user

    def create_user(self, name: str) -> User:
        return self.store.users.create(name)

    # --- cubes ------------------------------------------------------------------------------

    @property
    def cube(self) -> Cube:
        if self._cube is None:
            cubes = self.store.cubes.list(self.user)
            if cubes:
                named = [c for c in cubes if c.name == DEFAULT_CUBE]
                self._cube = named[0] if named else cubes[0]
            else:
                self._cube = self.create_cube(DEFAULT_CUBE)
        return self._cube

    def use_cube(self, name_or_id: str) -> Cube:
        self._cube = self.store.cubes.get(name_or_id, self.user)
        return self._cube

    def create_cube(self, name: str, description: str = "") -> Cube:
        model = self.embedder.model_id if self.embedder else "none"
        dim = self.embedder.dim if self.embedder else 384
        return self.store.cubes.create(
            self.user, name, embed_model=model, embed_dim=dim, description=description
        )

    def list_cubes(self) -> list[Cube]:
        return self.store.cubes.list(self.user)

    def rename_cube(self, name_or_id: str, new_name: str) -> Cube:
        cube = self.store.cubes.rename(self._cube_for(name_or_id), new_name)
        if self._cube is not None and self._cube.id == cube.id:
            self._cube = cube
        return cube

    def delete_cube(self, name_or_id: str) -> int:
        cube = self._cube_for(name_or_id)
        n = self.store.cubes.delete(cube)
        if self._cube is not None and self._cube.id == cube.id:
            self._cube = None
        return n

    def _cube_for(self, cube: str | None) -> Cube:
        return self.store.cubes.get(cube, self.user) if cube else self.cube

    def _embedder_for(self, cube: Cube) -> Embedder | None:
        e = self.embedder
        if e is None:
            return None
        if e.model_id != cube.embed_model or e.dim != cube.embed_dim:
            log.warning("embedder %s does not match cube model %s", e.model_id, cube.embed_model)
            return None
        return e

    # --- memory -----------------------------------------------------------------------------

    def add(
        self,
        items: Sequence[NewMemory]
        | Sequence[ChatMessage]
        | Sequence[dict[str, Any]]
        | NewMemory
        | str,
        cube: str | None = None,
    ) -> list[AddResult]:
        """Remember text, memory items, or a conversation (``ChatMessage``s or dicts with role,
        content and optionally ``time``, a Unix timestamp): a conversation is recorded and each
        exchange stored at once as a raw memory (fast mode), with fine extraction queued."""
        if (
            isinstance(items, Sequence)
            and items
            and not isinstance(items, str)
            and all(isinstance(m, ChatMessage | dict) for m in items)
        ):
            return self._add_conversation(cast(Sequence[ChatMessage | dict[str, Any]], items), cube)
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
        return self._add_items(memories, cube)

    def _add_items(self, items: Sequence[NewMemory], cube: str | None) -> list[AddResult]:
        c = self._cube_for(cube)
        emb = self._embedder_for(c)
        vectors = None
        if emb is not None and items:
            # Content hash first: text the cube already holds is not embedded again (those
            # rows stay zero; add_many reports the existing item for them and ignores the row).
            known = self.store.memories.known_hashes(c.id, [content_hash(n.text) for n in items])
            todo = [i for i, n in enumerate(items) if content_hash(n.text) not in known]
            vectors = np.zeros((len(items), emb.dim), dtype=np.float32)
            if todo:
                vectors[todo] = emb.embed([embed_text(items[i]) for i in todo])
        return self.store.memories.add_many(
            c, items, vectors, embed_model=emb.model_id if emb else ""
        )

    def _add_conversation(
        self, messages: Sequence[ChatMessage | dict[str, Any]], cube: str | None
    ) -> list[AddResult]:
        c = self._cube_for(cube)
        parsed: list[tuple[str, str, float | None]] = []
        for m in messages:  # all checked before anything is written
            role = m.role if isinstance(m, ChatMessage) else str(m.get("role", ""))
            content = m.content if isinstance(m, ChatMessage) else str(m.get("content", ""))
            at = None if isinstance(m, ChatMessage) else m.get("time")
            if role not in ("user", "assistant", "system") or not content.strip():
                raise InvalidInputError(
                    f"a conversation message needs a role (user/assistant) and content, got "
                    f"{role!r}",
                    hint="pass dicts like {'role': 'user', 'content': '...'}",
                )
            parsed.append((role, content, float(at) if at is not None else None))
        conv = self.store.conversations.create(self.user.id, c.id, title="imported")
        recorded = [
            self.store.conversations.add_message(conv.id, role, content, at=at)
            for role, content, at in parsed
        ]
        items = [
            exchange_item(m, nxt if nxt is not None and nxt.role == "assistant" else None)
            for m, nxt in zip(recorded, [*recorded[1:], None], strict=True)
            if m.role == "user"
        ]
        results = self._add_items(items, c.id) if items else []
        self.store.jobs.enqueue(
            "extract",
            {"conversation_id": conv.id, "cube_id": c.id, "message_ids": [m.id for m in recorded]},
            dedupe_key=f"extract:{conv.id}",
        )
        return results

    def remember(self, item: NewMemory | str, cube: str | None = None) -> tuple[Plan, MemoryItem]:
        """Add one memory through reconciliation (ADD / UPDATE / SUPERSEDE / NOOP)."""
        new = NewMemory(text=item) if isinstance(item, str) else item
        c = self._cube_for(cube)
        emb = self._embedder_for(c)
        vec = emb.embed([new.text])[0] if emb is not None else None
        plan = self.reconciler.plan(c, new, vec)
        return plan, self.reconciler.apply(c, plan, vec, emb.model_id if emb else "")

    def correct(self, text: str, cube: str | None = None) -> tuple[MemoryItem, MemoryItem | None]:
        """A natural-language correction ("I moved to Berlin in May"): stored as a new fact that
        supersedes the most related active fact, whose history keeps both."""
        if not text.strip():
            raise InvalidInputError("an empty correction", hint="say what is true now")
        c = self._cube_for(cube)
        emb = self._embedder_for(c)
        vec = emb.embed([text])[0] if emb is not None else None
        kinds = ("fact", "preference", "event", "instruction", "episode")
        hits = self._search(text, vec, c, SearchFilters(cube_ids=(c.id,), types=kinds), 5).hits
        target = None
        for h in hits:
            if h.distance is not None and 1.0 - h.distance < self.CORRECTION_MIN_COSINE:
                continue
            if h.distance is None and h.fts_rank is None:
                continue
            target = h.item
            break
        new = NewMemory(
            text=text.strip(),
            type="fact",
            key=target.key if target is not None else "",
            source="user",
            importance=max(0.6, target.importance if target else 0.6),
        )
        added = self.store.memories.add_many(
            c,
            [new],
            None if vec is None else [vec],
            embed_model=emb.model_id if emb else "",
            dedupe=False,
        )[0].item
        if target is not None:
            self.store.memories.supersede(target.id, added.id, reason=f"corrected: {text.strip()}")
            target = self.get(target.id)
        return added, target

    CORRECTION_MIN_COSINE = 0.3

    # --- chat -------------------------------------------------------------------------------

    def set_engine_factory(self, factory: EngineFactory | None) -> None:
        """Switch the chat model: the current engine is closed, the next one loads lazily."""
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        self._engine_factory = factory

    @property
    def engine(self) -> ChatEngine:
        if self._engine is None:
            if self._engine_factory is None:
                raise InvalidInputError(
                    "no chat model is configured",
                    hint="`memos-desktop models list` shows what is there",
                )
            self._engine = self._engine_factory()
        return self._engine

    def chat(
        self,
        query: str,
        conversation_id: str | None = None,
        *,
        temporary: bool = False,
        sampling: SamplingParams | None = None,
        cancel: CancelToken | None = None,
    ) -> ChatTurn:
        """Retrieve, assemble, stream; iterate the returned turn for text. After the stream ends
        the turn is recorded (unless temporary) and its fast-mode memory is stored."""
        if not query.strip():
            raise InvalidInputError("an empty message", hint="type something to ask")
        c = self.cube
        svc = ChatService(
            self.store,
            self.engine,
            self._embedder_for(c),
            c,
            self.user.id,
            lambda q, k: self.search(q, top_k=k, cube=c.id).hits,
            self.budget,
        )
        return svc.turn(
            query, conversation_id, temporary=temporary, sampling=sampling, cancel=cancel
        )

    def consolidate(self, limit: int = 50) -> RunReport:
        """Run pending consolidation jobs now (fine extraction of recent conversations)."""
        return run_pending(
            self.store,
            self.engine,
            self._embedder_for(self.cube),
            user_name=self.user.display_name,
            limit=limit,
        )

    def search(
        self,
        query: str,
        filters: SearchFilters | None = None,
        top_k: int = 10,
        cube: str | None = None,
        mode: str = "fast",
    ) -> SearchResult:
        """``mode="fast"``: hybrid search. ``mode="fine"``: the chat model also rewrites the
        question into search queries whose results are fused in (falls back to fast)."""
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
            return self._search(q, vec, c, f, k)

        if mode == "fast":
            return run(query, top_k)
        hits, queries = fine_search(query, lambda q, k: run(q, k).hits, self.engine, top_k)
        return SearchResult(
            hits, ("hybrid" if emb is not None else "lexical") + "+fine", tuple(queries)
        )

    def _search(
        self, query: str, vec: Any | None, c: Cube, f: SearchFilters, top_k: int
    ) -> SearchResult:
        hits = self.store.searcher.search(
            query,
            vec,
            c.embed_dim if vec is not None else None,
            f,
            top_k=top_k,
            params=self.store.settings.search,
        )
        return SearchResult(hits, "hybrid" if vec is not None else "lexical")

    def get(self, item_id: str) -> MemoryItem:
        return self.store.memories.get(item_id)

    def list(
        self,
        filters: SearchFilters | None = None,
        *,
        limit: int = 50,
        offset: int = 0,
        cube: str | None = None,
        all_cubes: bool = False,
    ) -> list[MemoryItem]:
        f = filters or SearchFilters()
        if not f.cube_ids and not all_cubes:
            f = SearchFilters(**{**f.__dict__, "cube_ids": (self._cube_for(cube).id,)})
        return self.store.memories.list(f, limit=limit, offset=offset)

    def count(self, filters: SearchFilters | None = None, cube: str | None = None) -> int:
        f = filters or SearchFilters()
        if not f.cube_ids:
            f = SearchFilters(**{**f.__dict__, "cube_ids": (self._cube_for(cube).id,)})
        return self.store.memories.count(f)

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

    def forget(self, item_id: str, reason: str = "") -> MemoryItem:
        return self.store.memories.forget(item_id, reason)

    def restore(self, item_id: str, reason: str = "") -> MemoryItem:
        return self.store.memories.restore(item_id, reason)

    def purge(self, item_ids: Sequence[str]) -> int:
        return self.store.memories.purge(item_ids)

    def history(self, item_id: str) -> builtins.list[MemoryVersion]:
        return self.store.memories.history(item_id)

    def pin(self, item_id: str, pinned: bool = True) -> MemoryItem:
        """Pin to (or unpin from) the core profile: pinned memories are in every prompt's
        stable prefix (and so in its saved KV state)."""
        return self.update(item_id, pinned=pinned, reason="pinned" if pinned else "unpinned")

    # --- conversations ----------------------------------------------------------------------

    def conversations(
        self, *, archived: bool = False, limit: int = 200
    ) -> builtins.list[Conversation]:
        return self.store.conversations.list(self.user.id, archived=archived, limit=limit)

    def conversation(self, conv_id: str) -> Conversation:
        return self.store.conversations.get(conv_id)

    def messages(self, conv_id: str) -> builtins.list[Message]:
        return self.store.conversations.messages(conv_id)

    def rename_conversation(self, conv_id: str, title: str) -> Conversation:
        if not title.strip():
            raise InvalidInputError("an empty title", hint="give the conversation a name")
        self.store.conversations.update(conv_id, title=title.strip())
        return self.conversation(conv_id)

    def archive_conversation(self, conv_id: str, archived: bool = True) -> Conversation:
        self.store.conversations.update(conv_id, archived=archived)
        return self.conversation(conv_id)

    def delete_conversation(self, conv_id: str) -> None:
        """Deletes the conversation and its messages. Memories taken from it stay (they are
        listed, with their source, in the memory browser, to forget or purge one by one)."""
        self.conversation(conv_id)  # NotFoundError when unknown
        self.store.conversations.delete(conv_id)

    def export_markdown(self, conv_id: str) -> str:
        """The conversation as Markdown, with the memories each answer used."""
        conv = self.conversation(conv_id)
        out = [f"# {conv.title or 'Conversation'}", ""]
        created = dt.datetime.fromtimestamp(conv.created_at).strftime("%Y-%m-%d %H:%M")
        out += [f"_Started {created}_", ""]
        for m in self.messages(conv_id):
            at = dt.datetime.fromtimestamp(m.created_at).strftime("%H:%M")
            who = "You" if m.role == "user" else "Assistant"
            out += [f"## {who} ({at})", "", m.content, ""]
            used = m.meta.get("used") or []
            if used:
                out.append("Memories used:")
                out += [f"- {u.get('text', '')} ({u.get('origin', '')})" for u in used]
                out.append("")
        return "\n".join(out)

    def job_counts(self) -> dict[str, int]:
        return self.store.jobs.counts()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        self.store.close()


def open_api(
    paths: Paths,
    settings: Settings,
    *,
    profile: str | None = None,
    passphrase_provider: PassphraseProvider | None = None,
    embedder_factory: EmbedderFactory | None = None,
    engine_factory: EngineFactory | None = None,
    resident_index: bool = False,
) -> MemosAPI:
    """The one factory the CLI, the TUI and the tests share."""
    store = open_profile(
        paths,
        profile or settings.profile,
        settings,
        passphrase_provider=passphrase_provider,
        resident_index=resident_index,
    )
    try:
        embedder = embedder_factory() if embedder_factory else None
    except Exception:
        store.close()
        raise
    return MemosAPI(store, embedder, engine_factory=engine_factory)


# --- models (no profile needed) ----------------------------------------------------------------


def list_models(paths: Paths, settings: Settings) -> builtins.list[ModelInfo]:
    """Installed and recommended models with their disk and RAM needs (never the network)."""
    return models.list_models(paths, settings)


def pull_model(
    paths: Paths, model_id: str, progress: models.ProgressFactory = models.no_progress
) -> Path:
    """Download a hub model (built-ins are assembled locally); fails fast when offline."""
    return models.pull(paths, model_id, progress=progress)


def use_model(
    paths: Paths, settings: Settings, model_id: str, *, kind: Kind | None = None
) -> Settings:
    """Make ``model_id`` the active chat or embedding model and save the settings. ``kind``
    is needed for a bare file path (the catalog knows the kind of its own ids)."""
    if kind is None:
        new = models.use(paths, settings, model_id)
    else:
        from memos_desktop.engines.catalog import resolve

        resolve(paths, model_id, kind=kind)  # raises, with the fix, when it is not there
        new = models.use_kind(settings, kind, model_id)
    save_settings(paths, new)
    return new
