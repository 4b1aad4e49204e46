"""Settings as a form (saved to config.toml for you): theme, chat model, engine and store
options, and the keymap (every binding has an id; Enter on a row sets its key)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Select, Static

from memos_desktop.config import Settings
from memos_desktop.errors import MemosError
from memos_desktop.tui.base import MemosScreen
from memos_desktop.tui.dialogs import PromptScreen
from memos_desktop.tui.widgets import StatusBar

if TYPE_CHECKING:
    pass


def all_bindings() -> list[tuple[str, str, str]]:
    """(id, default key, description) of every binding of the app, in screen order."""
    from memos_desktop.tui.app import MemosApp
    from memos_desktop.tui.chat import ChatScreen
    from memos_desktop.tui.conversations import ConversationsScreen
    from memos_desktop.tui.cubes import CubesScreen
    from memos_desktop.tui.dialogs import ConfirmScreen, HelpScreen, PromptScreen
    from memos_desktop.tui.memories import EditMemory, MemoryDetail, MemoryScreen
    from memos_desktop.tui.models import ModelsScreen
    from memos_desktop.tui.onboarding import FirstRunScreen, UnlockScreen

    out: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for cls in (
        MemosApp,
        ChatScreen,
        ConversationsScreen,
        MemoryScreen,
        MemoryDetail,
        EditMemory,
        CubesScreen,
        ModelsScreen,
        SettingsScreen,
        HelpScreen,
        ConfirmScreen,
        PromptScreen,
        FirstRunScreen,
        UnlockScreen,
    ):
        for b in cls.BINDINGS:
            if isinstance(b, Binding) and b.id and b.id not in seen:
                seen.add(b.id)
                out.append((b.id, b.key, b.description))
    return out


FIELDS: tuple[tuple[str, str, str], ...] = (
    # (section.field, label, help)
    ("engine.n_ctx", "Context size (tokens)", "prompt + answer; more uses more RAM"),
    ("engine.n_threads", "Threads (0 = auto)", "CPU threads for generation"),
    ("engine.activation_cache_mib", "Activation memory (MiB)", "saved KV states kept"),
    ("search.vec_weight", "Vector weight in search", "0 = words only"),
)


class SettingsScreen(MemosScreen):
    NAME = "Settings"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save", id="settings.save"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.keymap: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        from memos_desktop.api import list_models

        app = self.memos
        s = app.settings
        chats = [
            (m.entry.id, m.entry.id)
            for m in list_models(app.paths, s)
            if m.entry.kind == "chat" and m.installed
        ]
        if s.models.chat not in [c[1] for c in chats]:
            chats.append((s.models.chat, s.models.chat))
        yield Header()
        with Horizontal(id="settings-main"):
            with VerticalScroll(id="settings-form"):
                with Horizontal(classes="form-row"):
                    yield Label("Theme", classes="form-label")
                    yield Select(
                        [(t, t) for t in sorted(app.available_themes)],
                        value=app.theme,
                        allow_blank=False,
                        id="set-theme",
                    )
                with Horizontal(classes="form-row"):
                    yield Label("Chat model", classes="form-label")
                    yield Select(chats, value=s.models.chat, allow_blank=False, id="set-chat")
                with Horizontal(classes="form-row"):
                    yield Label("Durability", classes="form-label")
                    yield Select(
                        [("full (power-loss safe)", "full"), ("normal (faster)", "normal")],
                        value=s.store.durability,
                        allow_blank=False,
                        id="set-durability",
                    )
                for key, label, help_text in FIELDS:
                    section, name = key.split(".")
                    value = getattr(getattr(s, section), name)
                    with Horizontal(classes="form-row"):
                        yield Label(label, classes="form-label")
                        yield Input(str(value), id=f"set-{section}-{name}", tooltip=help_text)
                yield Static("", id="settings-error", classes="error")
                with Horizontal(classes="dialog-buttons"):
                    yield Button("Save (Ctrl+S)", variant="primary", id="save")
            with Vertical(id="settings-keys"):
                yield Label(
                    "Keys: Enter on a row changes it (empty = default)", classes="panel-title"
                )
                yield DataTable(id="keymap", cursor_type="row")
        yield StatusBar()
        yield Footer()

    def setup(self) -> None:
        self.keymap = dict(self.memos.settings.keymap)
        table = self.query_one(DataTable)
        table.add_columns("action", "key", "id")
        self.fill_keys()

    def fill_keys(self) -> None:
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        for binding_id, default, description in all_bindings():
            key = self.keymap.get(binding_id)
            shown = f"{key} (was {default})" if key and key != default else default
            table.add_row(description, shown, binding_id, key=binding_id)
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))

    @on(DataTable.RowSelected, "#keymap")
    def _remap(self, event: DataTable.RowSelected) -> None:
        binding_id = str(event.row_key.value)
        current = self.keymap.get(binding_id, "")

        def chosen(key: str | None) -> None:
            if key:
                self.keymap[binding_id] = key
            else:
                self.keymap.pop(binding_id, None)
            self.fill_keys()

        self.app.push_screen(
            PromptScreen(f"Key for {binding_id} (e.g. ctrl+k, f7; empty = default)", current),
            chosen,
        )

    def collect(self) -> Settings:
        """The form as Settings; raises MemosError naming the bad field."""
        from memos_desktop.errors import ConfigError

        s = self.memos.settings
        sections: dict[str, dict[str, Any]] = {}
        for key, label, _ in FIELDS:
            section, name = key.split(".")
            raw = self.query_one(f"#set-{section}-{name}", Input).value.strip()
            current = getattr(getattr(s, section), name)
            try:
                value: Any = type(current)(raw)
            except ValueError:
                raise ConfigError(
                    f"{label}: {raw!r} is not a {type(current).__name__}",
                    hint="fix the field and save again",
                ) from None
            if isinstance(value, (int, float)) and value < 0:
                raise ConfigError(f"{label} cannot be negative", hint="fix the field")
            sections.setdefault(section, {})[name] = value
        if sections["engine"]["n_ctx"] < 256:
            raise ConfigError("Context size must be at least 256 tokens", hint="fix the field")
        theme = str(self.query_one("#set-theme", Select).value)
        chat = str(self.query_one("#set-chat", Select).value)
        durability = str(self.query_one("#set-durability", Select).value)
        return dataclasses.replace(
            s,
            ui=dataclasses.replace(s.ui, theme=theme),
            models=dataclasses.replace(s.models, chat=chat),
            store=dataclasses.replace(s.store, durability=durability),
            engine=dataclasses.replace(s.engine, **sections["engine"]),
            search=dataclasses.replace(s.search, **sections["search"]),
            keymap=dict(self.keymap),
        )

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        error = self.query_one("#settings-error", Static)
        try:
            new = self.collect()
            self.memos.save_settings(new)
        except MemosError as exc:
            error.update(str(exc))
            return
        error.update("")
        self.app.notify("Settings saved. Engine and store options apply at the next start.")

    @on(Select.Changed, "#set-theme")
    def _preview_theme(self, event: Select.Changed) -> None:
        if event.value in self.app.available_themes:
            self.app.theme = str(event.value)

    def palette_commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand("Save settings", "Write the form to config.toml", self.action_save)
