"""Widgets shared by the screens: the status bar, chat messages, the used-memories panel."""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.widgets import DataTable, OptionList, Static
from textual.widgets.option_list import Option

if TYPE_CHECKING:
    from memos_desktop.api import UsedMemory


@dataclass
class Status:
    """What the status bar shows."""

    state: str = "starting"  # starting, locked, opening, loading model, ready, generating, error
    model: str = ""
    cube: str = ""
    encryption: str = ""
    n_ctx: int = 0
    context_used: int = 0
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    kv: str = ""  # "hit", "miss" or ""
    daemon: str = "off"
    pending_jobs: int = 0
    temporary: bool = False
    # Where the model runs, for a server model: "leaves this machine" or "local server", and
    # that activation memory does not apply (api.model_notice); "" for an in-process model.
    notice: str = ""
    sync: str = ""  # device sync state (api.sync_ops.status_line); "" when sync is not set up


def when(t: float | None) -> str:
    if t is None:
        return "-"
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")


def source_line(sources: Any) -> str:
    """A memory's provenance in a few words: where it came from and when."""
    parts = []
    for s in sources or ():
        d = s if isinstance(s, dict) else s.to_json()
        kind = d.get("kind", "?")
        bits = [kind]
        if d.get("role"):
            bits.append(str(d["role"]))
        if d.get("at"):
            bits.append(when(float(d["at"])))
        if d.get("ref"):
            bits.append(str(d["ref"]))
        parts.append(" ".join(bits))
    return "; ".join(parts) or "typed in"


NAV = "F2 chat · F3 memories · F4 cubes · F5 models · F6 settings · F1 help"


def screen_title(name: str) -> str:
    """The header's subtitle: this screen, and the keys to the others (kept out of the footer,
    which has room only for the screen's own keys)."""
    return f"{name}   ({NAV})"


def model_label(model: str) -> str:
    """A model id as the status bar shows it: a file path by its name, without .gguf."""
    name = model.rsplit("/", 1)[-1] if "/" in model else model
    return (name[:-5] if name.endswith(".gguf") else name) or "-"


class StatusBar(Static):
    """Model, context use, TTFT and tokens/s of the last answer, KV hit or miss, daemon,
    encryption. The app pushes :class:`Status` into it."""

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $text-muted; padding: 0 1; }
    """

    def on_mount(self) -> None:
        self.refresh_from(self.app.status)  # type: ignore[attr-defined]

    def refresh_from(self, st: Status) -> None:
        t = Text()
        state_style = {
            "ready": "bold green",
            "generating": "bold yellow",
            "no model": "bold red",
            "error": "bold red",
        }.get(st.state, "bold cyan")
        t.append(f" {st.state} ", style=state_style)
        t.append(f" {model_label(st.model)}")
        if st.cube:
            t.append(f" │ {st.cube}")
        used = f"{st.context_used}/{st.n_ctx}" if st.n_ctx else "-"
        t.append(f" │ ctx {used}")
        ttft = f"{st.ttft_s * 1000:.0f} ms" if st.ttft_s is not None else "-"
        tps = f"{st.tokens_per_s:.1f} tok/s" if st.tokens_per_s is not None else "-"
        t.append(f" │ TTFT {ttft} · {tps}")
        if st.notice:
            remote = st.notice.startswith("leaves")
            t.append(f" │ {st.notice}", style="bold red" if remote else "")
        else:
            t.append(f" │ KV {st.kv or '-'}")
        daemon = st.daemon + (f", {st.pending_jobs} queued" if st.pending_jobs else "")
        t.append(f" │ daemon {daemon}")
        if st.sync:
            t.append(f" │ {st.sync}")
        if st.encryption:
            t.append(f" │ 🔒 {st.encryption}")
        if st.temporary:
            t.append(" │ TEMPORARY", style="bold magenta")
        self.update(t)


class UserMessage(Static):
    DEFAULT_CSS = """
    UserMessage { margin: 1 0 0 8; padding: 0 1; background: $boost; border-left: thick $accent; }
    """


def used_label(u: UsedMemory) -> Text:
    t = Text()
    t.append(f"{u.score:.2f} ", style="bold")
    t.append(f"[{u.origin}·{u.type}] ", style="dim")
    t.append(u.text if len(u.text) < 160 else u.text[:157] + "…")
    t.append(f"\n   ↳ {source_line(u.sources)}", style="italic dim")
    return t


class UsedMemories(OptionList):
    """The memories the current answer used, with scores and sources; Enter opens one."""

    def show(self, used: tuple[UsedMemory, ...]) -> None:
        self.clear_options()
        self.add_options([Option(used_label(u), id=u.id) for u in used])


def selected_key(table: DataTable[Any]) -> str | None:
    """The row key under the cursor (None for an empty table)."""
    if table.row_count == 0:
        return None
    return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)


def restore_cursor(table: DataTable[Any], key: str | None) -> None:
    """After a refill, put the cursor back on the row it was on (if that row is still there)."""
    if key is None:
        return
    with contextlib.suppress(Exception):  # the row is gone (forgotten, deleted, filtered)
        table.move_cursor(row=table.get_row_index(key))
