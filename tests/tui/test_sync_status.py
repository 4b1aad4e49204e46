"""The status bar shows the device-sync state when sync is set up (issue 11), and nothing of
it when it is not (the other snapshot tests)."""

from __future__ import annotations

from pathlib import Path

from memos_desktop.config import Paths, Settings
from memos_desktop.store.profile import open_profile
from memos_desktop.sync.folder import FolderSync
from memos_desktop.sync.identity import load_identity
from memos_desktop.tui.widgets import StatusBar
from tests.tui.conftest import AppFactory, wait_for


async def test_the_status_bar_shows_sync_state(
    profile: Paths, make_app: AppFactory, tmp_path: Path
) -> None:
    folder = tmp_path / "Sync"
    folder.mkdir()
    with open_profile(profile, "default", Settings()) as s:
        FolderSync(s.db, load_identity(s.db), s.dir).setup(folder)
    app = make_app()
    async with app.run_test(size=(200, 40)) as pilot:
        await wait_for(pilot, lambda: app.session is not None and app.status.state == "ready")
        assert app.status.sync == "sync: not paired"
        bar = app.screen.query_one(StatusBar)
        await wait_for(pilot, lambda: "sync: not paired" in str(bar.render()))
