"""What the app's full screens share: the typed app, the title with the screen keys, the status
bar kept current, and (for screens that show profile data) a reload when the profile opens and
each time the screen is shown again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual.screen import Screen

from memos_desktop.tui.widgets import screen_title

if TYPE_CHECKING:
    from memos_desktop.tui.app import MemosApp


class MemosScreen(Screen[None]):
    NAME: ClassVar[str] = ""
    # Screens that list profile data reload when it opens and whenever they are shown again.
    RELOADS: ClassVar[bool] = False

    @property
    def memos(self) -> MemosApp:
        return self.app  # type: ignore[return-value]

    def on_mount(self) -> None:
        self.sub_title = screen_title(self.NAME)
        self.setup()
        if self.RELOADS and self.memos.session is not None:
            self.reload()

    def on_memos_app_session_opened(self, _: Any = None) -> None:
        if self.RELOADS:
            self.reload()

    def on_screen_resume(self) -> None:
        self.memos.refresh_status()
        if self.RELOADS and self.memos.session is not None:
            self.reload()

    def setup(self) -> None:
        """Fill in what compose() could not (table columns, focus)."""

    def reload(self) -> None:
        """Fetch the screen's data in a worker and show it."""
