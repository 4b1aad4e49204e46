"""The memos-desktop terminal app.

Design rules:
- The app paints first: the profile opens and the models load in worker threads that post
  messages; until then the chat screen says what it is waiting for.
- Every domain call goes through ``memos_desktop.api`` via the :class:`Session`; the API is
  thread-safe itself (one lock), and ``run_api`` holds that lock for a screen's few calls.
- Every binding has an id (``BINDING_IDS`` lists them) so the keymap in the settings can remap it.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from textual import work
from textual.app import App, ScreenStackError, SystemCommand
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.worker import get_current_worker

from memos_desktop.api.session import (
    EmbedderFactory,
    EngineFactory,
    Session,
    default_engine_factory,
    open_session,
    start_state,
)
from memos_desktop.config import Paths, Settings, save_settings
from memos_desktop.errors import MemosError
from memos_desktop.tui.widgets import Status

if TYPE_CHECKING:
    from memos_desktop.api import Kind

T = TypeVar("T")
DAEMON_POLL_S = 5.0  # how often the status bar asks what the daemon does
log = logging.getLogger(__name__)


def _screen(module: str, name: str) -> Screen[Any]:
    """Screens are imported when first shown, so the first paint imports only the chat."""
    import importlib

    cls = getattr(importlib.import_module(f"memos_desktop.tui.{module}"), name)
    return cls()  # type: ignore[no-any-return]


class MemosApp(App[int]):
    TITLE = "memos-desktop"
    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
        Binding("f1", "help", "Help", id="app.help"),
        # The screen keys are shown in the header (NAV), not in the footer, to leave it room.
        Binding("f2", "switch_mode('chat')", "Chat", id="app.chat", show=False),
        Binding("f3", "switch_mode('memories')", "Memories", id="app.memories", show=False),
        Binding("f4", "switch_mode('cubes')", "Cubes", id="app.cubes", show=False),
        Binding("f5", "switch_mode('models')", "Models", id="app.models", show=False),
        Binding("f6", "switch_mode('settings')", "Settings", id="app.settings", show=False),
    ]
    DEFAULT_MODE = "chat"  # the first screen composed is the chat, no blank screen before it
    MODES: ClassVar[dict[str, Any]] = {
        "chat": lambda: _screen("chat", "ChatScreen"),
        "memories": lambda: _screen("memories", "MemoryScreen"),
        "cubes": lambda: _screen("cubes", "CubesScreen"),
        "models": lambda: _screen("models", "ModelsScreen"),
        "settings": lambda: _screen("settings", "SettingsScreen"),
    }

    class SessionOpened(Message):
        pass

    class ModelReady(Message):
        def __init__(self, error: str | None) -> None:
            super().__init__()
            self.error = error

    def clear_selection(self) -> None:
        # Textual 8.2 catches NoScreen here, but `screen` raises ScreenStackError while the
        # stack is empty; an Input that mounts then (seen on Python 3.12) crashed the app.
        with contextlib.suppress(ScreenStackError):
            super().clear_selection()

    def __init__(
        self,
        paths: Paths,
        settings: Settings,
        profile: str,
        *,
        embedder_factory: EmbedderFactory | None = None,
        engine_factory: EngineFactory | None = None,
        read_only: str | None = None,
    ) -> None:
        super().__init__()
        # Why this app writes nothing (a second app beside the first), or None.
        self.read_only = read_only
        self.paths = paths
        self.settings = settings
        self.profile = profile
        self._embedder_factory = embedder_factory
        self._engine_factory = engine_factory
        self.session: Session | None = None
        self.status = Status(model=settings.models.chat, n_ctx=settings.engine.n_ctx)
        self._set_notice()
        self.model_error: str | None = None
        self._frozen_base = 0

    # --- start -------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.apply_ui_settings(self.settings)
        st = start_state(self.paths, self.profile)
        if st.kind == "first_run":
            from memos_desktop.tui.onboarding import FirstRunScreen

            self.set_state("first run")
            self.push_screen(FirstRunScreen())
        elif st.kind == "unlock":
            from memos_desktop.tui.onboarding import UnlockScreen

            self.set_state("locked")
            self.push_screen(UnlockScreen())
        else:
            # After the first frame: the open worker's imports and key derivation compete with
            # the UI thread for the GIL (first paint went from ~1.9 s to ~1.0 s, bench/tui.py).
            self.call_after_refresh(self.open_profile, None)

    def apply_ui_settings(self, settings: Settings) -> None:
        if settings.ui.theme in self.available_themes:
            self.theme = settings.ui.theme
        self.set_keymap(dict(settings.keymap))

    # A fixed description: Textual would otherwise put repr(passphrase) in the worker's name.
    @work(thread=True, exclusive=True, group="open", description="open the profile")
    def open_profile(self, passphrase: str | None) -> None:
        """Unlock and open in a worker; errors go back to the unlock screen."""
        self.call_from_thread(self.set_state, "opening")
        try:
            session = open_session(
                self.paths,
                self.settings,
                self.profile,
                passphrase=passphrase,
                embedder_factory=self._embedder_factory,
                engine_factory=self._engine_factory,
            )
            if self.read_only is not None:
                session.api.set_read_only(self.read_only)
            cube = session.api.cube.name
            counts = session.api.job_counts()
            from memos_desktop.api import sync_ops

            if sync_ops.is_set_up(session.api):
                self.status.sync = sync_ops.status_line(session.api)
            # Not yet done: waiting (or waiting for a retry) and running.
            pending = counts.get("queued", 0) + counts.get("running", 0)
        except MemosError as exc:
            self.call_from_thread(self._open_failed, exc)
            return
        self.call_from_thread(self._opened, session, cube, pending)

    def _open_failed(self, exc: MemosError) -> None:
        from memos_desktop.tui.onboarding import UnlockScreen

        self.set_state("locked")
        if isinstance(self.screen, UnlockScreen):
            self.screen.show_error(exc)
        else:
            self.push_screen(UnlockScreen(error=exc))

    def _opened(self, session: Session, cube: str, pending_jobs: int) -> None:
        self.session = session
        self.status.encryption = session.key_method
        self.status.cube = cube
        self.status.pending_jobs = pending_jobs
        self.set_state("loading model")
        self.poll_daemon()
        self.set_interval(DAEMON_POLL_S, self.poll_daemon)
        self.post_message(self.SessionOpened())
        for screen in self._all_screens():
            screen.post_message(self.SessionOpened())
        if self.read_only is not None:
            self.set_state("read-only")  # no chat: it records what is said
            return
        self.load_model()

    @work(thread=True, exclusive=True, group="model")
    def load_model(self) -> None:
        session = self.session
        assert session is not None
        try:
            engine = session.api.engine
            import memos_desktop.tui.answer  # noqa: F401  (the Markdown parser, off the UI thread)

            error = None
            self.status.n_ctx = getattr(engine, "n_ctx", self.status.n_ctx)
        except MemosError as exc:
            error = str(exc)
        except Exception as exc:  # a broken model file must not kill the app
            error = f"could not load the chat model: {exc}"
        self.call_from_thread(self._model_ready, error)

    def _model_ready(self, error: str | None) -> None:
        self.model_error = error
        # What is loaded by now (textual, numpy, the profile, the engine) lives as long as the
        # app: out of the cyclic GC's reach with it, or each full collection walks it all on the
        # UI thread (~90k objects: 90-190 ms stalls while an answer streams, bench/tui.py).
        gc.freeze()
        self._frozen_base = gc.get_freeze_count()
        if error:
            self.set_state("no model")
            self.notify(error, title="Chat model", severity="error", timeout=15)
        else:
            self.set_state("ready")
        for screen in self._all_screens():
            screen.post_message(self.ModelReady(error))

    def switch_chat_model(self, model_id: str, kind: Kind | None = None) -> None:
        """Make ``model_id`` the chat model (checked, saved), and load it in the background.
        ``kind="chat"`` lets a bare .gguf path through (the catalog cannot tell its kind)."""
        from memos_desktop.api import use_model

        self.settings = use_model(self.paths, self.settings, model_id, kind=kind)
        self._reload_engine()

    def save_settings(self, settings: Settings) -> None:
        chat_changed = settings.models.chat != self.settings.models.chat
        save_settings(self.paths, settings)
        self.settings = settings
        self.apply_ui_settings(settings)
        if chat_changed:
            self._reload_engine()

    def _set_notice(self) -> None:
        """A server model: where prompts go, and no activation memory (issue 13)."""
        self.status.notice = ""
        if self.settings.models.chat.startswith("openai:"):
            from memos_desktop.api import model_notice

            self.status.notice = model_notice(self.settings)

    def _reload_engine(self) -> None:
        self.status.model = self.settings.models.chat
        self._set_notice()
        self.model_error = None
        if self.session is not None:
            factory = self._engine_factory or default_engine_factory(self.paths, self.settings)
            self.session.api.set_engine_factory(factory)
            self.set_state("loading model")
            self.load_model()

    # --- helpers for screens -----------------------------------------------------------------

    def _all_screens(self) -> Iterable[Screen[Any]]:
        seen: set[int] = set()
        for stack in self._screen_stacks.values():
            for s in stack:
                if id(s) not in seen:
                    seen.add(id(s))
                    yield s

    def set_state(self, state: str) -> None:
        was = self.status.state
        self.status.state = state
        self.refresh_status()
        if was == "generating" and state != "generating":
            self.set_timer(1.0, self._settle_heap)

    # Objects frozen after answers (the transcript grows with each) beyond which the app
    # unfreezes once, so that what a new chat dropped can be freed.
    FREEZE_BUDGET = 200_000

    def _settle_heap(self) -> None:
        """A second after an answer, while idle: collect what the answer left (~20 ms) and
        freeze the rest, so full collections during the next answer walk only what it creates
        (bench/tui.py: the longest stall over six answers went from 126 to 63 ms)."""
        if self.status.state == "generating":
            return
        unfreeze = gc.get_freeze_count() - self._frozen_base > self.FREEZE_BUDGET
        if unfreeze:
            gc.unfreeze()  # one full collection at idle (100-300 ms) frees dropped transcripts
        gc.collect()
        gc.freeze()
        if unfreeze:
            self._frozen_base = gc.get_freeze_count()  # what is alive now is the new base

    @work(thread=True, exclusive=True, group="daemon", exit_on_error=False)
    def poll_daemon(self) -> None:
        """The daemon's state, what it did last and its queue, for the status bar (issue 12)."""
        session = self.session
        if session is None or self.status.state == "generating":
            return
        from memos_desktop.api.presence import status_line

        st = session.api.daemon_status()
        q = st.get("queue", {})
        pending = int(q.get("queued", 0)) + int(q.get("running", 0))
        self.call_from_thread(self._daemon_polled, status_line({**st, "queue": {}}), pending)

    def _daemon_polled(self, line: str, pending: int) -> None:
        self.status.daemon, self.status.pending_jobs = line, pending
        self.refresh_status()

    def refresh_status(self) -> None:
        from memos_desktop.tui.widgets import StatusBar

        for bar in self.screen.query(StatusBar):
            bar.refresh_from(self.status)

    def run_api(
        self,
        fn: Callable[[Session], T],
        on_done: Callable[[T], Any] | None = None,
        *,
        on_error: Callable[[Exception], Any] | None = None,
        group: str = "api",
    ) -> None:
        """Run ``fn(session)`` in a worker thread holding the session lock; call back on the UI
        thread with the result, or show the error (message and hint) as a notification."""
        session = self.session
        if session is None:
            self.notify("The profile is not open yet.", severity="warning")
            return

        def job() -> None:
            try:
                with session.lock:
                    result = fn(session)
            except Exception as exc:
                if not isinstance(exc, MemosError | OSError):
                    log.exception("unexpected error in a worker")
                if on_error is not None:
                    self.call_from_thread(on_error, exc)
                else:
                    self.call_from_thread(self.show_error, exc)
                return
            if on_done is not None and not get_current_worker().is_cancelled:
                self.call_from_thread(on_done, result)

        self.run_worker(job, thread=True, group=group, exit_on_error=False)

    def show_error(self, exc: BaseException) -> None:
        self.notify(str(exc), title="Error", severity="error", timeout=10)

    # --- actions -------------------------------------------------------------------------------

    def action_help(self) -> None:
        from memos_desktop.tui.dialogs import HelpScreen

        self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for mode, title in (
            ("chat", "Chat"),
            ("memories", "Memory browser"),
            ("cubes", "Cubes"),
            ("models", "Models"),
            ("settings", "Settings"),
        ):
            yield SystemCommand(
                f"Go to {title}", f"Open the {title.lower()} screen", self._goto(mode)
            )
        yield SystemCommand("Help", "Show every key and what it does", self.action_help)
        provider = getattr(screen, "palette_commands", None)
        if provider is not None:
            yield from provider()

    def _goto(self, mode: str) -> Callable[[], Any]:
        return lambda: self.switch_mode(mode)

    def on_unmount(self) -> None:
        # Stop a streaming answer first: closing waits for the session lock, which the
        # generation worker takes per token.
        for screen in self._all_screens():
            cancel = getattr(screen, "_cancel", None)
            if cancel is not None:
                cancel.cancel()
        if self.session is not None:
            self.session.close()
