"""Model fixtures shared by the engine and memory tests: model files are written once per
session.

Session fixtures run outside the per-test MEMOS_DESKTOP_HOME, so they pass every path explicitly
(never the developer's real cache). ``MEMOS_DESKTOP_TEST_MODELS`` may name a directory that keeps
the assembled Gemma between sessions (it takes ~20 s to assemble and hash).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from memos_desktop.config import resolve_paths
from memos_desktop.engines.base import Embedder
from memos_desktop.engines.llamacpp import LlamaCppEngine, LlamaCppSettings
from memos_desktop.engines.loader import load_embedder
from tests.fixtures.tiny_model import (
    packaged_gemma,
    write_random_lora,
    write_tiny_model,
)

# One thread each: CI machines are small and shared, and llama.cpp's threads spin while they wait.
TINY = LlamaCppSettings(n_ctx=1024, n_threads=1, n_threads_batch=1)
# The packaged Gemma in the chat format (the engine tests of the KV state and adapters), and as
# the base model it is (prompt_style auto: the completion format; the answering tests).
GEMMA = LlamaCppSettings(
    n_ctx=2048, n_threads=1, n_threads_batch=1, chat_format="gemma", prompt_style="chat"
)
GEMMA_BASE = LlamaCppSettings(n_ctx=2048, n_threads=1, n_threads_batch=1)


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    """The real MiniLM embedder, converted to GGUF once per session."""
    home = tmp_path_factory.mktemp("embed-home")
    paths = resolve_paths({"MEMOS_DESKTOP_HOME": str(home)})
    return load_embedder(paths, "all-minilm-l6-v2")


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def sha_cache(model_dir: Path) -> Path:
    return model_dir / "model-sha256.json"


@pytest.fixture(scope="session")
def tiny_path(model_dir: Path) -> Path:
    return write_tiny_model(model_dir / "tiny.gguf", seed=0)


@pytest.fixture(scope="session")
def tiny_other_path(model_dir: Path) -> Path:
    """Same shapes as ``tiny_path``, other weights: a different base model file."""
    return write_tiny_model(model_dir / "tiny-other.gguf", seed=1)


@pytest.fixture(scope="session")
def tiny_adapters(model_dir: Path, tiny_path: Path) -> tuple[Path, Path]:
    return (
        write_random_lora(tiny_path, model_dir / "tiny-a.gguf", seed=11),
        write_random_lora(tiny_path, model_dir / "tiny-b.gguf", seed=12),
    )


@pytest.fixture
def tiny(tiny_path: Path, sha_cache: Path) -> Iterator[LlamaCppEngine]:
    """A fresh tiny engine per test (loading takes milliseconds)."""
    e = LlamaCppEngine(tiny_path, TINY, sha_cache_file=sha_cache)
    yield e
    e.close()


@pytest.fixture(scope="session")
def gemma_path(model_dir: Path) -> Path:
    keep = os.environ.get("MEMOS_DESKTOP_TEST_MODELS")
    return packaged_gemma(Path(keep) if keep else model_dir)


@pytest.fixture(scope="session")
def gemma(gemma_path: Path, sha_cache: Path) -> Iterator[LlamaCppEngine]:
    """One Gemma engine for the session; tests that set an adapter put it back to None."""
    e = LlamaCppEngine(gemma_path, GEMMA, sha_cache_file=sha_cache)
    yield e
    e.close()
