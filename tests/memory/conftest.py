"""Fixtures for the memory-OS tests: a real encrypted profile, the real MiniLM embedder (converted
once per session) and the real tiny / Gemma models from the engine fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from memos_desktop.api import MemosAPI
from memos_desktop.engines.base import Embedder
from memos_desktop.engines.llamacpp import LlamaCppEngine
from tests.conftest import new_profile
from tests.model_fixtures import TINY


def make_api(embedder: Embedder, model: Path | None, sha_cache: Path, settings=None) -> MemosAPI:
    store = new_profile(embedder)
    factory = None
    if model is not None:

        def factory() -> LlamaCppEngine:
            return LlamaCppEngine(model, settings or TINY, sha_cache_file=sha_cache)

    return MemosAPI(store, embedder, engine_factory=factory)


@contextmanager
def told_api(
    embedder: Embedder, model: Path, sha_cache: Path, settings: object, said: tuple[str, ...]
) -> Iterator[MemosAPI]:
    """An API whose person told ``said`` in one conversation, through ``MemosAPI.chat``;
    closed on leaving."""
    api = make_api(embedder, model, sha_cache, settings)
    try:
        conv = None
        for text in said:
            turn = api.chat(text, conv)
            "".join(turn)
            conv = turn.conversation_id
        yield api
    finally:
        api.close()


@pytest.fixture
def api(embedder: Embedder, tiny_path: Path, sha_cache: Path) -> Iterator[MemosAPI]:
    a = make_api(embedder, tiny_path, sha_cache)
    yield a
    a.close()


@pytest.fixture
def completion_api(embedder: Embedder, tiny_path: Path, sha_cache: Path) -> Iterator[MemosAPI]:
    """The random-weight model given the completion prompt, as a base model would be."""
    a = make_api(embedder, tiny_path, sha_cache, replace(TINY, prompt_style="completion"))
    yield a
    a.close()
