"""The memory browser: hybrid search, filters, an item with its history and sources, edit, pin,
forget, restore, and purge (after confirmation)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import (
    Button,
    Checkbox,
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    Select,
    Static,
    TextArea,
)

from memos_desktop.api.types import (
    LISTED_TYPES,
    MEMORY_LAYERS,
    MEMORY_STATUSES,
    MEMORY_TYPES,
    SearchFilters,
)
from memos_desktop.errors import InvalidInputError
from memos_desktop.tui.base import MemosScreen
from memos_desktop.tui.dialogs import ConfirmScreen
from memos_desktop.tui.widgets import (
    StatusBar,
    restore_cursor,
    selected_key,
    source_line,
    when,
)

if TYPE_CHECKING:
    from memos_desktop.api.types import MemoryItem
    from memos_desktop.tui.app import MemosApp

ANY = "any"


def parse_since(value: str, now: float | None = None) -> float | None:
    """ "7d", "12h", "2w" or an ISO date; "" means no limit."""
    value = value.strip()
    if not value:
        return None
    now = dt.datetime.now().timestamp() if now is None else now
    units = {"h": 3600, "d": 86400, "w": 7 * 86400}
    if value[-1] in units and value[:-1].isdigit():
        return now - int(value[:-1]) * units[value[-1]]
    try:
        return dt.datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise InvalidInputError(
            f"'since' {value!r} is not a time", hint="use 7d, 12h, 2w or a date like 2026-05-01"
        ) from None


# (label, width); the memory text takes what the terminal has left (memory_width).
COLUMNS: tuple[tuple[str, int | None], ...] = (
    ("id", 8),
    ("type", 11),
    ("layer", 10),
    ("status", 8),
    ("📌", 2),
    ("score", 5),
    ("memory", None),
    ("created", 16),
)


def memory_width(terminal_width: int) -> int:
    fixed = sum(w for _, w in COLUMNS if w) + 2 * len(COLUMNS) + 2  # cell padding, scrollbar
    return max(20, terminal_width - fixed)


def clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


class MemoryScreen(MemosScreen):
    NAME = "Memories"
    RELOADS = True

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "focus_search", "Search", id="memories.search"),
        Binding("o", "open", "Open", id="memories.open"),
        Binding("e", "edit", "Edit", id="memories.edit"),
        Binding("p", "pin", "Pin/unpin", id="memories.pin"),
        Binding("f", "forget", "Forget", id="memories.forget"),
        Binding("r", "restore", "Restore", id="memories.restore"),
        Binding("x", "purge", "Purge", id="memories.purge"),
        Binding("ctrl+r", "reload", "Refresh", id="memories.reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[str, MemoryItem] = {}
        self.text_width = 60

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="memories-main"):
            with Horizontal(id="memory-filters"):
                yield Input(placeholder="search (hybrid); empty lists all", id="query")
                yield Select(
                    [(t, t) for t in (*MEMORY_TYPES, ANY)],
                    prompt="type",
                    id="f-type",
                    allow_blank=True,
                )
                yield Select(
                    [(x, x) for x in MEMORY_LAYERS], prompt="layer", id="f-layer", allow_blank=True
                )
                yield Select(
                    [(s, s) for s in (*MEMORY_STATUSES, ANY)],
                    value="active",
                    id="f-status",
                    allow_blank=False,
                )
                yield Input(placeholder="tag", id="f-tag")
                yield Input(placeholder="since 7d/date", id="f-since")
            yield Static("", id="memory-count")
            yield DataTable(id="memory-table", cursor_type="row", zebra_stripes=True)
        yield StatusBar()
        yield Footer()

    def setup(self) -> None:
        table = self.query_one(DataTable)
        self.text_width = memory_width(self.app.size.width)
        for label, width in COLUMNS:
            table.add_column(label, width=width or self.text_width, key=label)

    def filters(self) -> SearchFilters:
        def sel(widget_id: str) -> tuple[str, ...]:
            select: Select[str] = self.query_one(widget_id, Select)
            return () if select.is_blank() or select.value == ANY else (str(select.value),)

        tag = self.query_one("#f-tag", Input).value.strip()
        status = self.query_one("#f-status", Select).value
        statuses: tuple[str, ...] = tuple(MEMORY_STATUSES) if status == ANY else (str(status),)
        # No type chosen: every type but the raw episodes ("any" shows them too).
        type_select: Select[str] = self.query_one("#f-type", Select)
        types = LISTED_TYPES if type_select.is_blank() else sel("#f-type")
        return SearchFilters(
            types=types,
            layers=sel("#f-layer"),
            statuses=statuses,
            tags=(tag,) if tag else (),
            since=parse_since(self.query_one("#f-since", Input).value),
        )

    def action_reload(self) -> None:
        self.reload()

    def reload(self) -> None:
        query = self.query_one("#query", Input).value.strip()
        try:
            f = self.filters()
        except InvalidInputError as exc:
            self.memos.show_error(exc)
            return

        def fetch(s: Any) -> tuple[list[tuple[MemoryItem, float | None]], str]:
            if query:
                res = s.api.search(query, f, top_k=100)
                return [(h.item, h.score) for h in res.hits], res.mode
            return [(it, None) for it in s.api.list(f, limit=500)], "list"

        self.memos.run_api(fetch, self.fill, group="memories")

    def fill(self, result: tuple[list[tuple[MemoryItem, float | None]], str]) -> None:
        rows, mode = result
        table = self.query_one(DataTable)
        keep = selected_key(table)
        table.clear()
        self.items = {}
        for item, score in rows:
            self.items[item.id] = item
            table.add_row(
                item.id[:8],
                item.type,
                item.layer,
                item.status,
                "📌" if item.pinned else "",
                f"{score:.3f}" if score is not None else "",
                clip(item.text, self.text_width),
                when(item.created_at),
                key=item.id,
            )
        restore_cursor(table, keep)
        what = {"list": "newest first"}.get(mode, f"{mode} search")
        self.query_one("#memory-count", Static).update(
            f"{len(rows)} memories ({what}) · o open · e edit · p pin · f forget · "
            "r restore · x purge"
        )

    @on(Input.Submitted)
    def _search(self) -> None:
        self.reload()
        self.query_one(DataTable).focus()

    @on(Select.Changed)
    def _filter(self) -> None:
        if self.memos.session is not None and self.is_mounted:
            self.reload()

    def action_focus_search(self) -> None:
        self.query_one("#query", Input).focus()

    def selected(self) -> MemoryItem | None:
        key = selected_key(self.query_one(DataTable))
        return None if key is None else self.items.get(key)

    @on(DataTable.RowSelected)
    def _open_row(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        item = self.selected()
        if item is not None:
            self.app.push_screen(MemoryDetail(item.id), lambda _: self.reload())

    def action_edit(self) -> None:
        item = self.selected()
        if item is not None:
            self.app.push_screen(EditMemory(item), lambda _: self.reload())

    def _act(self, verb: str, fn: Any) -> None:
        item = self.selected()
        if item is None:
            return

        def done(it: MemoryItem) -> None:
            self.app.notify(f"{verb}: {it.text[:80]}")
            self.reload()

        self.memos.run_api(lambda s: fn(s, item), done)

    def action_pin(self) -> None:
        self._act("Pinned/unpinned", lambda s, it: s.api.pin(it.id, not it.pinned))

    def action_forget(self) -> None:
        self._act("Forgotten", lambda s, it: s.api.forget(it.id, "forgotten in the browser"))

    def action_restore(self) -> None:
        self._act("Restored", lambda s, it: s.api.restore(it.id, "restored in the browser"))

    def action_purge(self) -> None:
        item = self.selected()
        if item is None:
            return

        def purged(n: int) -> None:
            self.app.notify(f"Purged {n} memory for good.")
            self.reload()

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.memos.run_api(lambda s: s.api.purge([item.id]), purged)

        self.app.push_screen(
            ConfirmScreen(
                f"Purge for good?\n\n{item.text[:300]}\n\nThe text and its whole history are "
                "erased from the database. This cannot be undone (forget can).",
                "Purge",
                danger=True,
            ),
            confirmed,
        )

    def palette_commands(self) -> Iterable[SystemCommand]:
        for name, help_text, fn in (
            ("Search memories", "Hybrid search", self.action_focus_search),
            ("Open memory", "With history and sources", self.action_open),
            ("Edit memory", "Change the text, type, tags", self.action_edit),
            ("Pin or unpin memory", "Pinned memories are in every prompt", self.action_pin),
            ("Forget memory", "Hide it (restorable)", self.action_forget),
            ("Restore memory", "Undo forget", self.action_restore),
            ("Purge memory", "Erase for good, after confirmation", self.action_purge),
        ):
            yield SystemCommand(name, help_text, fn)


class MemoryDetail(ModalScreen[None]):
    """One memory: its fields, sources and every version."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Close", id="detail.close"),
        Binding("e", "edit", "Edit", id="detail.edit"),
        Binding("p", "pin", "Pin/unpin", id="detail.pin"),
        Binding("f", "forget", "Forget", id="detail.forget"),
        Binding("r", "restore", "Restore", id="detail.restore"),
    ]

    def __init__(self, item_id: str) -> None:
        super().__init__()
        self.item_id = item_id
        self.item: MemoryItem | None = None

    @property
    def memos(self) -> MemosApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Memory", id="detail-title", classes="title")
            with VerticalScroll(id="detail-body"):
                yield Static("Loading…", id="detail-fields")
                yield Label("History", classes="panel-title")
                yield DataTable(id="history", cursor_type="row")
            yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("v", "change", "status", "text", "reason", "when")
        self.reload()

    def reload(self) -> None:
        self.memos.run_api(
            lambda s: (s.api.get(self.item_id), s.api.history(self.item_id)), self.fill
        )

    def fill(self, data: tuple[MemoryItem, list[Any]]) -> None:
        item, versions = data
        self.item = item
        t = Text()
        t.append(item.text + "\n\n", style="bold")
        for label, value in (
            ("id", item.id),
            ("type / layer", f"{item.type} / {item.layer}"),
            ("status", item.status + ("  📌 pinned" if item.pinned else "")),
            ("key", item.key or "-"),
            ("tags", ", ".join(item.tags) or "-"),
            ("importance / confidence", f"{item.importance:.2f} / {item.confidence:.2f}"),
            ("created / updated", f"{when(item.created_at)} / {when(item.updated_at)}"),
            ("used", f"{item.use_count} times, last {when(item.last_used_at)}"),
            ("source", source_line(item.sources)),
            ("supersedes", item.supersedes or "-"),
            ("superseded by", item.superseded_by or "-"),
        ):
            t.append(f"{label:>24}  ", style="dim")
            t.append(f"{value}\n")
        self.query_one("#detail-fields", Static).update(t)
        table = self.query_one(DataTable)
        table.clear()
        for v in versions:
            table.add_row(
                str(v.version), v.change, v.status, v.text[:80], v.reason, when(v.changed_at)
            )

    def _act(self, fn: Any) -> None:
        if self.item is not None:
            item = self.item
            self.memos.run_api(lambda s: fn(s, item), lambda _: self.reload())

    def action_pin(self) -> None:
        self._act(lambda s, it: s.api.pin(it.id, not it.pinned))

    def action_forget(self) -> None:
        self._act(lambda s, it: s.api.forget(it.id, "forgotten in the browser"))

    def action_restore(self) -> None:
        self._act(lambda s, it: s.api.restore(it.id, "restored in the browser"))

    def action_edit(self) -> None:
        if self.item is not None:
            self.app.push_screen(EditMemory(self.item), lambda _: self.reload())


class EditMemory(ModalScreen[bool]):
    """Edit text, type, layer, tags, importance and pin; the old version stays in the history."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(False)", "Cancel", id="edit.cancel"),
        Binding("ctrl+s", "save", "Save", id="edit.save"),
    ]

    def __init__(self, item: MemoryItem) -> None:
        super().__init__()
        self.item = item

    @property
    def memos(self) -> MemosApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        it = self.item
        with Vertical(classes="dialog wide"):
            yield Label(f"Edit memory {it.id[:8]}", classes="title")
            yield TextArea(it.text, id="edit-text")
            with Horizontal(classes="form-row"):
                yield Select([(t, t) for t in MEMORY_TYPES], value=it.type, id="edit-type")
                yield Select([(x, x) for x in MEMORY_LAYERS], value=it.layer, id="edit-layer")
                yield Input(", ".join(it.tags), placeholder="tags, comma separated", id="edit-tags")
                yield Input(f"{it.importance:.2f}", placeholder="importance 0-1", id="edit-imp")
                yield Checkbox("pinned", it.pinned, id="edit-pin")
            yield Input(placeholder="reason (kept in the history)", id="edit-reason")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (Ctrl+S)", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        text = self.query_one("#edit-text", TextArea).text.strip()
        try:
            importance = float(self.query_one("#edit-imp", Input).value or "0.5")
            if not 0 <= importance <= 1:
                raise ValueError
        except ValueError:
            self.memos.notify("Importance is a number from 0 to 1.", severity="error")
            return
        if not text:
            self.memos.notify("A memory needs some text (forget it instead).", severity="error")
            return
        tags = tuple(
            t.strip() for t in self.query_one("#edit-tags", Input).value.split(",") if t.strip()
        )
        fields: dict[str, Any] = {
            "text": text,
            "type": str(self.query_one("#edit-type", Select).value),
            "layer": str(self.query_one("#edit-layer", Select).value),
            "tags": tags,
            "importance": importance,
            "pinned": self.query_one("#edit-pin", Checkbox).value,
        }
        reason = self.query_one("#edit-reason", Input).value.strip() or "edited in the app"
        item_id = self.item.id
        self.memos.run_api(
            lambda s: s.api.update(item_id, reason=reason, **fields),
            lambda _: self.dismiss(True),
        )
