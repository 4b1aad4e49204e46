"""Daemon tests run the real daemon as a child process (``python -m memos_desktop.daemon run``)
on a real encrypted profile in the test's home, with the test job kinds of ``plugin_jobs``
loaded into it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import tests.daemon.plugin_jobs  # noqa: F401  (its kinds are queued from the test process)
from memos_desktop.config import (
    DaemonSettings,
    ModelSettings,
    Settings,
    resolve_paths,
    save_settings,
)
from memos_desktop.store.profile import Store, open_profile
from tests.conftest import new_profile

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = "tests.daemon.plugin_jobs"
# No chat model: the jobs that only use one when it is there skip it (no Gemma load per test).
NO_CHAT_MODEL = "no-chat-model-in-these-tests"


def configure(**daemon: Any) -> None:
    """config.toml for the test's home: a quick daemon (polls every 0.1 s, no idle window)."""
    base = {"poll_s": 0.1, "idle_s": 0.0, "nice": 0}
    save_settings(
        resolve_paths(),
        Settings(
            daemon=DaemonSettings(**{**base, **daemon}), models=ModelSettings(chat=NO_CHAT_MODEL)
        ),
    )


def child_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "MEMOS_DESKTOP_DAEMON_PLUGINS": PLUGINS, **extra}


def spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "memos_desktop.daemon", "run", "--profile", "default", *args],
        env=env or child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "memos_desktop.cli", *args],
        env=env or child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def wait_for(cond: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or cond}")


def daemon_up() -> bool:
    from memos_desktop.api.presence import daemon_state

    st = daemon_state(resolve_paths(), "default")
    return bool(st.get("running")) and st.get("state") in ("idle", "working", "paused")


@pytest.fixture
def profile(embedder: Any) -> Iterator[Store]:
    """A passphrase profile with a MiniLM cube, configured for quick daemons; the open store
    (a second process beside the daemon, as a CLI command would be)."""
    configure()
    new_profile(embedder).close()
    store = open_profile(resolve_paths(), "default", Settings())
    yield store
    store.close()


@pytest.fixture
def daemons() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Daemon processes a test starts; any still running at the end are killed."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)
