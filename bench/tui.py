"""Terminal app responsiveness: launch to first paint and to ready, and UI stalls while streaming.

Usage: .venv/bin/python bench/tui.py [--runs N] [--answers N] [--no-cold] [--no-write]

Start (a, b): the real ``memos-desktop`` executable is launched in a real terminal, a tmux pane
of 120x36 on a private tmux server (``tmux -L``), with an existing passphrase profile and the
passphrase in the environment (no unlock screen). One control-mode tmux client reads the pane
(a ``capture-pane`` round trip costs ~0.1 ms; nothing is forked) every ~5 ms from the launch:
- first paint: the first screen that shows the app's header or prompt;
- ready: the status bar says "ready" (profile open, embedder and chat model loaded).
*Cold* is the first start in a fresh MEMOS_DESKTOP_HOME (the profile exists; the MiniLM GGUF is
converted and the packaged Gemma assembled into the cache); *warm* starts reuse them.

Streaming (c): MemosApp runs with ``run_test(size=(120, 36))`` (headless driver, real
compositor and widgets) on the packaged Gemma 3 270M through the app's own factories and default
settings (the sampling seed fixed, so every variant gets the same answers), one conversation of
N answers per variant, each variant in its own process on its own copy of the profile. While an
answer streams, a coroutine on the app's event loop sleeps 5 ms in a loop and records each gap
between wakes minus 5 ms: a stall, time in which the UI could not react to a key. Full
(generation 2) cyclic-GC collections on the UI thread are timed with ``gc.callbacks``, and a
watchdog thread samples the UI thread's stack whenever the loop has not woken for 50 ms, to say
where the stalls come from. Variants: *as shipped* (start-up objects frozen when
ready, and ``gc.collect()`` + ``gc.freeze()`` 1 s after each answer: ``MemosApp._settle_heap``);
*freeze at ready only* (``_settle_heap`` patched out); *no gc.freeze* (``gc.unfreeze()`` once
ready and ``_settle_heap`` patched out: the app before either).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import git_rev, machine, write_section

WIDTH, HEIGHT = 120, 36
PASSPHRASE = "bench tui passphrase"
POLL_S = 0.005
STALL_TARGET_MS = 100.0
PAINT_TARGET_S = 1.0
SEED = 1234  # of the sampling: the app's defaults otherwise (temperature 0.7, max 512 tokens)
IDLE_S = 2.0  # between answers (and after ready), without measuring
PROMPTS = [
    "Write a detailed guide to making sourdough bread at home, with headings, a list of "
    "ingredients and numbered steps.",
    "Explain how a bicycle gearbox works, with a section for each part and a short summary.",
    "Write a long story about a lighthouse keeper who finds a message in a bottle.",
]
VARIANTS = {
    "shipped": "as shipped",
    "ready-only": "freeze at ready only",
    "unfrozen": "no gc.freeze",
}


def app_command() -> list[str]:
    script = Path(sys.executable).parent / "memos-desktop"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "memos_desktop.cli"]


def base_env(home: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "MEMOS_DESKTOP_HOME": str(home),
        "MEMOS_DESKTOP_PASSPHRASE": PASSPHRASE,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "LANG": os.environ.get("LANG") or "C.UTF-8",
    }
    for k in ("TMUX", "MEMOS_DESKTOP_PROFILE"):
        env.pop(k, None)
    return env


def make_home(root: Path, name: str, config: str | None) -> Path:
    """A fresh MEMOS_DESKTOP_HOME with a passphrase profile made by ``init --passphrase``."""
    home = root / name
    if config:
        (home / "config").mkdir(parents=True)
        (home / "config" / "config.toml").write_text(config, encoding="utf-8")
    subprocess.run(
        [*app_command(), "init", "--passphrase"],
        env=base_env(home),
        check=True,
        capture_output=True,
        timeout=300,
    )
    return home


def cli_start_ms(runs: int = 5) -> float:
    """Median wall time of ``memos-desktop --version``: the interpreter and the CLI's imports,
    no UI. A reference for the first paint, and for how fast the machine is right now."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([*app_command(), "--version"], check=True, capture_output=True)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


# --- (a, b) start in a real terminal: tmux ------------------------------------------------------


def tmux_quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


class Tmux:
    """A private tmux server and one control-mode client that sends commands and reads their
    replies (``%begin`` ... ``%end``) on a pipe, so polling the screen forks nothing."""

    def __init__(self, root: Path) -> None:
        self.socket = f"memos-bench-tui-{os.getpid()}"
        conf = root / "tmux.conf"
        conf.write_text("set -g status off\nset -g remain-on-exit off\n", encoding="utf-8")
        base = ["tmux", "-L", self.socket, "-f", str(conf)]
        env = {k: v for k, v in os.environ.items() if k != "TMUX"}
        idle = ["new-session", "-d", "-s", "idle", "-x", str(WIDTH), "-y", str(HEIGHT)]
        subprocess.run([*base, *idle, "sleep 1000000"], check=True, env=env, timeout=30)
        self.proc = subprocess.Popen(
            [*base, "-C", "attach-session", "-t", "idle"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            env=env,
        )
        self._buf = b""
        self.socket_path = ""
        try:
            while not self._line().startswith(b"%session-changed"):  # attached
                pass
            self.command("refresh-client -f no-output")  # no %output notifications
            self.socket_path = self.command("display-message -p '#{socket_path}'") or ""
        except BaseException:
            self.close()
            raise

    def _line(self) -> bytes:
        assert self.proc.stdout is not None
        while b"\n" not in self._buf:
            chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
            if not chunk:
                raise RuntimeError("the tmux control client exited")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def command(self, line: str, check: bool = True) -> str | None:
        """Run one tmux command: its output, or None if it failed (and not ``check``)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        while True:  # skip notifications (the reply to our command has flags 1)
            head = self._line()
            if head.startswith(b"%begin") and head.split()[-1] == b"1":
                break
        out: list[bytes] = []
        while True:
            ln = self._line()
            if ln.startswith((b"%end", b"%error")):
                if ln.startswith(b"%error"):
                    if check:
                        raise RuntimeError(f"tmux {line!r}: {b' '.join(out).decode()}")
                    return None
                return b"\n".join(out).decode("utf-8", "replace")
            out.append(ln)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
        self.proc.wait(timeout=10)
        if self.socket_path:  # tmux leaves its socket file behind
            Path(self.socket_path).unlink(missing_ok=True)


def status_state(screen: str) -> str:
    """The state the status bar shows first (" ready  gemma3-270m │ personal │ ctx ...")."""
    for line in screen.splitlines():
        if "│ ctx " in line and "│ TTFT " in line:
            return line.strip().split("  ")[0]
    return ""


def painted(screen: str) -> bool:
    return "memos-desktop" in screen or "Message (Enter to send" in screen


@dataclass
class Start:
    first_paint: float
    states: dict[str, float]

    @property
    def ready(self) -> float:
        return self.states["ready"]


def launch(tmux: Tmux, name: str, home: Path, timeout: float) -> Start:
    env = base_env(home)
    flags = " ".join(
        f"-e {tmux_quote(f'{k}={env[k]}')}"
        for k in ("MEMOS_DESKTOP_HOME", "MEMOS_DESKTOP_PASSPHRASE", "PYTHON_KEYRING_BACKEND")
    )
    cmd = " ".join(tmux_quote(c) for c in app_command())
    t0 = time.perf_counter()
    tmux.command(f"new-session -d -s {name} -x {WIDTH} -y {HEIGHT} {flags} {cmd}")
    pid = int(tmux.command(f"display-message -p -t {name} '#{{pane_pid}}'") or 0)
    first_paint: float | None = None
    states: dict[str, float] = {}
    screen = ""
    while True:
        shot = tmux.command(f"capture-pane -p -t {name}", check=False)
        now = time.perf_counter() - t0
        if shot is None:
            raise RuntimeError(f"the app exited during start; last screen:\n{screen}")
        screen = shot
        if first_paint is None and painted(screen):
            first_paint = now
        state = status_state(screen)
        if state and state not in states:
            states[state] = now
        if state == "ready":
            break
        if state in ("no model", "locked", "first run", "error"):
            raise RuntimeError(f"the app did not get ready ({state}):\n{screen}")
        if now > timeout:
            raise RuntimeError(f"not ready after {timeout:.0f} s:\n{screen}")
        time.sleep(POLL_S)
    assert first_paint is not None
    quit_app(tmux, name, pid)
    return Start(first_paint, states)


def quit_app(tmux: Tmux, name: str, pid: int) -> None:
    tmux.command(f"send-keys -t {name} C-q")
    deadline = time.monotonic() + 60
    while tmux.command(f"has-session -t {name}", check=False) is not None:
        if time.monotonic() > deadline:
            raise RuntimeError("the app did not quit on ctrl+q")
        time.sleep(0.02)
    # The pane closes with the pty; wait until the process is gone too (or a zombie), so the
    # next start does not share the CPU with this one's exit.
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return
        time.sleep(0.02)
    raise RuntimeError(f"the app process {pid} did not exit")


def starts(tmux: Tmux, label: str, home: Path, runs: int, timeout: float) -> list[Start]:
    out = []
    for i in range(runs):
        s = launch(tmux, f"{label}{i}", home, timeout)
        print(
            f"  {label} #{i + 1}: first paint {s.first_paint * 1000:.0f} ms, "
            + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in s.states.items()),
            flush=True,
        )
        out.append(s)
    return out


# --- (c) stalls while an answer streams, in-process ---------------------------------------------


@dataclass
class StreamRun:
    tokens: int
    pieces: int
    appends: int  # Markdown.append calls (the stream coalesces pieces the UI cannot keep up with)
    seconds: float
    gaps_ms: list[float]
    full_gcs_ms: list[float]  # generation-2 collections on the UI thread while streaming
    stalls_with_gc: int  # stalls >= 50 ms that a full collection overlapped

    @property
    def max_stall(self) -> float:
        return max(self.gaps_ms)

    @property
    def stalls(self) -> int:
        return sum(g >= 50 for g in self.gaps_ms)


class GcTimer:
    """Times the cyclic GC's full (generation 2) collections run on the UI thread."""

    def __init__(self, ui_thread: int) -> None:
        self.ui_thread = ui_thread
        self.active = False
        self.running = False  # a collection in progress (the watchdog reads it)
        self.spans: list[tuple[float, float]] = []  # (start, end) perf_counter
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2 or threading.get_ident() != self.ui_thread:
            return
        if phase == "start":
            self.running = True
            self._start = time.perf_counter()
        else:
            self.running = False
            if self.active:
                self.spans.append((self._start, time.perf_counter()))


class Watchdog:
    """Samples the UI thread's stack whenever the event loop has not woken for ``after_s``."""

    def __init__(self, ui_thread: int, gc_timer: GcTimer, after_s: float = 0.05) -> None:
        self.ui_thread = ui_thread
        self.gc_timer = gc_timer
        self.after_s = after_s
        self.beat = time.perf_counter()
        self.active = False  # only while a LoopMonitor runs
        self.samples: collections.Counter[str] = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            if not self.active or time.perf_counter() - self.beat < self.after_s:
                continue
            if self.gc_timer.running:
                self.samples["cyclic GC, full collection"] += 1
                continue
            frame = sys._current_frames().get(self.ui_thread)
            if frame is None:
                continue
            # The innermost frames of memos_desktop, textual, rich or markdown code.
            keep = [
                f"{Path(f.filename).name}:{f.name}"
                for f in traceback.extract_stack(frame)
                if any(p in f.filename for p in ("memos_desktop", "textual", "rich", "markdown"))
            ]
            self.samples[" < ".join(reversed(keep[-4:])) or "(other)"] += 1


class LoopMonitor:
    """On the event loop: sleep 5 ms, again and again; each gap between wakes minus 5 ms."""

    def __init__(self, dog: Watchdog) -> None:
        self.dog = dog
        self.gaps: list[tuple[float, float]] = []  # (end, stall ms)
        self.running = True
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.dog.beat = time.perf_counter()
        self.dog.active = self.dog.gc_timer.active = True
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> list[tuple[float, float]]:
        self.dog.active = self.dog.gc_timer.active = False
        self.running = False
        assert self.task is not None
        await self.task
        return self.gaps

    async def _run(self) -> None:
        while self.running:
            t = time.perf_counter()
            self.dog.beat = t
            await asyncio.sleep(POLL_S)
            now = time.perf_counter()
            self.dog.beat = now
            self.gaps.append((now, max(0.0, (now - t - POLL_S) * 1000)))


def without_settling(app_cls: Any) -> None:
    """Patch out what the app does 1 s after an answer (``gc.collect()`` + ``gc.freeze()``)."""
    app_cls._settle_heap = lambda app: None


async def stream_answers(home: Path, prompts: list[str], variant: str) -> dict[str, Any]:
    os.environ.update(base_env(home))
    from textual.widgets import Markdown

    from memos_desktop.api import MemosAPI
    from memos_desktop.config import load_settings, resolve_paths
    from memos_desktop.engines.base import SamplingParams
    from memos_desktop.tui.app import MemosApp
    from memos_desktop.tui.chat import ChatScreen, PromptInput

    paths = resolve_paths()
    settings = load_settings(paths)
    counts: dict[str, Any] = {"pieces": 0, "appends": 0, "stats": None}
    on_piece = ChatScreen.on_chat_screen_piece
    on_finished = ChatScreen.on_chat_screen_finished
    append = Markdown.append
    chat = MemosAPI.chat

    async def counted_piece(self: ChatScreen, msg: Any) -> None:
        counts["pieces"] += 1
        await on_piece(self, msg)

    async def finished(self: ChatScreen, msg: Any) -> None:
        counts["stats"] = msg.turn.stats
        await on_finished(self, msg)

    def counted_append(self: Markdown, markdown: str) -> Any:
        counts["appends"] += 1
        return append(self, markdown)

    def seeded_chat(api: MemosAPI, *a: Any, sampling: Any = None, **kw: Any) -> Any:
        """The app's default sampling with a fixed seed: the same answers in every variant."""
        return chat(api, *a, sampling=sampling or SamplingParams(seed=SEED), **kw)

    ChatScreen.on_chat_screen_piece = counted_piece  # type: ignore[method-assign]
    ChatScreen.on_chat_screen_finished = finished  # type: ignore[method-assign]
    Markdown.append = counted_append  # type: ignore[method-assign]
    MemosAPI.chat = seeded_chat  # type: ignore[method-assign, assignment]
    if variant in ("ready-only", "unfrozen"):
        without_settling(MemosApp)
    gc_timer = GcTimer(threading.get_ident())
    dog = Watchdog(threading.get_ident(), gc_timer)
    app = MemosApp(paths, settings, settings.profile)
    runs: list[StreamRun] = []
    async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
        deadline = time.monotonic() + 600
        while app.status.state != "ready":
            if time.monotonic() > deadline or app.status.state in ("no model", "locked"):
                raise RuntimeError(f"the app did not get ready: {app.status.state}")
            await pilot.pause(0.05)
        frozen = gc.get_freeze_count()
        if variant == "unfrozen":
            gc.unfreeze()
        tracked = len(gc.get_objects())
        for prompt in prompts:
            screen = app.screen
            assert isinstance(screen, ChatScreen), screen
            counts.update(pieces=0, appends=0, stats=None)
            await asyncio.sleep(IDLE_S)  # the user reads the last answer, then types
            gc_timer.spans.clear()
            monitor = LoopMonitor(dog)
            monitor.start()
            await asyncio.sleep(0.05)
            t0 = time.perf_counter()
            prompt_input = screen.query_one(PromptInput)
            prompt_input.value = prompt
            await prompt_input.action_submit()  # what Enter does
            while not screen.generating:
                await asyncio.sleep(0.005)
            while screen.generating or app.status.state != "ready":
                if time.perf_counter() - t0 > 600:
                    raise RuntimeError("the answer did not finish")
                await asyncio.sleep(0.005)
            seconds = time.perf_counter() - t0
            await asyncio.sleep(0.1)  # a stall right after the answer counts too
            gaps = await monitor.stop()
            spans = list(gc_timer.spans)
            with_gc = sum(
                1
                for end, g in gaps
                if g >= 50 and any(s < end and e > end - g / 1000 for s, e in spans)
            )
            stats = counts["stats"]
            run = StreamRun(
                tokens=stats.completion_tokens if stats is not None else 0,
                pieces=counts["pieces"],
                appends=counts["appends"],
                seconds=seconds,
                gaps_ms=[g for _, g in gaps],
                full_gcs_ms=[(e - s) * 1000 for s, e in spans],
                stalls_with_gc=with_gc,
            )
            runs.append(run)
            print(
                f"  answer: {run.tokens} tokens, {run.pieces} pieces, {run.appends} Markdown "
                f"appends, {run.seconds:.1f} s; max stall {run.max_stall:.0f} ms, "
                f"{run.stalls} stalls >= 50 ms ({run.stalls_with_gc} with a full GC); "
                f"{len(run.full_gcs_ms)} full GCs, max {max(run.full_gcs_ms, default=0):.0f} ms",
                file=sys.stderr,
                flush=True,
            )
        dog.stop()
        await pilot.press("ctrl+q")
    ChatScreen.on_chat_screen_piece = on_piece  # type: ignore[method-assign]
    ChatScreen.on_chat_screen_finished = on_finished  # type: ignore[method-assign]
    Markdown.append = append  # type: ignore[method-assign]
    MemosAPI.chat = chat  # type: ignore[method-assign]
    return {
        "runs": [asdict(r) for r in runs],
        "frozen": frozen,
        "tracked": tracked,
        "samples": dog.samples.most_common(4),
    }


def copy_home(home: Path, to: Path) -> Path:
    """A copy of a home: the profile and config copied, the (read-only) model files linked."""
    shutil.copytree(home / "config", to / "config", dirs_exist_ok=True)
    shutil.copytree(home / "data", to / "data")
    shutil.copytree(home / "cache", to / "cache", copy_function=os.link)
    return to


def streaming(home: Path, answers: int, variant: str) -> dict[str, Any]:
    """One variant in its own process (a clean heap and GC state), on its own copy of the home
    (the same memories, so the same prompts and, with the fixed seed, the same answers)."""
    home = copy_home(home, home.parent / f"stream-{variant}")
    cmd = [sys.executable, __file__, "--stream", variant, "--home", str(home)]
    out = subprocess.run(
        [*cmd, "--answers", str(answers)],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
        timeout=3600,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --- main --------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5, help="warm starts per model")
    ap.add_argument("--answers", type=int, default=6, help="answers per variant (one chat)")
    ap.add_argument("--no-cold", action="store_true", help="skip the cold first start")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--stream", choices=list(VARIANTS), help=argparse.SUPPRESS)
    ap.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(args.answers)]
    if args.stream:  # the child process of streaming()
        result = asyncio.run(stream_answers(args.home, prompts, args.stream))
        print(json.dumps(result))
        return
    if shutil.which("tmux") is None:
        sys.exit("bench/tui.py needs tmux: apt-get install tmux")
    load_at_start = os.getloadavg()
    root = Path(tempfile.mkdtemp(prefix="memos-bench-tui-"))
    try:
        body = run(args, root, prompts, load_at_start)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(body)
    if not args.no_write:
        write_section("tui", body)


def run(args: argparse.Namespace, root: Path, prompts: list[str], load0: Any) -> str:
    from memos_desktop.config import resolve_paths
    from memos_desktop.engines.embeddings import ensure_minilm_gguf
    from memos_desktop.engines.loader import ensure_packaged_gemma
    from tests.fixtures.tiny_model import write_tiny_model

    gemma_home = make_home(root, "gemma", None)
    tiny = write_tiny_model(root / "tiny.gguf", seed=0)
    tiny_home = make_home(
        root,
        "tiny",
        f'[models]\nchat = "{tiny}"\n[engine]\nn_ctx = 1024\nn_threads = 1\nn_threads_batch = 1\n',
    )
    ensure_minilm_gguf(resolve_paths({"MEMOS_DESKTOP_HOME": str(tiny_home)}))
    ref0 = cli_start_ms()
    tmux = Tmux(root)
    try:
        cold: list[Start] = []
        if not args.no_cold:
            print("cold first start (converts MiniLM, assembles Gemma):", flush=True)
            cold = starts(tmux, "cold", gemma_home, 1, timeout=600)
        else:
            gemma_paths = resolve_paths({"MEMOS_DESKTOP_HOME": str(gemma_home)})
            ensure_minilm_gguf(gemma_paths)
            ensure_packaged_gemma(gemma_paths)
        print("warm starts, Gemma 3 270M:", flush=True)
        warm = starts(tmux, "gemma", gemma_home, args.runs, timeout=300)
        print("warm starts, tiny model:", flush=True)
        warm_tiny = starts(tmux, "tiny", tiny_home, args.runs, timeout=300)
    finally:
        tmux.close()
    results = {}
    for variant, label in VARIANTS.items():
        print(f"streaming answers, Gemma 3 270M, {label}:", flush=True)
        results[variant] = streaming(gemma_home, args.answers, variant)
    ref1 = cli_start_ms()
    load1 = os.getloadavg()

    def row(label: str, kind: str, ss: list[Start]) -> str:
        fp = [s.first_paint * 1000 for s in ss]
        op = [s.states.get("loading model", float("nan")) * 1000 for s in ss]
        rd = [s.ready * 1000 for s in ss]
        return (
            f"| {label} | {kind} | {len(ss)} | {statistics.median(fp):.0f} | {max(fp):.0f} | "
            f"{statistics.median(op):.0f} | {statistics.median(rd):.0f} | {max(rd):.0f} |"
        )

    shipped = [StreamRun(**r) for r in results["shipped"]["runs"]]
    gaps = [g for r in shipped for g in r.gaps_ms]
    max_stall = max(gaps)
    paints = [s.first_paint for s in warm + warm_tiny]
    lines = [
        "## Terminal app: start and streaming responsiveness (`bench/tui.py`)",
        "",
        f"Command: `.venv/bin/python bench/tui.py --runs {args.runs} --answers {args.answers}` "
        f"(commit {git_rev()})  ",
        f"Machine: {machine()}  ",
        f"Load average at start {load0[0]:.2f}, at the end {load1[0]:.2f}.",
        "",
        f"Start: the real `memos-desktop` in a tmux pane of {WIDTH}x{HEIGHT}, passphrase profile "
        "made by `init --passphrase`, passphrase from the environment; the screen read every "
        f"~{POLL_S * 1000:.0f} ms from the launch through a tmux control-mode client. First paint "
        "= the header or prompt is on screen; profile open = the status bar says `loading model`; "
        "ready = it says `ready`. Cold = first start in a fresh home (MiniLM converted, Gemma "
        "assembled into the cache); warm = later starts. Gemma with the default settings "
        "(n_ctx 4096, llama.cpp's default threads); tiny = the random test model, 1 thread. "
        f"Reference: `memos-desktop --version` (interpreter and CLI imports, no UI) took "
        f"{ref0:.0f} ms (median of 5) before the starts and {ref1:.0f} ms at the end.",
        "",
        "| chat model | start | runs | first paint ms (median) | (max) | profile open ms "
        "(median) | ready ms (median) | (max) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    if cold:
        lines.append(row("Gemma 3 270M", "cold", cold))
    lines += [
        row("Gemma 3 270M", "warm", warm),
        row("tiny random", "warm", warm_tiny),
        "",
        f"Streaming: `MemosApp.run_test(size=({WIDTH}, {HEIGHT}))` (headless driver, real "
        "compositor), Gemma 3 270M through the app's own factories and default settings "
        f"(sampling seed fixed: the same answers in every variant), one chat of {args.answers} "
        "answers per variant, each in its own process and copy of the profile, 2 s idle before "
        f"each message; a coroutine on the UI event loop sleeps {POLL_S * 1000:.0f} ms in a "
        "loop, a stall is a gap between wakes minus that, from sending the message to 0.1 s "
        "after the status bar is back at `ready`. Full GC = generation-2 collections of the "
        "cyclic garbage collector on the UI thread meanwhile. As shipped = start-up "
        "objects frozen when ready, and `gc.collect()` + `gc.freeze()` 1 s after each answer; "
        "freeze at ready only = without the latter; no gc.freeze = neither (the app before).",
        "",
        "| variant | answer | tokens | pieces | Markdown appends | s | max stall ms | p99 gap "
        "ms | stalls >= 50 ms (with a full GC) | full GCs | max full GC ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for variant, label in VARIANTS.items():
        for i, r in enumerate((StreamRun(**x) for x in results[variant]["runs"]), 1):
            lines.append(
                f"| {label} | {i} | {r.tokens} | {r.pieces} | {r.appends} | {r.seconds:.1f} | "
                f"{r.max_stall:.0f} | {pct(r.gaps_ms, 0.99):.1f} | {r.stalls} "
                f"({r.stalls_with_gc}) | {len(r.full_gcs_ms)} | "
                f"{max(r.full_gcs_ms, default=0):.0f} |"
            )
    lines += [""]
    for variant, label in VARIANTS.items():
        res = results[variant]
        where = "; ".join(f"{n} × `{w}`" for w, n in res["samples"]) or "none"
        worst = max(max(r["gaps_ms"]) for r in res["runs"])
        lines.append(
            f"- {label}: max stall {worst:.0f} ms; {res['frozen']} objects frozen by the app "
            f"when ready, {res['tracked']} left to the GC when the chat starts; the UI thread "
            f"during stalls >= 50 ms (10 ms samples): {where}"
        )
    paint_ok = max(paints) <= PAINT_TARGET_S
    stall_ok = max_stall <= STALL_TARGET_MS
    lines += [
        "",
        f"As shipped, all answers: max stall {max_stall:.0f} ms, p99 gap {pct(gaps, 0.99):.1f} "
        f"ms, median {pct(gaps, 0.5):.2f} ms over {len(gaps)} wakes.",
        "",
        f"Targets: first paint <= {PAINT_TARGET_S:.0f} s (warm starts, max): "
        f"{'met' if paint_ok else 'NOT met'} ({max(paints) * 1000:.0f} ms); no stall over "
        f"{STALL_TARGET_MS:.0f} ms while streaming: {'met' if stall_ok else 'NOT met'} "
        f"({max_stall:.0f} ms).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
