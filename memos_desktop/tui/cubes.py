"""Cubes: create, switch, rename, delete. Export / import arrive with the sync format."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Header, Static

from memos_desktop.tui.base import MemosScreen
from memos_desktop.tui.dialogs import ConfirmScreen, PromptScreen
from memos_desktop.tui.widgets import StatusBar, restore_cursor, selected_key, when

if TYPE_CHECKING:
    pass

SYNC_NOTE = (
    "Export / import of a cube to a portable file comes with the sync format; "
    "it is not available yet."
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

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="cubes-main"):
            yield Static("", id="cubes-count")
            yield DataTable(id="cubes-table", cursor_type="row")
            yield Static(SYNC_NOTE, id="cubes-sync", classes="dim")
        yield StatusBar()
        yield Footer()

    def setup(self) -> None:
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

    def action_export(self) -> None:
        self.app.notify(SYNC_NOTE, severity="warning")

    def action_import_cube(self) -> None:
        self.app.notify(SYNC_NOTE, severity="warning")

    def palette_commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand("New cube", "Create a memory cube", self.action_create)
        yield SystemCommand("Switch cube", "Use the selected cube", self.action_switch)
        yield SystemCommand("Rename cube", "Rename the selected cube", self.action_rename)
        yield SystemCommand("Delete cube", "After confirmation", self.action_delete)
