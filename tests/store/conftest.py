from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from memos_desktop.config import Settings, resolve_paths
from memos_desktop.store.profile import Store, create_profile
from tests.conftest import PASSPHRASE

DIM = 384


@pytest.fixture
def store() -> Iterator[Store]:
    s = create_profile(
        resolve_paths(),
        "default",
        Settings(),
        method="passphrase",
        passphrase=PASSPHRASE,
        embed_model="test-embed",
        embed_dim=DIM,
    )
    yield s
    s.close()


def vec(seed: int | str, dim: int = DIM) -> np.ndarray:
    """A deterministic unit vector per seed."""
    if isinstance(seed, str):
        seed = int.from_bytes(seed.encode()[:8].ljust(8, b"\0"), "little")
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def near(v: np.ndarray, eps: float, seed: int) -> np.ndarray:
    """A vector close to v (cosine ~ 1 - eps^2/2)."""
    n = np.random.default_rng(seed).standard_normal(v.shape[0]).astype(np.float32)
    n /= np.linalg.norm(n)
    w = v + eps * n
    return (w / np.linalg.norm(w)).astype(np.float32)
