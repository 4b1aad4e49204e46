"""A file picker for cube files: a path input above a directory tree that shows folders and
``.memcube`` files. Choosing a file in the tree fills the input; Enter answers the path.
Escape cancels (answers None)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DirectoryTree, Input, Label

SUFFIX = ".memcube"


class CubeFileTree(DirectoryTree):
    """Folders and cube files only (hidden entries left out)."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [
            p
            for p in paths
            if not p.name.startswith(".") and (p.is_dir() or p.name.endswith(SUFFIX))
        ]


class CubeFilePicker(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Cancel", id="dialog.cancel"),
    ]
    DEFAULT_CSS = """
    CubeFilePicker CubeFileTree { height: 16; }
    """

    def __init__(self, question: str, start: Path, value: str = "") -> None:
        super().__init__()
        self.question = question
        self.start = start
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(self.question, classes="dialog-text")
            yield Input(self.value, placeholder="path of the .memcube file", id="cube-path")
            yield CubeFileTree(self.start, id="cube-tree")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(DirectoryTree.FileSelected)
    def picked(self, event: DirectoryTree.FileSelected) -> None:
        field = self.query_one(Input)
        field.value = str(event.path)
        field.focus()

    @on(Input.Submitted, "#cube-path")
    def submitted(self) -> None:
        value = self.query_one(Input).value.strip()
        self.dismiss(value or None)
