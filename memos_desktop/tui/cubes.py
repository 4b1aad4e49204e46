"""Cubes: create, switch, rename, delete; export to and import from a cube file.

Export and import run in one worker (group ``cube-file``) that holds the session lock and
never touches widgets: it posts :class:`CubesScreen.TransferProgressed` and
:class:`CubesScreen.TransferFinished`, and their handlers move the progress bar and report.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, ProgressBar, Static

from memos_desktop.errors import MemosError
from memos_desktop.tui.base import MemosScreen
from memos_desktop.tui.cube_picker import CubeFilePicker
from memos_desktop.tui.dialogs import ChoiceScreen, ConfirmScreen, PromptScreen
from memos_desktop.tui.widgets import StatusBar, restore_cursor, selected_key, when

log = logging.getLogger(__name__)

SYNC_NOTE = (
    "x exports the selected cube to an encrypted .memcube file (for a passphrase; "
    "`memos-desktop cubes export --to` encrypts for another device); i imports one."
)


class CubesScreen(MemosScreen):
    NAME = "Cubes"
    RELOADS = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "create", "New cube", id="cubes.create"),
        Binding("s", "switch", "Switch to", id="cubes.switch"),
        Binding("r", "rename", "Rename", id="cubes.rename"),
        Binding("d", "delete", "Delete", id="cubes.delete"),
        Binding("x", "export", "Export", id="cubes.export"),
        Binding("i", "import_cube", "Import", id="cubes.import"),
    ]

    class TransferProgressed(Message):
        def __init__(self, phase: str, done: int, total: int) -> None:
            super().__init__()
            self.phase = phase
            self.done = done
            self.total = total

    class TransferFinished(Message):
        def __init__(self, text: str, error: str | None) -> None:
            super().__init__()
            self.text = text
            self.error = error

    def __init__(self) -> None:
        super().__init__()
        self.transferring = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="cubes-main"):
            yield Static("", id="cubes-count")
            yield DataTable(id="cubes-table", cursor_type="row")
            yield Static(SYNC_NOTE, id="cubes-sync", classes="dim")
            yield Static("", id="cube-file-label")
            yield ProgressBar(id="cube-file-progress", show_eta=False)
        yield StatusBar()
        yield Footer()

    def setup(self) -> None:
        self.query_one("#cube-file-progress").display = False
        self.query_one(DataTable).add_columns(
            "", "name", "memories", "embedding", "description", "created"
        )

    def reload(self) -> None:
        def fetch(s: Any) -> tuple[list[tuple[Any, int]], str]:
            cubes = s.api.list_cubes()
            counts = [(c, s.api.count(cube=c.id)) for c in cubes]
            return counts, s.api.cube.id

        self.memos.run_api(fetch, self.fill)

    def fill(self, data: tuple[list[tuple[Any, int]], str]) -> None:
        rows, current = data
        table = self.query_one(DataTable)
        keep = selected_key(table)
        table.clear()
        for c, n in rows:
            table.add_row(
                "▶" if c.id == current else "",
                c.name,
                str(n),
                f"{c.embed_model} ({c.embed_dim})",
                c.description,
                when(c.created_at),
                key=c.id,
            )
        restore_cursor(table, keep)
        self.query_one("#cubes-count", Static).update(
            f"{len(rows)} cubes · Enter/s switch · n new · r rename · d delete"
        )

    def _selected(self) -> tuple[str, str] | None:
        table = self.query_one(DataTable)
        key = selected_key(table)
        return None if key is None else (key, str(table.get_row(key)[1]))

    @on(DataTable.RowSelected)
    def _row(self) -> None:
        self.action_switch()

    def action_switch(self) -> None:
        sel = self._selected()
        if sel is None:
            return

        def switched(cube: Any) -> None:
            self.memos.status.cube = cube.name
            self.memos.refresh_status()
            self.app.notify(f"Now using cube {cube.name}")
            self.reload()

        self.memos.run_api(lambda s: s.api.use_cube(sel[0]), switched)

    def action_create(self) -> None:
        def named(name: str | None) -> None:
            if name:
                self.memos.run_api(lambda s: s.api.create_cube(name), lambda _: self.reload())

        self.app.push_screen(PromptScreen("Name of the new cube"), named)

    def action_rename(self) -> None:
        sel = self._selected()
        if sel is None:
            return

        def named(name: str | None) -> None:
            if name:

                def done(cube: Any) -> None:
                    if self.memos.status.cube == sel[1]:
                        self.memos.status.cube = cube.name
                        self.memos.refresh_status()
                    self.reload()

                self.memos.run_api(lambda s: s.api.rename_cube(sel[0], name), done)

        self.app.push_screen(PromptScreen("New name", sel[1]), named)

    def action_delete(self) -> None:
        sel = self._selected()
        if sel is None:
            return

        def confirmed(yes: bool | None) -> None:
            if yes:

                def done(n: int) -> None:
                    self.app.notify(f"Deleted cube {sel[1]} and its {n} memories.")
                    self.memos.status.cube = ""
                    self.memos.run_api(lambda s: s.api.cube.name, lambda name: self._current(name))

                self.memos.run_api(lambda s: s.api.delete_cube(sel[0]), done)

        self.app.push_screen(
            ConfirmScreen(
                f"Delete cube '{sel[1]}' and every memory in it? This cannot be undone.",
                "Delete",
                danger=True,
            ),
            confirmed,
        )

    def _current(self, name: str) -> None:
        self.memos.status.cube = name
        self.memos.refresh_status()
        self.reload()

    # --- cube files ----------------------------------------------------------------------

    def _busy(self) -> bool:
        if self.transferring:
            self.app.notify("A cube file is being written or read; wait for it.")
        return self.transferring

    def action_export(self) -> None:
        sel = self._selected()
        if sel is None or self._busy():
            return
        default = str(Path.home() / f"{sel[1]}.memcube")

        def picked(path: str | None) -> None:
            if not path:
                return

            def secret(passphrase: str | None) -> None:
                if passphrase:
                    self._start(f"Exporting {sel[1]}…")
                    self.transfer("export", sel[0], path, passphrase)

            self.app.push_screen(
                PromptScreen("Passphrase to encrypt the file with", password=True), secret
            )

        self.app.push_screen(
            CubeFilePicker(f"Export cube '{sel[1]}' to", Path.home(), default), picked
        )

    def action_import_cube(self) -> None:
        if self._busy():
            return
        sel = self._selected()

        def picked(path: str | None) -> None:
            if not path:
                return
            if sel is None:
                self._ask_secret(path, None)
                return

            def where(choice: str | None) -> None:
                if choice is not None:
                    self._ask_secret(path, sel[0] if choice == "merge" else None)

            self.app.push_screen(
                ChoiceScreen(
                    "Import the file as",
                    (("new", "A new cube"), ("merge", f"Merged into cube '{sel[1]}'")),
                    none="Cancel",
                ),
                lambda c: where(c or None),
            )

        self.app.push_screen(CubeFilePicker("Cube file to import", Path.home()), picked)

    def _ask_secret(self, path: str, into: str | None) -> None:
        def mode_known(mode: str) -> None:
            if mode != "passphrase":
                self._start("Importing…")
                self.transfer("import", into, path, None)
                return

            def secret(passphrase: str | None) -> None:
                if passphrase:
                    self._start("Importing…")
                    self.transfer("import", into, path, passphrase)

            self.app.push_screen(PromptScreen("Passphrase of the file", password=True), secret)

        self.memos.run_api(lambda s: s.api.cube_file_mode(path), mode_known)

    def action_reembed(self) -> None:
        if self._busy():
            return
        self._start("Re-embedding…")
        self.transfer("reembed", None, "", None)

    def _start(self, text: str) -> None:
        self.transferring = True
        self.query_one("#cube-file-label", Static).update(text)
        bar = self.query_one("#cube-file-progress", ProgressBar)
        bar.update(total=None, progress=0)
        bar.display = True

    @work(thread=True, exclusive=True, group="cube-file", exit_on_error=False)
    def transfer(self, what: str, cube: str | None, path: str, passphrase: str | None) -> None:
        session = self.memos.session
        if session is None:
            self.post_message(self.TransferFinished("", "The profile is not open yet."))
            return

        def progress(*args: Any) -> None:
            phase, done, total = args if len(args) == 3 else ("export", *args)
            self.post_message(self.TransferProgressed(phase, done, total))

        try:
            with session.lock:
                if what == "export":
                    r = session.api.export_cube(
                        cube, path, passphrase=passphrase, progress=progress
                    )
                    text = f"Exported {r.memories} memories of {r.cube} to {r.path}."
                elif what == "reembed":
                    e = session.api.run_reembed(progress=lambda d, t: progress("reembed", d, t))
                    text = f"Re-embedding: {e.summary()}."
                else:
                    i = session.api.import_cube(
                        path, passphrase=passphrase, into=cube, progress=progress
                    )
                    text = f"Imported into cube {i.cube}: {i.summary()}."
                    if i.trust == "unknown":
                        text += f" Signed by device {i.signer_device}, not one of yours."
                    if i.reembed_queued:
                        text += " Run 'Re-embed now' (command palette) to embed them."
        except (MemosError, OSError) as exc:
            self.post_message(self.TransferFinished("", str(exc)))
            return
        except Exception as exc:  # a bug: say so, and free the screen for the next transfer
            log.exception("cube file %s failed", what)
            self.post_message(
                self.TransferFinished(
                    "", f"an unexpected error ({type(exc).__name__}); see the log"
                )
            )
            return
        self.post_message(self.TransferFinished(text, None))

    def on_cubes_screen_transfer_progressed(self, msg: TransferProgressed) -> None:
        verb = {
            "export": "Exporting",
            "verify": "Verifying",
            "apply": "Importing",
            "reembed": "Re-embedding",
        }
        self.query_one("#cube-file-label", Static).update(
            f"{verb.get(msg.phase, msg.phase)}: {msg.done}/{msg.total} memories"
        )
        self.query_one("#cube-file-progress", ProgressBar).update(
            total=max(msg.total, 1), progress=msg.done
        )

    def on_cubes_screen_transfer_finished(self, msg: TransferFinished) -> None:
        self.transferring = False
        self.query_one("#cube-file-progress").display = False
        label = self.query_one("#cube-file-label", Static)
        if msg.error:
            label.update(f"Failed: {msg.error}")
            self.app.notify(msg.error, title="Cube file", severity="error", timeout=15)
        else:
            label.update(msg.text)
            self.app.notify(msg.text, title="Cube file")
        self.reload()

    def palette_commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand("New cube", "Create a memory cube", self.action_create)
        yield SystemCommand("Switch cube", "Use the selected cube", self.action_switch)
        yield SystemCommand("Rename cube", "Rename the selected cube", self.action_rename)
        yield SystemCommand("Delete cube", "After confirmation", self.action_delete)
        yield SystemCommand("Export cube", "To an encrypted cube file", self.action_export)
        yield SystemCommand("Import cube", "From a cube file", self.action_import_cube)
        yield SystemCommand(
            "Re-embed now",
            "Embed imported memories that lack a vector of their cube's model",
            self.action_reembed,
        )
