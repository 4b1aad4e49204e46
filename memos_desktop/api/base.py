"""What every part of the facade shares: the open store, the current user and cube, the
embedder, and the one re-entrant lock that makes a :class:`MemosAPI` safe to share between
threads.

Design rules:
- Every public method takes the lock (``@locked``): the TUI's workers, and later the daemon's,
  share one API. The lock is re-entrant, so a method may call another. It covers what is not
  thread-safe on its own: the resident vector index, the engine, the current user and cube.
- A streaming answer takes the lock per token (:meth:`ApiBase.locked_stream`), so a search or
  an edit interleaves with generation instead of waiting for the whole answer.
- Input that is not text (lone surrogates: undecodable bytes from a command line or a file)
  is refused at this door, for every method, with NotTextError (exit 9), before it reaches
  the store (where SQLite's UTF-8 binding would fail with a traceback).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

from memos_desktop.api.session import EngineFactory
from memos_desktop.engines.base import ChatEngine, Embedder
from memos_desktop.errors import InvalidInputError, require_text
from memos_desktop.memory.reconcile import Reconciler
from memos_desktop.memory.scheduler import Budget
from memos_desktop.memory.search import HybridSearch
from memos_desktop.store.profile import DEFAULT_CUBE, Store
from memos_desktop.store.records import Cube, User

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def check_texts(value: Any, what: str, depth: int = 0) -> None:
    """Every string in ``value`` (nested in lists, dicts and dataclasses) is valid text."""
    if isinstance(value, str):
        require_text(value, what)
    elif depth > 4 or value is None or isinstance(value, int | float | bytes):
        return
    elif isinstance(value, list | tuple | set | frozenset):
        for v in value:
            check_texts(v, what, depth + 1)
    elif isinstance(value, dict):
        for k, v in value.items():
            check_texts(k, what, depth + 1)
            check_texts(v, what, depth + 1)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            check_texts(getattr(value, f.name), what, depth + 1)


def locked(fn: F) -> F:
    """Run the method holding its API's lock (``self.lock``), its text arguments checked."""

    @functools.wraps(fn)
    def run(self: Any, /, *args: Any, **kwargs: Any) -> Any:
        check_texts((args, kwargs), f"the input to {fn.__name__}")
        with self.lock:
            return fn(self, *args, **kwargs)

    return cast(F, run)


class ApiBase:
    """State shared by the facade's parts (memories, conversations, chat)."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder | None,
        *,
        user: str | None = None,
        engine_factory: EngineFactory | None = None,
        budget: Budget | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self.store = store
        self.budget = budget or Budget()
        self.embedder = embedder
        users = store.users.list()
        self.user: User = store.users.get(user) if user else users[0]
        self._cube: Cube | None = None
        self._engine_factory = engine_factory
        self._engine: ChatEngine | None = None
        self.reconciler = Reconciler(store)
        self.hybrid = HybridSearch(store.searcher, store.memories)

    @property
    def lock(self) -> threading.RLock:
        """The API's re-entrant lock. Its methods take it themselves; hold it to make several
        calls one step that no other thread interleaves with."""
        return self._lock

    def set_read_only(self, reason: str) -> None:
        """Refuse every write from now on (ReadOnlyError, exit 7, nothing written): a second
        terminal app beside the first reads and searches only. ``reason`` is shown."""
        self.store.db.read_only = reason

    @property
    def read_only(self) -> str | None:
        return self.store.db.read_only

    def locked_stream(self, it: Iterator[str]) -> Iterator[str]:
        """Yield from ``it`` holding the lock only while each piece is produced."""
        while True:
            with self._lock:
                try:
                    piece = next(it)
                except StopIteration:
                    return
            yield piece

    # --- the chat model ------------------------------------------------------------------------

    @locked
    def set_engine_factory(self, factory: EngineFactory | None) -> None:
        """Switch the chat model: the current engine is closed, the next one loads lazily."""
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        self._engine_factory = factory

    @property
    @locked
    def engine(self) -> ChatEngine:
        if self._engine is None:
            if self._engine_factory is None:
                raise InvalidInputError(
                    "no chat model is configured",
                    hint="`memos-desktop models list` shows what is there",
                )
            self._engine = self._engine_factory()
        return self._engine

    # --- the current cube, and the embedder that fits it --------------------------------------

    @property
    @locked
    def cube(self) -> Cube:
        if self._cube is None:
            cubes = self.store.cubes.list(self.user)
            if cubes:
                named = [c for c in cubes if c.name == DEFAULT_CUBE]
                self._cube = named[0] if named else cubes[0]
            else:
                self._cube = self.create_cube(DEFAULT_CUBE)
        return self._cube

    @locked
    def create_cube(self, name: str, description: str = "") -> Cube:
        model = self.embedder.model_id if self.embedder else "none"
        dim = self.embedder.dim if self.embedder else 384
        return self.store.cubes.create(
            self.user, name, embed_model=model, embed_dim=dim, description=description
        )

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
