"""Shared by the benchmarks that measure through a real profile with MiniLM: a fresh home in a
temporary directory (the OS keyring left out), the app's embedder and an encrypted
passphrase profile made for it."""

from __future__ import annotations

import os
import tempfile

from memos_desktop.config import Settings, resolve_paths
from memos_desktop.engines.base import Embedder
from memos_desktop.engines.loader import load_embedder
from memos_desktop.store.profile import Store, create_profile


def minilm_profile(prefix: str) -> tuple[Embedder, Store]:
    """MiniLM and a new profile ``bench`` in a new temporary home named ``prefix...``."""
    os.environ["MEMOS_DESKTOP_HOME"] = tempfile.mkdtemp(prefix=prefix)
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    paths = resolve_paths()
    embedder = load_embedder(paths, "all-minilm-l6-v2")
    store = create_profile(
        paths,
        "bench",
        Settings(),
        method="passphrase",
        passphrase="b",
        embed_model=embedder.model_id,
        embed_dim=embedder.dim,
    )
    return embedder, store
