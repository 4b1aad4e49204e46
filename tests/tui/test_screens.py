"""The other screens' main flows, driven by Pilot on a real encrypted profile: memory browser,
conversations, cubes, models, settings, first run, unlock, help and the command palette."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, ProgressBar, Select, Static

from memos_desktop.api import MemosAPI
from memos_desktop.config import Paths, Settings, load_settings
from memos_desktop.store.records import NewMemory
from memos_desktop.tui.app import MemosApp
from memos_desktop.tui.chat import ChatScreen
from memos_desktop.tui.conversations import ConversationsScreen
from memos_desktop.tui.dialogs import ConfirmScreen, HelpScreen, PromptScreen
from memos_desktop.tui.memories import EditMemory, MemoryDetail, MemoryScreen, parse_since
from memos_desktop.tui.onboarding import FirstRunScreen, UnlockScreen
from tests.conftest import PASSPHRASE
from tests.tui.conftest import AppFactory, wait_for


def api_of(app: MemosApp) -> MemosAPI:
    assert app.session is not None
    return app.session.api


async def open_app(pilot, app: MemosApp) -> MemosAPI:  # type: ignore[no-untyped-def]
    await wait_for(pilot, lambda: app.session is not None)
    return api_of(app)


def table_texts(table: DataTable) -> list[str]:  # type: ignore[type-arg]
    return [" ".join(str(c) for c in table.get_row_at(i)) for i in range(table.row_count)]


# --- memory browser ----------------------------------------------------------------------------


async def test_memory_browser_search_filter_edit_pin_forget_restore_purge(
    profile, make_app: AppFactory
):
    app = make_app()
    async with app.run_test(size=(140, 40)) as pilot:
        api = await open_app(pilot, app)
        api.add(
            [
                NewMemory("I am vegetarian", type="preference", tags=("food",)),
                NewMemory("My sister Ana lives in Porto", type="fact"),
                NewMemory("Went hiking in the Alps last summer", type="event"),
            ]
        )
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, MemoryScreen))
        screen = app.screen
        table = screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 3)

        # Hybrid search: the vegetarian memory ranks first for a question about food.
        screen.query_one("#query", Input).focus()
        await pilot.press(*"what do I eat", "enter")
        await wait_for(pilot, lambda: "hybrid" in str(screen.query_one("#memory-count").render()))
        assert "vegetarian" in table_texts(table)[0]

        # Filter by type: only the event.
        screen.query_one("#query", Input).value = ""
        screen.query_one("#f-type", Select).value = "event"
        # (the search above may also have left one row: wait for the filtered list itself)
        await wait_for(pilot, lambda: table.row_count == 1 and "Alps" in table_texts(table)[0])
        screen.query_one("#f-type", Select).clear()
        await wait_for(pilot, lambda: table.row_count == 3)

        # Tag filter.
        screen.query_one("#f-tag", Input).value = "food"
        screen.query_one("#f-tag", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: table.row_count == 1)
        screen.query_one("#f-tag", Input).value = ""
        screen.query_one("#f-tag", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: table.row_count == 3)

        def row_of(word: str) -> int:
            return next(i for i, t in enumerate(table_texts(table)) if word in t)

        # Edit: the old text stays in the history.
        table.focus()
        table.move_cursor(row=row_of("Ana"))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EditMemory))
        from textual.widgets import TextArea

        app.screen.query_one(TextArea).text = "My sister Ana lives in Braga"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, MemoryScreen))
        await wait_for(pilot, lambda: any("Braga" in t for t in table_texts(table)))
        ana = next(it for it in api.list() if "Braga" in it.text)
        texts = [v.text for v in api.history(ana.id)]
        assert "My sister Ana lives in Porto" in texts and "My sister Ana lives in Braga" in texts

        # Pin.
        table.move_cursor(row=row_of("Braga"))
        await pilot.press("p")
        await wait_for(pilot, lambda: api.get(ana.id).pinned)

        # Open: the detail shows the history (both versions).
        table.move_cursor(row=row_of("Braga"))
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, MemoryDetail))
        detail = app.screen
        history = detail.query_one("#history", DataTable)
        await wait_for(pilot, lambda: history.row_count >= 2)
        assert "pinned" in str(detail.query_one("#detail-fields", Static).render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MemoryScreen))

        # Forget, then see it with the status filter, restore it.
        table.move_cursor(row=row_of("Alps"))
        alps = next(it for it in api.list() if "Alps" in it.text)
        await pilot.press("f")
        await wait_for(pilot, lambda: api.get(alps.id).status == "deleted")
        await wait_for(pilot, lambda: table.row_count == 2)
        screen.query_one("#f-status", Select).value = "deleted"
        await wait_for(pilot, lambda: table.row_count == 1)
        table.move_cursor(row=0)
        await pilot.press("r")
        await wait_for(pilot, lambda: api.get(alps.id).status == "active")

        # Purge asks first; "No" keeps it, "Purge" removes it for good.
        screen.query_one("#f-status", Select).value = "active"
        await wait_for(pilot, lambda: table.row_count == 3)
        table.focus()
        table.move_cursor(row=row_of("Alps"))
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("enter")  # the focused button is "No"
        await wait_for(pilot, lambda: isinstance(app.screen, MemoryScreen))
        assert api.get(alps.id).text.startswith("Went hiking")
        table.move_cursor(row=row_of("Alps"))
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.click("#yes")
        await wait_for(pilot, lambda: table.row_count == 2)
        from memos_desktop.errors import NotFoundError

        with pytest.raises(NotFoundError):
            api.get(alps.id)


def test_since_filter_parses_relative_and_absolute_times():
    now = 1_000_000.0
    assert parse_since("", now) is None
    assert parse_since("2d", now) == now - 2 * 86400
    assert parse_since("3h", now) == now - 3 * 3600
    assert parse_since("2026-05-01", now) is not None
    from memos_desktop.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="7d"):
        parse_since("yesterday-ish", now)


# --- conversations -----------------------------------------------------------------------------


async def test_conversations_open_rename_archive_export_delete(
    profile, make_app: AppFactory, tmp_path: Path
):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        api = await open_app(pilot, app)
        store = api.store
        conv = store.conversations.create(api.user.id, api.cube.id, title="Trip planning")
        store.conversations.add_message(conv.id, "user", "Where should we go in June?")
        store.conversations.add_message(
            conv.id,
            "assistant",
            "How about **Madeira**?",
            meta={
                "used": [
                    {
                        "id": "x",
                        "text": "likes islands",
                        "type": "preference",
                        "score": 0.5,
                        "origin": "retrieved",
                        "sources": [],
                    }
                ]
            },
        )
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, ConversationsScreen))
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 1)

        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        app.screen.query_one(Input).value = "June trip"
        await pilot.press("enter")
        await wait_for(pilot, lambda: api.conversation(conv.id).title == "June trip")

        target = tmp_path / "out" / "june.md"
        await wait_for(pilot, lambda: isinstance(app.screen, ConversationsScreen))
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        app.screen.query_one(Input).value = str(target)
        await pilot.press("enter")
        await wait_for(pilot, target.exists)
        md = target.read_text()
        assert md.startswith("# June trip") and "How about **Madeira**?" in md
        assert "likes islands" in md

        # Enter opens it in the chat, with the answer's used memories in the side panel.
        await wait_for(pilot, lambda: isinstance(app.screen, ConversationsScreen))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ChatScreen))
        chat = app.screen
        await wait_for(pilot, lambda: chat.conversation_id == conv.id)
        from memos_desktop.tui.widgets import UsedMemories

        assert chat.query_one(UsedMemories).option_count == 1

        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, ConversationsScreen))
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        await pilot.press("a")
        await wait_for(pilot, lambda: api.conversation(conv.id).archived)
        await wait_for(pilot, lambda: table.row_count == 0)
        await pilot.press("v")  # show archived
        await wait_for(pilot, lambda: table.row_count == 1)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.click("#yes")
        await wait_for(pilot, lambda: api.conversations(archived=True) == [])
        assert api.messages(conv.id) == []  # its messages went with it


# --- cubes -------------------------------------------------------------------------------------


async def test_cubes_create_switch_rename_delete(profile, make_app: AppFactory):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        api = await open_app(pilot, app)
        await pilot.press("f4")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "CubesScreen")
        screen = app.screen
        table = screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        await pilot.press(*"work", "enter")
        await wait_for(pilot, lambda: table.row_count == 2)
        row = next(i for i, t in enumerate(table_texts(table)) if "work" in t)
        table.move_cursor(row=row)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.status.cube == "work")
        assert api.cube.name == "work"
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        app.screen.query_one(Input).value = "job"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.status.cube == "job")
        assert ".memcube" in str(screen.query_one("#cubes-sync").render())  # x / i: files
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.click("#yes")
        await wait_for(pilot, lambda: [c.name for c in api.list_cubes()] == ["personal"])
        await wait_for(pilot, lambda: app.status.cube == "personal")


# --- models ------------------------------------------------------------------------------------


async def test_models_lists_needs_and_offline_pull_fails_clearly(
    profile, make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    app = make_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await open_app(pilot, app)
        await pilot.press("f5")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ModelsScreen")
        screen = app.screen
        table = screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count > 2)
        rows = table_texts(table)
        gemma = next(r for r in rows if "gemma3-270m" in r)
        assert "built in" in gemma and "MB" in gemma  # disk and RAM needs
        hub = next(i for i, r in enumerate(rows) if " no " in f" {r} ")
        table.focus()
        table.move_cursor(row=hub)
        await pilot.press("p")
        label = screen.query_one("#pull-label", Static)
        await wait_for(pilot, lambda: "failed" in str(label.render()))
        assert "offline" in str(label.render()).lower() or "network" in str(label.render())
        # Using a model that is not downloaded says how to get it, and changes nothing.
        await pilot.press("u")
        assert app.settings.models.chat == Settings().models.chat


async def test_switching_the_chat_model_saves_it_and_reloads(
    profile, make_app: AppFactory, tiny_other_path: Path, paths: Paths
):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_app(pilot, app)
        await wait_for(pilot, lambda: app.status.state == "ready")
        await pilot.press(*f"/model {tiny_other_path}", "enter")
        await wait_for(pilot, lambda: app.settings.models.chat == str(tiny_other_path))
        await wait_for(pilot, lambda: app.status.state == "ready")
        assert load_settings(paths).models.chat == str(tiny_other_path)


# --- settings ----------------------------------------------------------------------------------


async def test_settings_form_saves_theme_engine_and_keymap(
    profile, make_app: AppFactory, paths: Paths
):
    app = make_app()
    async with app.run_test(size=(140, 50)) as pilot:
        await open_app(pilot, app)
        await pilot.press("f6")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "SettingsScreen")
        screen = app.screen
        screen.query_one("#set-theme", Select).value = "nord"
        screen.query_one("#set-engine-n_ctx", Input).value = "not a number"
        await pilot.press("ctrl+s")
        assert "not a int" in str(screen.query_one("#settings-error").render())
        assert not paths.config_file.exists() or "nord" not in paths.config_file.read_text()
        screen.query_one("#set-engine-n_ctx", Input).value = "2048"

        # Remap "new chat" (chat.new) to f9 through the keymap table.
        keys = screen.query_one("#keymap", DataTable)
        row = keys.get_row_index("chat.new")
        keys.focus()
        keys.move_cursor(row=row)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        app.screen.query_one(Input).value = "f9"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is screen)
        assert keys.get_row("chat.new")[1] == "f9 (was ctrl+n)"
        await pilot.press("ctrl+s")
        saved = tomllib.loads(paths.config_file.read_text())
        assert saved["ui"]["theme"] == "nord"
        assert saved["engine"]["n_ctx"] == 2048
        assert saved["keymap"]["chat.new"] == "f9"
        assert app.theme == "nord"

        # The new key works in the chat: f9 starts a new conversation.
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, ChatScreen))
        chat = app.screen
        chat.conversation_id = "something"
        await pilot.press("f9")
        assert chat.conversation_id is None


# --- first run, unlock, help, palette ------------------------------------------------------------


async def test_first_run_creates_a_passphrase_profile_and_opens_it(
    make_app: AppFactory, paths: Paths, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("MEMOS_DESKTOP_PASSPHRASE")
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, FirstRunScreen))
        screen = app.screen
        # The packaged model is offered as ready offline.
        assert screen.query_one("#model", Select).value == "gemma3-270m"
        await pilot.press(*"short", "enter")
        await pilot.press(*"short", "enter")
        assert "at least 8" in str(screen.query_one("#first-run-error").render())
        screen.query_one("#pass1", Input).value = "a long passphrase"
        screen.query_one("#pass2", Input).value = "another one"
        screen.query_one("#pass2", Input).focus()
        await pilot.press("enter")
        assert "differ" in str(screen.query_one("#first-run-error").render())
        screen.query_one("#pass2", Input).value = "a long passphrase"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.session is not None)
        await wait_for(pilot, lambda: isinstance(app.screen, ChatScreen))
        assert app.status.encryption == "passphrase"
        assert (paths.profile_dir("default") / "key.json").exists()


async def test_unlock_says_wrong_passphrase_and_then_opens(
    profile, make_app: AppFactory, monkeypatch: pytest.MonkeyPatch, paths: Paths
):
    monkeypatch.delenv("MEMOS_DESKTOP_PASSPHRASE")
    pdir = paths.profile_dir("default")
    before = {p.name: p.read_bytes() for p in pdir.iterdir() if p.is_file()}
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, UnlockScreen))
        screen = app.screen
        await pilot.press(*"not the passphrase", "enter")
        err = screen.query_one("#unlock-error", Static)
        await wait_for(pilot, lambda: "Wrong passphrase" in str(err.render()))
        assert {p.name: p.read_bytes() for p in pdir.iterdir() if p.is_file()} == before
        assert screen.query_one(Input).value == ""
        await pilot.press(*PASSPHRASE, "enter")
        await wait_for(pilot, lambda: app.session is not None)
        await wait_for(pilot, lambda: isinstance(app.screen, ChatScreen))


async def test_help_lists_every_key_with_its_id(profile, make_app: AppFactory):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_app(pilot, app)
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        ids = [
            str(r[2])
            for r in map(
                app.screen.query_one(DataTable).get_row_at,
                range(app.screen.query_one(DataTable).row_count),
            )
        ]
        assert {"app.quit", "app.help", "chat.cancel", "chat.new", "chat.temporary"} <= set(ids)
        await pilot.press("escape")
        assert isinstance(app.screen, ChatScreen)


def test_every_binding_has_a_unique_id():
    from memos_desktop.tui.settings import all_bindings

    rows = all_bindings()
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)) > 30
    import importlib
    import pkgutil

    from textual.binding import Binding

    import memos_desktop.tui

    # Every module of the package, so a new screen cannot slip past.
    for info in pkgutil.iter_modules(memos_desktop.tui.__path__):
        module = importlib.import_module(f"memos_desktop.tui.{info.name}")
        for obj in vars(module).values():
            own = isinstance(obj, type) and "BINDINGS" in vars(obj)
            for b in vars(obj)["BINDINGS"] if own else []:
                if isinstance(b, Binding) and obj.__module__ == module.__name__:
                    assert b.id, f"{obj.__name__} binding {b.key} has no id"
                    assert b.id in ids, f"{b.id} is missing from the settings keymap table"


async def test_command_palette_reaches_screen_actions(profile, make_app: AppFactory):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_app(pilot, app)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for t in (
            "Go to Memory browser",
            "Go to Cubes",
            "Go to Models",
            "Go to Settings",
            "New chat",
            "Conversations",
            "Toggle temporary chat",
            "Help",
        ):
            assert t in titles
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"temporary")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.status.temporary)


async def test_a_missing_model_file_is_said_and_the_app_stays_usable(
    profile, paths: Paths, embedder
):
    settings = Settings()
    settings = type(settings)(
        **{**settings.__dict__, "models": type(settings.models)(chat="/nonexistent/model.gguf")}
    )
    app = MemosApp(paths, settings, "default", embedder_factory=lambda: embedder)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.status.state == "no model")
        assert app.model_error and "nonexistent" in app.model_error
        # Sending says why, and keeps the message; the memory browser still works.
        await pilot.press(*"hello", "enter")
        assert isinstance(app.screen, ChatScreen)
        assert app.screen.query_one("#prompt", Input).value == "hello"
        api_of(app).remember("I like tea")
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, MemoryScreen))
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 1)


async def test_models_pull_shows_progress_and_installs(
    profile, make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
):
    """Pull against a local stand-in for the hub (no traffic leaves the machine)."""
    import hashlib
    import os

    from memos_desktop.engines import catalog
    from memos_desktop.engines.catalog import ModelEntry
    from tests.engines.hub_server import FakeHub, HubFile

    data = os.urandom(3 * 1024 * 1024 + 7)
    entry = ModelEntry(
        id="test-chat-pull",
        kind="chat",
        title="Test pull",
        license="MIT",
        size_bytes=len(data),
        ram_bytes=10 * 2**20,
        source="hub",
        repo_id="acme/test-GGUF",
        filename="test-q8_0.gguf",
        sha256=hashlib.sha256(data).hexdigest(),
    )
    monkeypatch.setitem(catalog.CATALOG, entry.id, entry)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    hub = FakeHub(files={"acme/test-GGUF/test-q8_0.gguf": HubFile(data)}).start()
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    try:
        app = make_app()
        async with app.run_test(size=(140, 40)) as pilot:
            await open_app(pilot, app)
            await pilot.press("f5")
            await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ModelsScreen")
            screen = app.screen
            table = screen.query_one(DataTable)
            await wait_for(pilot, lambda: table.row_count > 2)
            table.focus()
            table.move_cursor(row=table.get_row_index(entry.id))
            bar = screen.query_one("#pull-progress", ProgressBar)
            await pilot.press("p")
            label = screen.query_one("#pull-label", Static)
            await wait_for(pilot, lambda: "installed" in str(label.render()))
            await wait_for(pilot, lambda: " yes " in " ".join(map(str, table.get_row(entry.id))))
            # The bar was driven by the download's progress, up to the whole file.
            assert (bar.total, bar.progress) == (len(data), len(data))
            installed = catalog.installed_path(app.paths, entry.id)
            assert installed is not None and installed.read_bytes() == data
    finally:
        hub.stop()


async def test_the_passphrase_is_not_in_any_worker_description(
    profile, make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
):
    """Textual names a worker after its arguments unless told otherwise; a passphrase would
    then show up in worker names, logs and tracebacks."""
    monkeypatch.delenv("MEMOS_DESKTOP_PASSPHRASE")
    app = make_app()
    seen: list[str] = []
    run_worker = app.run_worker

    def recording(*args, **kwargs):  # type: ignore[no-untyped-def]
        worker = run_worker(*args, **kwargs)
        seen.append(f"{worker.name} {worker.description}")
        return worker

    app.run_worker = recording  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, UnlockScreen))
        await pilot.press(*PASSPHRASE, "enter")
        await wait_for(pilot, lambda: app.session is not None)
    assert any("open the profile" in d for d in seen)
    assert not any(PASSPHRASE in d for d in seen)


def test_start_state_reads_the_profiles_key_file(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memos_desktop.api import session
    from memos_desktop.store.profile import KEYFILE, create_profile

    assert session.KEYFILE == KEYFILE
    assert session.start_state(paths, "default").kind == "first_run"
    create_profile(paths, "default", Settings(), method="passphrase", passphrase=PASSPHRASE).close()
    assert session.start_state(paths, "default") == session.StartState("open", "passphrase")
    monkeypatch.delenv("MEMOS_DESKTOP_PASSPHRASE")
    assert session.start_state(paths, "default").kind == "unlock"
    (paths.profile_dir("default") / KEYFILE).write_text("{not json")
    assert session.start_state(paths, "default").kind == "open"  # opening says what is wrong


def test_clearing_the_selection_with_no_screen_does_not_crash_the_app(
    make_app: AppFactory,
) -> None:
    """An Input that mounts while the screen stack is empty asks the app to clear the selection
    (seen on Python 3.12: every app start crashed with ScreenStackError, Textual 8.2)."""
    app = make_app()
    assert not app.screen_stack
    app.clear_selection()  # the fix: no ScreenStackError
