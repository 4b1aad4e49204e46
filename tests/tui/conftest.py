"""Fixtures for the terminal-app tests: a real encrypted profile, the real MiniLM embedder and
the real tiny GGUF chat model, injected through the app's factories."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from memos_desktop.config import Paths, Settings, resolve_paths
from memos_desktop.engines.base import Embedder
from memos_desktop.engines.llamacpp import LlamaCppEngine
from memos_desktop.tui.app import MemosApp
from tests.conftest import new_profile
from tests.model_fixtures import TINY

AppFactory = Callable[..., MemosApp]


@pytest.fixture
def paths() -> Paths:
    return resolve_paths()


@pytest.fixture
def profile(paths: Paths, embedder: Embedder) -> Paths:
    """An existing passphrase profile (MEMOS_DESKTOP_PASSPHRASE is set by the root conftest)."""
    new_profile(embedder).close()
    return paths


@pytest.fixture
def make_app(paths: Paths, embedder: Embedder, tiny_path: Path, sha_cache: Path) -> AppFactory:
    """``make_app(settings=None)``: the app on the tiny model and the session's embedder."""

    def make(settings: Settings | None = None, read_only: str | None = None) -> MemosApp:
        app = MemosApp(
            paths,
            settings or Settings(),
            "default",
            embedder_factory=lambda: embedder,
            engine_factory=lambda: LlamaCppEngine(tiny_path, TINY, sha_cache_file=sha_cache),
            read_only=read_only,
        )
        keep_toasts(app)
        return app

    return make


@pytest.fixture(autouse=True)
def settle_ignoring_removed_widgets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pilot waits, after each key, until every widget of the screen has run a callback queued
    on it. A widget removed meanwhile (a new chat clears the transcript when a worker finishes)
    never runs it, and Pilot times out after 30 s (Textual 8.2). Same wait, but a widget that
    has been removed counts as settled."""
    import asyncio

    from textual.pilot import Pilot, WaitForScreenTimeout

    async def wait_for_screen(self: Pilot[Any], timeout: float = 30.0) -> bool:
        try:
            screen = self.app.screen
        except Exception:
            return False
        pending: list[tuple[Any, asyncio.Event]] = []
        for child in [self.app, *screen.walk_children(with_self=True)]:
            ev = asyncio.Event()
            if child.call_later(ev.set):
                pending.append((child, ev))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while pending:
            if self.app._exception_event.is_set():
                return False
            pending = [
                (c, ev) for c, ev in pending if not ev.is_set() and c.is_attached and not c._closed
            ]
            if loop.time() > deadline:
                raise WaitForScreenTimeout("widgets did not process their pending messages")
            await asyncio.sleep(0.005)
        return True

    monkeypatch.setattr(Pilot, "_wait_for_screen", wait_for_screen)


def keep_toasts(app: MemosApp) -> None:
    """Notifications stay up during a test. A toast that expires while Pilot waits for the
    screen to settle takes a queued callback with it, and Pilot then times out (Textual 8)."""
    notify = app.notify

    def lasting(*args: Any, **kwargs: Any) -> None:
        kwargs["timeout"] = 3600
        notify(*args, **kwargs)

    app.notify = lasting  # type: ignore[method-assign]


async def wait_for(pilot, condition, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    """Let the app run until ``condition()`` holds (workers post back to the UI)."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.05)
