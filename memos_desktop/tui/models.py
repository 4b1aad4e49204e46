"""Models: installed and recommended, with disk and RAM needs; pull with a progress bar (a
worker; offline fails at once with the reason), switch the chat model. The models of the
``[openai]`` server (a local OpenAI-compatible server) are listed too, as ``openai:NAME``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, ProgressBar, Static

from memos_desktop.errors import MemosError
from memos_desktop.tui.base import MemosScreen
from memos_desktop.tui.widgets import restore_cursor, selected_key

if TYPE_CHECKING:
    from memos_desktop.api import ModelInfo, ServerModel


def size(n: int | None) -> str:
    from memos_desktop.api.types import human_size

    return human_size(n) if n else "-"


class ModelsScreen(MemosScreen):
    NAME = "Models"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("u", "use", "Use", id="models.use"),
        Binding("p", "pull", "Pull", id="models.pull"),
        Binding("ctrl+r", "reload", "Refresh", id="models.reload"),
    ]

    class PullProgress(Message):
        def __init__(self, total: int | None, done: int) -> None:
            super().__init__()
            self.total = total
            self.done = done

    class PullDone(Message):
        def __init__(self, model_id: str, error: str | None) -> None:
            super().__init__()
            self.model_id = model_id
            self.error = error

    def __init__(self) -> None:
        super().__init__()
        self.models: dict[str, ModelInfo] = {}
        self.served: dict[str, ServerModel] = {}
        self.pulling: str | None = None

    def compose(self) -> ComposeResult:
        from memos_desktop.tui.widgets import StatusBar

        yield Header()
        with Vertical(id="models-main"):
            yield Static("", id="models-count")
            yield DataTable(id="models-table", cursor_type="row")
            yield Static("", id="pull-label")
            yield ProgressBar(id="pull-progress", show_eta=True)
        yield StatusBar()
        yield Footer()

    def setup(self) -> None:
        self.query_one(DataTable).add_columns(
            "", "id", "kind", "model", "installed", "disk", "RAM", "license"
        )
        self.query_one("#pull-progress").display = False
        self.query_one("#pull-label").display = False
        self.reload()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.reload()  # the catalog needs no profile

    def action_reload(self) -> None:
        self.reload()

    def reload(self) -> None:
        self._fetch()

    @work(thread=True, exclusive=True, group="models-list")
    def _fetch(self) -> None:
        from memos_desktop.api import list_models, server_models

        app = self.memos
        models = list_models(app.paths, app.settings)
        try:
            served, note = server_models(app.settings), ""
        except MemosError as exc:
            # Said only when the chat model is a server model: most people run no server.
            on_server = app.settings.models.chat.startswith("openai:")
            served, note = [], f" · {exc.message}" if on_server else ""
        self.app.call_from_thread(self.fill, models, served, note)

    def fill(
        self, models: list[ModelInfo], served: list[ServerModel] | None = None, note: str = ""
    ) -> None:
        self.models = {m.entry.id: m for m in models}
        self.served = {m.id: m for m in served or []}
        table = self.query_one(DataTable)
        keep = selected_key(table)
        table.clear()
        active = {self.memos.settings.models.chat, self.memos.settings.models.embedding}
        for m in models:
            e = m.entry
            table.add_row(
                "▶" if e.id in active else "",
                e.id,
                e.kind,
                e.title if len(e.title) <= 34 else e.title[:33] + "…",
                "built in" if e.builtin else ("yes" if m.installed else "no"),
                size(m.size_on_disk or e.size_bytes),
                size(e.ram_bytes),
                e.license if len(e.license) <= 16 else e.license[:15] + "…",
                key=e.id,
            )
        url = self.memos.settings.openai.base_url
        for sm in self.served.values():
            table.add_row(
                "▶" if sm.id in active else "",
                sm.id,
                "chat",
                f"on the server {url}"[:34],
                "server",
                "-",
                "-",
                sm.owned_by[:16] or "-",
                key=sm.id,
            )
        restore_cursor(table, keep)
        n = sum(1 for m in models if m.installed)
        self.query_one("#models-count", Static).update(
            f"{n} installed of {len(models)}"
            + (f" · {len(self.served)} on the server" if self.served else "")
            + f"{note} · u/Enter use · p pull (needs the network once)"
        )

    def _selected(self) -> ModelInfo | None:
        key = selected_key(self.query_one(DataTable))
        return None if key is None else self.models.get(key)

    @on(DataTable.RowSelected)
    def _row(self) -> None:
        self.action_use()

    def action_use(self) -> None:
        key = selected_key(self.query_one(DataTable))
        if key is not None and key in self.served:
            try:
                self.memos.switch_chat_model(key)
            except MemosError as exc:
                self.memos.show_error(exc)
                return
            self.reload()
            return
        m = self._selected()
        if m is None:
            return
        if not m.installed:
            self.app.notify(f"{m.entry.id} is not downloaded: press p to pull it.")
            return
        try:
            if m.entry.kind == "chat":
                self.memos.switch_chat_model(m.entry.id)
            else:
                from memos_desktop.api import use_model

                self.memos.settings = use_model(self.memos.paths, self.memos.settings, m.entry.id)
                self.app.notify("Embedding model saved; it is used from the next start.")
        except MemosError as exc:
            self.memos.show_error(exc)
            return
        self.reload()

    def action_pull(self) -> None:
        m = self._selected()
        if m is None:
            return
        if self.pulling:
            self.app.notify(f"Already pulling {self.pulling}.", severity="warning")
            return
        self.pulling = m.entry.id
        label = self.query_one("#pull-label", Static)
        label.update(f"Pulling {m.entry.id}…")
        label.display = True
        bar = self.query_one("#pull-progress", ProgressBar)
        bar.display = True
        bar.update(total=None, progress=0)
        self.pull(m.entry.id)

    @work(thread=True, exclusive=True, group="pull")
    def pull(self, model_id: str) -> None:
        from memos_desktop.api import pull_model

        screen = self

        class Bar:
            def __init__(self, total: int | None, initial: int) -> None:
                self.total = total
                self.done = initial
                screen.post_message(screen.PullProgress(total, initial))

            def update(self, n: int) -> None:
                self.done += n
                screen.post_message(screen.PullProgress(self.total, self.done))

            def close(self) -> None:
                pass

        def progress(total: int | None, initial: int, desc: str) -> Any:
            return Bar(total, initial)

        try:
            pull_model(self.memos.paths, model_id, progress)
        except MemosError as exc:
            self.post_message(self.PullDone(model_id, str(exc)))
            return
        except OSError as exc:
            self.post_message(self.PullDone(model_id, f"could not write the model: {exc}"))
            return
        self.post_message(self.PullDone(model_id, None))

    def on_models_screen_pull_progress(self, msg: PullProgress) -> None:
        self.query_one("#pull-progress", ProgressBar).update(total=msg.total, progress=msg.done)

    def on_models_screen_pull_done(self, msg: PullDone) -> None:
        self.pulling = None
        label = self.query_one("#pull-label", Static)
        self.query_one("#pull-progress").display = False
        if msg.error:
            label.update(f"Pull of {msg.model_id} failed: {msg.error}")
            self.app.notify(msg.error, title="Pull failed", severity="error", timeout=15)
        else:
            label.update(f"{msg.model_id} is installed.")
        self.reload()

    def palette_commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand("Use model", "Make the selected model active", self.action_use)
        yield SystemCommand("Pull model", "Download the selected model", self.action_pull)
        yield SystemCommand("Refresh models", "List the models again", self.reload)
