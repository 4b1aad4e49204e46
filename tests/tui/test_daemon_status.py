"""The status bar shows the daemon (issue 12): a real daemon process merges a duplicate, and
the app's status bar says it is idle, what it did and when, through the api."""

from __future__ import annotations

import signal

from memos_desktop.config import Paths, Settings
from memos_desktop.engines.base import Embedder
from memos_desktop.store.profile import open_profile
from memos_desktop.store.records import NewMemory
from memos_desktop.tui.widgets import StatusBar
from tests.daemon.conftest import configure, spawn
from tests.daemon.conftest import wait_for as wait_until
from tests.tui.conftest import AppFactory, wait_for


async def test_the_status_bar_shows_what_the_daemon_did(
    profile: Paths, make_app: AppFactory, embedder: Embedder
) -> None:
    configure()
    texts = ["I love green tea in the morning", "I really love green tea in the morning"]
    with open_profile(profile, "default", Settings()) as s:
        cube = s.cubes.list()[0]
        s.memories.add_many(
            cube,
            [NewMemory(t) for t in texts],
            embedder.embed(texts),
            embed_model=embedder.model_id,
        )
    d = spawn()
    try:
        from memos_desktop.api.presence import daemon_state

        wait_until(
            lambda: "merged 1 duplicate" in str(daemon_state(profile, "default").get("last")),
            60,
            "the daemon's merge",
        )
        app = make_app()
        async with app.run_test(size=(200, 40)) as pilot:
            await wait_for(pilot, lambda: app.session is not None and app.status.state == "ready")
            bar = app.screen.query_one(StatusBar)
            await wait_for(
                pilot, lambda: "daemon idle · merged 1 duplicate, just now" in str(bar.render())
            )
    finally:
        d.send_signal(signal.SIGTERM)
        d.wait(timeout=10)
