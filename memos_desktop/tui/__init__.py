"""The terminal app (Textual). Only this package imports textual (an import-linter contract)."""

from __future__ import annotations

from memos_desktop.config import Paths, Settings


def run(paths: Paths, settings: Settings, profile: str) -> int:
    from memos_desktop.tui.app import MemosApp

    app = MemosApp(paths, settings, profile)
    app.run()
    return int(app.return_code or 0)
