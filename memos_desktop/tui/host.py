"""What a screen may ask of the app that hosts it, as a Protocol: screens type against this
instead of importing ``tui.app`` (which imports the screens), so there is no import circle."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from memos_desktop.config import Paths, Settings
    from memos_desktop.tui.widgets import Status


class MemosHost(Protocol):
    paths: Paths
    settings: Settings
    profile: str
    status: Status

    def open_profile(self, passphrase: str | None) -> None: ...
