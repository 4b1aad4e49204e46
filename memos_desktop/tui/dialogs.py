"""Small modal dialogs: confirm, ask for a line of text, and the help screen with every key."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, OptionList, Static
from textual.widgets.option_list import Option


class ConfirmScreen(ModalScreen[bool]):
    """Yes / no. Escape and "No" answer no; the default button is "No" for destructive acts."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(False)", "Cancel", id="dialog.cancel"),
    ]

    def __init__(self, question: str, yes: str = "Yes", *, danger: bool = False) -> None:
        super().__init__()
        self.question = question
        self.yes = yes
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="dialog-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.yes, variant="error" if self.danger else "primary", id="yes")
                yield Button("No", id="no")

    def on_mount(self) -> None:
        self.query_one("#no" if self.danger else "#yes", Button).focus()

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class PromptScreen(ModalScreen[str | None]):
    """Ask for one line of text (a title, a name, a path). Escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Cancel", id="dialog.cancel"),
    ]

    def __init__(self, question: str, value: str = "", *, password: bool = False) -> None:
        super().__init__()
        self.question = question
        self.value = value
        self.password = password

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="dialog-text")
            yield Input(self.value, password=self.password, id="answer")
            with Horizontal(classes="dialog-buttons"):
                yield Button("OK", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def submitted(self) -> None:
        self._answer()

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._answer()
        else:
            self.dismiss(None)

    def _answer(self) -> None:
        value = self.query_one(Input).value.strip()
        self.dismiss(value or None)


class ChoiceScreen(ModalScreen[str | None]):
    """Choose one of a few (id, text) options, or "none of them" (answers ""). Escape
    cancels (answers None)."""

    NONE = "__none__"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Cancel", id="dialog.cancel"),
    ]

    def __init__(
        self, question: str, options: tuple[tuple[str, str], ...], none: str = "None of them"
    ) -> None:
        super().__init__()
        self.question = question
        self.options = options
        self.none = none

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(self.question, classes="dialog-text")
            yield OptionList(
                *(Option(text, id=oid) for oid, text in self.options),
                Option(self.none, id=self.NONE),
                id="choices",
            )

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        oid = event.option.id or ""
        self.dismiss("" if oid == self.NONE else oid)


class HelpScreen(ModalScreen[None]):
    """Every key of the app and of the screen below, with its binding id (for the keymap)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,f1", "dismiss(None)", "Close", id="dialog.close"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Keys  (remap any of them in Settings, F6, by its id)", classes="title")
            yield DataTable(id="keys", cursor_type="row")
            yield Static(
                "Ctrl+P opens the command palette (every action). In chat: "
                "/remember, /forget, /correct, /cube, /model, /temp, /new, /help.",
                classes="dialog-text",
            )

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("key", "action", "id")
        stack = self.app.screen_stack
        below = stack[-2] if len(stack) > 1 else self.app.screen
        for key, description, binding_id in binding_rows(self.app, below):
            table.add_row(Text(key, style="bold"), description, binding_id)
        table.focus()


def binding_rows(app: object, screen: object) -> list[tuple[str, str, str]]:
    """(key as the user sees it, what it does, id) for the app's and the screen's bindings,
    with the keymap applied."""
    from textual.app import App

    assert isinstance(app, App)
    keymap = dict(getattr(app, "_keymap", {}) or {})
    rows: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for owner in (app, screen):
        for b in getattr(owner, "BINDINGS", []):
            if not isinstance(b, Binding) or not b.id or b.id in seen:
                continue
            seen.add(b.id)
            key = keymap.get(b.id, b.key)
            rows.append((app.get_key_display(Binding(key, b.action)), b.description, b.id))
    return rows
