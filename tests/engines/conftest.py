"""Engine-test fixtures; the model files come from tests/model_fixtures.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from memos_desktop.config import Settings, resolve_paths
from memos_desktop.engines.llamacpp import LlamaCppEngine
from memos_desktop.store.profile import Store, create_profile
from tests.conftest import PASSPHRASE
from tests.fixtures.tiny_model import write_random_lora
from tests.model_fixtures import GEMMA, TINY

__all__ = ["GEMMA", "TINY"]


@pytest.fixture
def store() -> Iterator[Store]:
    s = create_profile(
        resolve_paths(), "default", Settings(), method="passphrase", passphrase=PASSPHRASE
    )
    yield s
    s.close()


@pytest.fixture(scope="session")
def gemma_adapters(model_dir: Path, gemma: LlamaCppEngine) -> tuple[Path, Path]:
    return tuple(  # type: ignore[return-value]
        write_random_lora(
            gemma.path, model_dir / f"gemma-{seed}.gguf", seed=seed, base_sha256=gemma.model_sha256
        )
        for seed in (21, 22)
    )
