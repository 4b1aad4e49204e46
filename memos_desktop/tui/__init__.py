"""The terminal app (Textual). Only this package imports textual (an import-linter contract)."""

from __future__ import annotations

from memos_desktop.config import Paths, Settings


def run(paths: Paths, settings: Settings, profile: str) -> int:
    from memos_desktop.api.presence import claim_role

    # One terminal app per profile (a second one: BusyError, exit 7, before anything paints);
    # CLI commands and the daemon share the profile with it.
    role = claim_role(paths, profile, "tui")
    try:
        from memos_desktop.tui.app import MemosApp

        app = MemosApp(paths, settings, profile)
        app.run()
        return int(app.return_code or 0)
    finally:
        role.release()
