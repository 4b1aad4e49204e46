"""Test-wide rules: every test runs with its own MEMOS_DESKTOP_HOME (never the developer's real
data) and with the keyring forced to the ``fail`` backend unless a test installs its own, so no
test ever writes to a real OS keyring."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

# Property and fuzz tests draw the same examples on every run (CI and here agree: a failure
# seen once is seen again); HYPOTHESIS_PROFILE=explore draws new ones to hunt for more.
hypothesis_settings.register_profile("repeatable", derandomize=True, database=None)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

PASSPHRASE = "correct horse battery staple"

pytest_plugins = ["tests.model_fixtures"]


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("MEMOS_DESKTOP_HOME", str(home))
    monkeypatch.setenv("MEMOS_DESKTOP_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.delenv("MEMOS_DESKTOP_PROFILE", raising=False)
    from memos_desktop.config import forget_env_secrets

    forget_env_secrets()  # what an earlier test's CLI run took out of the environment
    import keyring
    import keyring.core

    before = keyring.get_keyring()
    keyring.core.set_keyring(keyring.core.load_env() or before)
    yield home
    keyring.core.set_keyring(before)


def new_profile(embedder: Any = None) -> Any:
    """A passphrase profile "default" in this test's home; with an embedder, its default cube
    is made for that embedder. Returns the open Store."""
    from memos_desktop.config import Settings, resolve_paths
    from memos_desktop.store.profile import create_profile

    dims = {"embed_model": embedder.model_id, "embed_dim": embedder.dim} if embedder else {}
    return create_profile(
        resolve_paths(), "default", Settings(), method="passphrase", passphrase=PASSPHRASE, **dims
    )
