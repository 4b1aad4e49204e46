"""First run (create the encrypted profile, choose how the key is kept, pick a model) and the
unlock screen for a passphrase-protected profile."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Select, Static

from memos_desktop.errors import MemosError, WrongPassphraseError

if TYPE_CHECKING:
    from memos_desktop.tui.host import MemosHost

MIN_PASSPHRASE = 8


class FirstRunScreen(Screen[None]):
    """Create the profile. The default model is packaged: it works with no network."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "app.quit", "Quit", id="firstrun.quit"),
    ]

    @property
    def memos(self) -> MemosHost:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        from memos_desktop.api import keyring_choice, list_models

        usable, why = keyring_choice()
        self.keyring_usable = usable
        app = self.memos
        chat_models = [m for m in list_models(app.paths, app.settings) if m.entry.kind == "chat"]
        options = [
            (
                f"{m.entry.title} — {'ready offline' if m.installed else 'needs download'}",
                m.entry.id,
            )
            for m in chat_models
        ]
        installed = {m.entry.id for m in chat_models if m.installed}
        default = app.settings.models.chat
        if default not in {m.entry.id for m in chat_models}:
            options.insert(0, (f"{default} (from your settings)", default))
            installed.add(default)
        with Vertical(classes="dialog onboarding"):
            yield Label("Welcome to memos-desktop", classes="title")
            yield Static(
                "Your memories stay on this machine, in an encrypted database. "
                "Choose how its key is kept:",
                classes="dialog-text",
            )
            with RadioSet(id="key-method"):
                yield RadioButton(
                    "OS keyring" + ("" if usable else " (not available here)"),
                    value=usable,
                    disabled=not usable,
                    id="keyring",
                )
                yield RadioButton("Passphrase", value=not usable, id="passphrase")
            if not usable:
                yield Static(f"Keyring: {why}.", classes="dialog-text dim")
            yield Input(placeholder="passphrase", password=True, id="pass1")
            yield Input(placeholder="passphrase again", password=True, id="pass2")
            yield Static(
                "There is no way to recover memories if the passphrase is lost.",
                classes="dialog-text dim",
            )
            yield Label("Chat model")
            yield Select(
                options,
                value=default if default in installed else options[0][1],
                allow_blank=False,
                id="model",
            )
            yield Static("", id="first-run-error", classes="error")
            yield Button("Create my profile", variant="primary", id="create")

    def on_mount(self) -> None:
        self._sync_passphrase()
        first = "#pass1" if not self.keyring_usable else "#create"
        self.query_one(first).focus()

    @on(RadioSet.Changed)
    def _sync_passphrase(self) -> None:
        use_pass = self.query_one("#passphrase", RadioButton).value
        for i in ("#pass1", "#pass2"):
            self.query_one(i, Input).display = use_pass

    @on(Input.Submitted, "#pass1")
    def _next(self) -> None:
        self.query_one("#pass2", Input).focus()

    @on(Input.Submitted, "#pass2")
    @on(Button.Pressed, "#create")
    def create(self) -> None:
        use_pass = self.query_one("#passphrase", RadioButton).value
        p1 = self.query_one("#pass1", Input).value
        p2 = self.query_one("#pass2", Input).value
        error = self.query_one("#first-run-error", Static)
        if use_pass:
            if len(p1) < MIN_PASSPHRASE:
                error.update(f"The passphrase needs at least {MIN_PASSPHRASE} characters.")
                self.query_one("#pass1", Input).focus()
                return
            if p1 != p2:
                error.update("The two passphrases differ; type them again.")
                self.query_one("#pass2", Input).value = ""
                self.query_one("#pass2", Input).focus()
                return
        model = str(self.query_one("#model", Select).value)
        error.update("Creating the encrypted profile…")
        self.query_one("#create", Button).disabled = True
        self._create("passphrase" if use_pass else "keyring", p1 if use_pass else None, model)

    # A fixed description: Textual would otherwise put repr(passphrase) in the worker's name.
    @work(thread=True, exclusive=True, description="create the profile")
    def _create(self, method: str, passphrase: str | None, model: str) -> None:
        from memos_desktop.api import create_profile, use_model

        app = self.memos
        try:
            settings = app.settings
            if model != settings.models.chat:
                settings = use_model(app.paths, settings, model)
            create_profile(app.paths, app.profile, settings, method=method, passphrase=passphrase)
        except MemosError as exc:
            self.app.call_from_thread(self._failed, exc)
            return
        self.app.call_from_thread(self._created, settings, passphrase)

    def _failed(self, exc: MemosError) -> None:
        self.query_one("#first-run-error", Static).update(str(exc))
        self.query_one("#create", Button).disabled = False

    def _created(self, settings: object, passphrase: str | None) -> None:
        app = self.memos
        assert dataclasses.is_dataclass(settings)
        app.settings = settings  # type: ignore[assignment]
        app.status.model = app.settings.models.chat
        self.dismiss(None)
        app.open_profile(passphrase)


class UnlockScreen(Screen[None]):
    """Ask for the passphrase. A wrong one says so and changes nothing on disk."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "app.quit", "Quit", id="unlock.quit"),
    ]

    def __init__(self, error: MemosError | None = None) -> None:
        super().__init__()
        self._initial_error = error

    @property
    def memos(self) -> MemosHost:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog onboarding"):
            yield Label("memos-desktop is locked", classes="title")
            yield Static(
                f"Profile '{self.memos.profile}' is encrypted with a passphrase.",
                classes="dialog-text",
            )
            yield Input(placeholder="passphrase", password=True, id="passphrase")
            yield Static("", id="unlock-error", classes="error")
            yield Button("Unlock", variant="primary", id="unlock")

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        if self._initial_error is not None:
            self.show_error(self._initial_error)

    @on(Input.Submitted)
    @on(Button.Pressed, "#unlock")
    def unlock(self) -> None:
        value = self.query_one(Input).value
        if not value:
            self.query_one("#unlock-error", Static).update("Type your passphrase.")
            return
        self.query_one("#unlock-error", Static).update("Unlocking…")
        self.query_one("#unlock", Button).disabled = True
        self.memos.open_profile(value)

    def show_error(self, exc: MemosError) -> None:
        if isinstance(exc, WrongPassphraseError):
            text = "Wrong passphrase. Nothing was changed; try again."
        else:
            text = str(exc)
        self.query_one("#unlock-error", Static).update(text)
        self.query_one("#unlock", Button).disabled = False
        inp = self.query_one(Input)
        inp.value = ""
        inp.focus()

    def on_memos_app_session_opened(self) -> None:
        self.dismiss(None)
