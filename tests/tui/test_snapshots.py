"""Snapshot tests of every screen of the terminal app, at 120x36 (pytest-textual-snapshot).

Nothing on screen may vary between runs: there is no live generation (the tiny model writes
random text at varying speed); conversations, memories and cubes are seeded through the API and
the store; the status bar gets fixed figures; the store's clock and ids are fixed for the test
(``frozen``) and dates are shown in UTC; cursors do not blink and toasts are cleared.

Update after a deliberate UI change, look at the diff report, then copy them for the README:

    .venv/bin/python -m pytest tests/tui/test_snapshots.py --snapshot-update
    .venv/bin/python bench/screenshots.py
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, TextArea

from memos_desktop.api import MemosAPI
from memos_desktop.config import Paths
from memos_desktop.store.records import NewMemory, Source
from memos_desktop.tui.app import MemosApp
from tests.tui.conftest import AppFactory, wait_for

SIZE = (120, 36)
T0 = dt.datetime(2026, 5, 4, 9, 30, tzinfo=dt.UTC).timestamp()
HOUR = 3600.0
DAY = 86400.0

Snap = Callable[..., bool]


class FrozenTime:
    """Stands in for the ``time`` module in the store: ``time()`` is whatever the test says
    (the profile is created two months before the seeded memories)."""

    def __init__(self) -> None:
        self.now = T0 - 60 * DAY

    def time(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class CountingIds:
    """Stands in for the ``uuid`` module in the store: the n-th id is always the same."""

    def __init__(self) -> None:
        self.n = 0

    def uuid4(self) -> uuid.UUID:
        self.n += 1
        return uuid.UUID(hashlib.md5(f"memos-snapshot-{self.n}".encode()).hexdigest())

    def __getattr__(self, name: str) -> Any:
        return getattr(uuid, name)


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> Iterator[FrozenTime]:
    """Fixed store clock and ids, and UTC for the dates on screen. Request it before any
    fixture that writes to a profile."""
    clock, ids = FrozenTime(), CountingIds()
    for module in ("memories", "conversations", "cubes"):
        monkeypatch.setattr(f"memos_desktop.store.{module}.time", clock)
        monkeypatch.setattr(f"memos_desktop.store.{module}.uuid", ids)
    old_tz = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield clock
    if old_tz is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old_tz
    time.tzset()


@pytest.fixture
def frozen_profile(frozen: FrozenTime, profile: Paths) -> Paths:
    """The passphrase profile, created under the fixed clock and ids."""
    return profile


# --- seeding -------------------------------------------------------------------------------------

ANSWER = """\
Since Python 3.11 the standard library reads TOML: use **`tomllib`** (read only).

- open the file in *binary* mode
- `tomllib.load` returns plain dicts, lists and strings

```python
import tomllib
from pathlib import Path

def load_config(path: Path) -> dict:
    with path.open("rb") as f:
        return tomllib.load(f)

config = load_config(Path("config.toml"))
print(config["engine"]["n_ctx"])
```

To *write* TOML you still need a package such as `tomli-w`.
"""


def seed_memories(api: MemosAPI, clock: FrozenTime) -> dict[str, str]:
    """A few memories of different kinds (one pinned, one edited); returns name -> id."""
    chat = Source(kind="conversation", role="user", at=T0 - 3 * DAY + 120)
    items = {
        "vegetarian": NewMemory(
            "I'm vegetarian",
            type="preference",
            layer="user",
            pinned=True,
            tags=("food",),
            importance=0.9,
            created_at=T0 - 30 * DAY,
        ),
        "porto": NewMemory(
            "I moved to Porto in May 2026",
            tags=("home",),
            sources=(chat,),
            created_at=T0 - 3 * DAY,
        ),
        "miso": NewMemory(
            "My cat is called Miso",
            tags=("pets",),
            created_at=T0 - 12 * DAY,
        ),
        "python": NewMemory(
            "Works in Python 3.12 and prefers the standard library over extra dependencies",
            type="preference",
            tags=("work", "python"),
            created_at=T0 - 2 * DAY,
        ),
        "dentist": NewMemory(
            "Dentist appointment on 12 June at 09:00",
            type="event",
            tags=("health",),
            created_at=T0 - 1 * DAY,
        ),
        "answers": NewMemory(
            "Keep answers short and show code first",
            type="instruction",
            layer="user",
            created_at=T0 - 20 * DAY,
        ),
    }
    clock.now = T0 - 30 * DAY
    results = api.add(list(items.values()))
    ids = {name: r.item.id for name, r in zip(items, results, strict=True)}
    clock.now = T0 - 4 * DAY
    api.update(ids["vegetarian"], text="I'm vegan since March", reason="changed diet")
    clock.now = T0
    return ids


def seed_conversations(api: MemosAPI, clock: FrozenTime, ids: dict[str, str]) -> str:
    """Three conversations (and one archived); returns the id of the newest."""
    conversations = api.store.conversations
    user, cube = api.user.id, api.cube.id
    for title, at in (
        ("Weekend trip to the Douro valley", T0 - 5 * DAY),
        ("Vegan recipes with chickpeas", T0 - 2 * DAY),
        ("Old notes", T0 - 40 * DAY),
    ):
        clock.now = at
        conv = conversations.create(user, cube, title)
        conversations.add_message(conv.id, "user", f"{title}?", at=at)
        conversations.add_message(conv.id, "assistant", "Sure.", at=at + 30)
        if title == "Old notes":
            conversations.update(conv.id, archived=True)
    clock.now = T0 - HOUR
    conv = conversations.create(user, cube, "How do I read a TOML config in Python?")
    used = [
        used_json(api, ids["python"], 0.71, "retrieved"),
        used_json(api, ids["answers"], 1.0, "core"),
        used_json(api, ids["vegetarian"], 1.0, "core"),
    ]
    conversations.add_message(
        conv.id, "user", "How do I read a TOML config in Python?", at=T0 - HOUR
    )
    conversations.add_message(
        conv.id, "assistant", ANSWER, at=T0 - HOUR + 4, meta={"used": used, "kv_restored": True}
    )
    clock.now = T0
    return conv.id


def used_json(api: MemosAPI, item_id: str, score: float, origin: str) -> dict[str, Any]:
    it = api.get(item_id)
    return {
        "id": it.id,
        "text": it.text,
        "type": it.type,
        "score": score,
        "origin": origin,
        "sources": [s.to_json() for s in it.sources],
    }


# --- driving the app -----------------------------------------------------------------------------


@contextlib.contextmanager
def locked_api(app: MemosApp) -> Iterator[MemosAPI]:
    """The app's API, holding the session lock as the app's workers do."""
    assert app.session is not None
    with app.session.lock:
        yield app.session.api


async def until(pilot: Pilot[Any], condition: Callable[[], bool], what: str) -> None:
    """``wait_for``, saying on a timeout what was awaited and what went wrong meanwhile."""
    from textual.worker import WorkerState

    try:
        await wait_for(pilot, condition)
    except AssertionError:
        app = pilot.app
        failed = [f"{w.name}: {w.error!r}" for w in app.workers if w.state == WorkerState.ERROR]
        toasts = [n.message for n in app._notifications]
        raise AssertionError(
            f"timed out waiting for {what}; screen {app.screen!r}, failed workers {failed}, "
            f"notifications {toasts}"
        ) from None


async def ready(pilot: Pilot[Any]) -> MemosApp:
    app = pilot.app
    assert isinstance(app, MemosApp)
    await until(pilot, lambda: app.status.state == "ready", "the model")
    return app


def fix_status(app: MemosApp) -> None:
    """Figures of a last answer, fixed (they vary with the machine in real use)."""
    st = app.status
    st.ttft_s, st.tokens_per_s, st.kv, st.context_used = 0.182, 41.7, "hit", 612
    st.pending_jobs, st.memories_used = 0, 3
    app.refresh_status()


async def settle(pilot: Pilot[Any]) -> None:
    """No blinking cursors, no toasts; let the last messages be handled."""
    app = pilot.app
    await pilot.pause()
    for screen in app.screen_stack:
        for widget in screen.query("*"):
            if isinstance(widget, Input | TextArea):
                widget.cursor_blink = False
    app.clear_notifications()
    await pilot.pause()


def table_rows(app: MemosApp, selector: str) -> int:
    try:
        return app.screen.query_one(selector, DataTable).row_count
    except Exception:
        return -1


# --- the screens ---------------------------------------------------------------------------------


def test_first_run(frozen: FrozenTime, make_app: AppFactory, snap_compare: Snap) -> None:
    """No profile yet: create one (the keyring is unavailable here, so a passphrase)."""
    from memos_desktop.tui.onboarding import FirstRunScreen

    async def run_before(pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: isinstance(pilot.app.screen, FirstRunScreen), "first run")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_unlock_after_a_wrong_passphrase(
    frozen_profile: Paths,
    make_app: AppFactory,
    snap_compare: Snap,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A passphrase profile with no MEMOS_DESKTOP_PASSPHRASE: the unlock screen, after a miss."""
    from textual.widgets import Static

    from memos_desktop.tui.onboarding import UnlockScreen

    monkeypatch.delenv("MEMOS_DESKTOP_PASSPHRASE")

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        await until(pilot, lambda: isinstance(app.screen, UnlockScreen), "the unlock screen")
        await pilot.press(*"not my passphrase", "enter")

        def error_shown() -> bool:
            return "Wrong" in str(app.screen.query_one("#unlock-error", Static).render())

        await until(pilot, error_shown, "the wrong-passphrase error")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_chat(
    frozen_profile: Paths, frozen: FrozenTime, make_app: AppFactory, snap_compare: Snap
) -> None:
    """A conversation: the question, a Markdown answer with highlighted code, and the
    memories that answer used."""
    from textual.widgets.markdown import MarkdownFence

    from memos_desktop.tui.chat import ChatScreen
    from memos_desktop.tui.widgets import UsedMemories

    async def run_before(pilot: Pilot[Any]) -> None:
        app = await ready(pilot)
        with locked_api(app) as api:
            conv_id = seed_conversations(api, frozen, seed_memories(api, frozen))
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        used = screen.query_one(UsedMemories)
        screen.load_conversation(conv_id)
        await until(pilot, lambda: used.option_count == 3, "the used memories")
        await until(pilot, lambda: bool(screen.query(MarkdownFence)), "the code block")
        fix_status(app)
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_conversations(
    frozen_profile: Paths, frozen: FrozenTime, make_app: AppFactory, snap_compare: Snap
) -> None:
    """Ctrl+O in chat: the conversations, newest first (the archived one is hidden)."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = await ready(pilot)
        with locked_api(app) as api:
            seed_conversations(api, frozen, seed_memories(api, frozen))
        fix_status(app)
        await pilot.press("ctrl+o")
        await until(pilot, lambda: table_rows(app, "#conversations") == 3, "conversations")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_memory_browser(
    frozen_profile: Paths, frozen: FrozenTime, make_app: AppFactory, snap_compare: Snap
) -> None:
    """F3: every memory of the cube, newest first; one pinned."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = await ready(pilot)
        with locked_api(app) as api:
            seed_memories(api, frozen)
        fix_status(app)
        await pilot.press("f3")
        await until(pilot, lambda: table_rows(app, "#memory-table") == 6, "memories")
        fix_status(app)
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_memory_detail(
    frozen_profile: Paths, frozen: FrozenTime, make_app: AppFactory, snap_compare: Snap
) -> None:
    """A memory opened from the browser: its fields, and its history after an edit."""
    from memos_desktop.tui.memories import MemoryDetail

    async def run_before(pilot: Pilot[Any]) -> None:
        app = await ready(pilot)
        with locked_api(app) as api:
            ids = seed_memories(api, frozen)
        fix_status(app)
        await pilot.press("f3")
        await until(pilot, lambda: table_rows(app, "#memory-table") == 6, "memories")
        fix_status(app)
        await app.push_screen(MemoryDetail(ids["vegetarian"]))
        await until(pilot, lambda: table_rows(app, "#history") == 2, "the history")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_cubes(
    frozen_profile: Paths, frozen: FrozenTime, make_app: AppFactory, snap_compare: Snap
) -> None:
    """F4: two cubes, the current one marked."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = await ready(pilot)
        with locked_api(app) as api:
            seed_memories(api, frozen)
            frozen.now = T0 - 7 * DAY
            api.create_cube("work", "Projects, colleagues and deadlines")
            at = frozen.now = T0 - 6 * DAY
            api.add(
                [
                    NewMemory("The release is planned for June", type="event", created_at=at),
                    NewMemory("Ana reviews the storage code", created_at=at),
                ],
                cube="work",
            )
            frozen.now = T0
        fix_status(app)
        await pilot.press("f4")
        await until(pilot, lambda: table_rows(app, "#cubes-table") == 2, "cubes")
        fix_status(app)
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_models(frozen_profile: Paths, make_app: AppFactory, snap_compare: Snap) -> None:
    """F5: installed and recommended models, with disk and RAM needs."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = await ready(pilot)
        fix_status(app)
        await pilot.press("f5")
        await until(pilot, lambda: table_rows(app, "#models-table") > 0, "models")
        fix_status(app)
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_settings(frozen_profile: Paths, make_app: AppFactory, snap_compare: Snap) -> None:
    """F6: the settings form and the keymap."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = await ready(pilot)
        fix_status(app)
        await pilot.press("f6")
        await until(pilot, lambda: table_rows(app, "#keymap") > 0, "the keymap")
        fix_status(app)
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_help(frozen_profile: Paths, make_app: AppFactory, snap_compare: Snap) -> None:
    """F1 in chat: every key of the app and of the chat, with the id to remap it."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = await ready(pilot)
        fix_status(app)
        await pilot.press("f1")
        await until(pilot, lambda: table_rows(app, "#keys") > 0, "the keys")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_readme_screenshots_are_the_accepted_snapshots() -> None:
    """docs/screenshots/ (linked from the README) must match the snapshots the tests check."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    p = subprocess.run(
        [sys.executable, str(root / "bench" / "screenshots.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stdout + p.stderr
