"""The terminal app (Textual). Only this package imports textual (an import-linter contract)."""

from __future__ import annotations

import sys

from memos_desktop.config import Paths, Settings


def run(paths: Paths, settings: Settings, profile: str, *, read_only: bool = False) -> int:
    from memos_desktop.api.presence import claim_role
    from memos_desktop.errors import BusyError

    # One terminal app per profile: a second one (BusyError, exit 7, before anything paints)
    # is offered to open read-only instead; CLI commands and the daemon share the profile.
    role = None
    reason = "opened with --read-only" if read_only else None
    if not read_only:
        try:
            role = claim_role(paths, profile, "tui")
        except BusyError as exc:
            if not _choose_read_only(exc):
                raise
            reason = exc.message
    try:
        from memos_desktop.tui.app import MemosApp

        app = MemosApp(paths, settings, profile, read_only=reason)
        app.run()
        return int(app.return_code or 0)
    finally:
        if role is not None:
            role.release()


def _choose_read_only(exc: Exception) -> bool:
    """Ask on the terminal whether to open read-only beside the running app; quit is the
    default (Enter, end of input)."""
    print(f"{exc}.", file=sys.stderr)
    print(
        "Open it read-only here (browse and search; no chat, no changes)? "
        "[r] read-only, [q] quit: ",
        end="",
        file=sys.stderr,
        flush=True,
    )
    try:
        answer = input()
    except (EOFError, KeyboardInterrupt):
        return False
    return answer.strip().lower() in ("r", "read-only", "readonly", "read only")
