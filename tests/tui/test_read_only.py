"""A second terminal app beside the first opens read-only (issue 12): it browses and
searches the profile, its chat prompt is off, and any change is refused with nothing written."""

from __future__ import annotations

import pytest

from memos_desktop.api import MemosAPI, NewMemory, SearchFilters
from memos_desktop.errors import ReadOnlyError
from memos_desktop.store.profile import open_profile
from memos_desktop.tui.chat import ChatScreen, PromptInput
from tests.tui.conftest import AppFactory, wait_for

HELD = "the terminal app is already running on profile 'default' (pid 4242)"


async def test_a_read_only_app_searches_but_changes_nothing(
    profile, embedder, make_app: AppFactory
):
    from memos_desktop.config import Settings

    store = open_profile(profile, "default", Settings())
    api = MemosAPI(store, embedder)
    api.add([NewMemory(text="I keep my passport in the blue drawer")])
    before = api.store.memories.count(SearchFilters(statuses=("active",)))
    api.close()

    app = make_app(read_only=HELD)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.status.state == "read-only")
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        prompt = screen.query_one(PromptInput)
        assert prompt.disabled and "Read-only" in prompt.placeholder
        assert app.session is not None
        ro = app.session.api
        hits = ro.search("where is my passport").hits
        assert hits and "passport" in hits[0].item.text
        with pytest.raises(ReadOnlyError, match="read-only"):
            ro.add([NewMemory(text="I moved the passport to the safe")])
        with pytest.raises(ReadOnlyError):
            ro.forget(hits[0].item.id)

    store = open_profile(profile, "default", Settings())
    try:
        assert store.memories.count(SearchFilters(statuses=("active",))) == before
        assert store.memories.get(hits[0].item.id).status == "active"
    finally:
        store.close()
