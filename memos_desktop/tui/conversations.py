"""The conversation list: open, rename, archive, delete, export to Markdown."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Label

from memos_desktop.tui.dialogs import ConfirmScreen, PromptScreen
from memos_desktop.tui.widgets import selected_key, when

if TYPE_CHECKING:
    from memos_desktop.tui.app import MemosApp


def export_path(title: str, directory: Path | None = None) -> Path:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower()[:40] or "conversation"
    return (directory or Path.cwd()) / f"{slug}.md"


class ConversationsScreen(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Close", id="conversations.close"),
        Binding("r", "rename", "Rename", id="conversations.rename"),
        Binding("a", "archive", "Archive/unarchive", id="conversations.archive"),
        Binding("d", "delete", "Delete", id="conversations.delete"),
        Binding("x", "export", "Export .md", id="conversations.export"),
        Binding("v", "toggle_archived", "Show archived", id="conversations.archived"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.show_archived = False

    @property
    def memos(self) -> MemosApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Conversations", id="conv-title", classes="title")
            yield DataTable(id="conversations", cursor_type="row")
            yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("title", "updated", "id")
        table.focus()
        self.reload()

    def reload(self) -> None:
        archived = self.show_archived

        def fill(convs: list[Any]) -> None:
            table = self.query_one(DataTable)
            table.clear()
            for c in convs:
                table.add_row(c.title or "(untitled)", when(c.updated_at), c.id[:8], key=c.id)
            self.query_one("#conv-title", Label).update(
                f"{'Archived' if archived else 'Conversations'} ({len(convs)})  "
                "Enter opens · r rename · a archive · d delete · x export · v archived"
            )

        self.memos.run_api(lambda s: s.api.conversations(archived=archived), fill)

    def _selected(self) -> str | None:
        return selected_key(self.query_one(DataTable))

    @on(DataTable.RowSelected)
    def open(self, event: DataTable.RowSelected) -> None:
        self.dismiss(str(event.row_key.value))

    def action_toggle_archived(self) -> None:
        self.show_archived = not self.show_archived
        self.reload()

    def action_rename(self) -> None:
        cid = self._selected()
        if cid is None:
            return

        def renamed(title: str | None) -> None:
            if title:
                self.memos.run_api(
                    lambda s: s.api.rename_conversation(cid, title), lambda _: self.reload()
                )

        table = self.query_one(DataTable)
        current = str(table.get_row(cid)[0])
        self.app.push_screen(PromptScreen("New title", current), renamed)

    def action_archive(self) -> None:
        cid = self._selected()
        if cid is not None:
            archive = not self.show_archived
            self.memos.run_api(
                lambda s: s.api.archive_conversation(cid, archive), lambda _: self.reload()
            )

    def action_delete(self) -> None:
        cid = self._selected()
        if cid is None:
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.memos.run_api(
                    lambda s: s.api.delete_conversation(cid), lambda _: self.reload()
                )

        self.app.push_screen(
            ConfirmScreen(
                "Delete this conversation and its messages? Memories taken from it stay "
                "(forget them in the memory browser).",
                "Delete",
                danger=True,
            ),
            confirmed,
        )

    def action_export(self) -> None:
        cid = self._selected()
        if cid is None:
            return
        title = str(self.query_one(DataTable).get_row(cid)[0])

        def chosen(path: str | None) -> None:
            if not path:
                return
            target = Path(path).expanduser()

            def write(s: Any) -> Path:
                text = s.api.export_markdown(cid)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
                return target

            self.memos.run_api(
                write,
                lambda p: self.app.notify(
                    f"Exported to {p} (plain text: it is not encrypted).", title="Export"
                ),
            )

        self.app.push_screen(
            PromptScreen("Export to (a Markdown file, not encrypted)", str(export_path(title))),
            chosen,
        )
