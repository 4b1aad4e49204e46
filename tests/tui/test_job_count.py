"""The status bar's queued-jobs count comes from the profile's job queue on open."""

from __future__ import annotations

from memos_desktop.config import Paths, Settings
from memos_desktop.memory.consolidate import EXTRACT
from memos_desktop.store.profile import open_profile
from memos_desktop.tui.widgets import StatusBar
from tests.tui.conftest import AppFactory, wait_for


async def test_the_status_bar_counts_the_jobs_not_yet_done(
    profile: Paths, make_app: AppFactory
) -> None:
    with open_profile(profile, "default", Settings()) as s:
        for n in range(4):
            s.jobs.enqueue(EXTRACT.name, {"n": n})
        done = s.jobs.claim("w")
        running = s.jobs.claim("w")
        assert done is not None and done.lease_token and running is not None
        s.jobs.finish(done, done.lease_token)
        assert s.jobs.counts() == {"queued": 2, "running": 1, "done": 1}
    app = make_app()
    async with app.run_test(size=(160, 40)) as pilot:
        # wait for the model too: a failing assert while it loads would tear the app down under it
        await wait_for(pilot, lambda: app.session is not None and app.status.state == "ready")
        assert app.status.pending_jobs == 3  # two waiting, one running; the done one is not
        bar = app.screen.query_one(StatusBar)
        await wait_for(pilot, lambda: "3 queued" in str(bar.render()))
