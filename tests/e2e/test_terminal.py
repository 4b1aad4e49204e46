"""End to end: the real ``memos-desktop`` executable in a real terminal (tmux).

The app runs as its own process on a pseudo-terminal, as a user starts it: a profile made with
``init --passphrase``, the passphrase from the environment (no unlock screen), the tiny random
GGUF as chat model. The test types a message with ``tmux send-keys``, reads the screen with
``tmux capture-pane``, checks the answer and the status bar, checks that the typed words are on
disk only encrypted, and quits with ctrl+q.

tmux runs on its own socket (``tmux -L``), never the user's server, and is killed at the end.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from signal import SIGCHLD

import pytest

from memos_desktop.config import resolve_paths
from memos_desktop.engines.embeddings import ensure_minilm_gguf
from tests.conftest import PASSPHRASE

WIDTH, HEIGHT = 120, 36
START_TIMEOUT = 120.0
ANSWER_TIMEOUT = 120.0
EXIT_TIMEOUT = 60.0
# Distinctive words, so finding them in a file can only mean the message was stored in clear.
QUESTION = "my cat Zorblax eats quinceberry marmalade every Tuesday"
SECRET_WORDS = ("Zorblax", "quinceberry", "marmalade")


def app_command() -> list[str]:
    script = Path(sys.executable).parent / "memos-desktop"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "memos_desktop.cli"]


class Terminal:
    """One tmux server on a private socket with one session running the app."""

    def __init__(self, tmux: str, workdir: Path, env: dict[str, str]) -> None:
        self.tmux_bin = tmux
        self.socket = f"memos-e2e-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.env = env
        # The pane stays after the app exits (its exit status and last screen can be read), and
        # no tmux status line takes a row from the app.
        self.conf = workdir / "tmux.conf"
        self.conf.write_text("set -g remain-on-exit on\nset -g status off\n", encoding="utf-8")
        self.socket_path = ""

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.tmux_bin, "-L", self.socket, "-f", str(self.conf), *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=30,
        )

    def start(self, command: list[str]) -> None:
        self.tmux(
            "-u",
            "new-session",
            "-d",
            "-s",
            "app",
            "-x",
            str(WIDTH),
            "-y",
            str(HEIGHT),
            *command,
        )
        self.socket_path = self.tmux("display-message", "-p", "#{socket_path}").stdout.strip()

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "app").stdout

    def pane(self, fmt: str) -> str:
        return self.tmux("display-message", "-p", "-t", "app", fmt).stdout.strip()

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "app", "-l", text)

    def key(self, key: str) -> None:
        self.tmux("send-keys", "-t", "app", key)

    def wait_for(self, what: str, check: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if check(screen):
                return screen
            if self.pane("#{pane_dead}") == "1":
                exit_ = self.wait_exit(10)
                raise AssertionError(
                    f"the app exited ({exit_}) while waiting for {what}; screen:\n{self.screen()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout:.0f} s waiting for {what}; screen:\n{screen}"
                )
            time.sleep(0.1)

    def wait_exit(self, timeout: float) -> str:
        """Wait until the app has exited; returns "status N" or "signal N".

        tmux marks the pane dead when the pty closes, and records the exit status when it reaps
        the process on SIGCHLD. tmux built with libutempter runs a helper when the pty closes,
        with SIGCHLD set to SIG_DFL meanwhile: a SIGCHLD arriving then is lost and the app stays
        a zombie until the next one. So a dead pane without a status gets a SIGCHLD nudge (the
        server is our own).
        """
        deadline = time.monotonic() + timeout
        dead_since: float | None = None
        while True:
            dead, status, sig = self.pane(
                "#{pane_dead}:#{pane_dead_status}:#{pane_dead_signal}"
            ).split(":")
            if status or sig:
                return f"status {status}" if status else f"signal {sig}"
            now = time.monotonic()
            if dead == "1":
                if dead_since is None:
                    dead_since = now
                elif now - dead_since > 0.5:
                    os.kill(int(self.tmux("display-message", "-p", "#{pid}").stdout), SIGCHLD)
                    dead_since = now
            if now > deadline:
                raise AssertionError(
                    f"the app did not exit within {timeout:.0f} s (pane dead: {dead}); "
                    f"screen:\n{self.screen()}"
                )
            time.sleep(0.05)

    def kill(self) -> None:
        self.tmux("kill-server", check=False)
        if self.socket_path:  # tmux leaves its socket file behind
            Path(self.socket_path).unlink(missing_ok=True)


def status_line(screen: str) -> str:
    """The status bar: " ready  tiny │ personal │ ctx 697/1024 │ TTFT 1 ms · ... │ 🔒 ..."."""
    for line in screen.splitlines():
        if "│ ctx " in line and "│ TTFT " in line:
            return line.strip()
    return ""


def state(screen: str) -> str:
    """The state shown first in the status bar ("loading model", "ready", ...)."""
    return status_line(screen).split("  ")[0]


def answered(screen: str) -> bool:
    return state(screen) == "ready" and re.search(r"TTFT \d+ ms", status_line(screen)) is not None


def plaintext_hits(root: Path) -> list[str]:
    """Every (file, word) where a typed word is in a file under ``root``, in clear."""
    hits = []
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        data = f.read_bytes().lower()
        for word in SECRET_WORDS:
            for encoded in (word.lower().encode("utf-8"), word.lower().encode("utf-16-le")):
                if encoded in data:
                    hits.append(f"{f.relative_to(root)}: {word!r}")
    return hits


def test_chat_in_a_real_terminal(isolated_home: Path, tiny_path: Path, tmp_path: Path) -> None:
    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.fail("tmux is required for the end-to-end test: apt-get install tmux")
    home = isolated_home
    paths = resolve_paths({"MEMOS_DESKTOP_HOME": str(home)})
    config = paths.config_file
    config.parent.mkdir(parents=True)
    config.write_text(
        f'[models]\nchat = "{tiny_path}"\n'
        "[engine]\nn_ctx = 1024\nn_threads = 1\nn_threads_batch = 1\n",
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "MEMOS_DESKTOP_HOME": str(home),
        "MEMOS_DESKTOP_PASSPHRASE": PASSPHRASE,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "LANG": os.environ.get("LANG") or "C.UTF-8",
    }
    env.pop("MEMOS_DESKTOP_PROFILE", None)
    env.pop("TMUX", None)  # started from inside tmux: still use our own server
    init = subprocess.run(
        [*app_command(), "init", "--passphrase"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert init.returncode == 0, f"init failed:\n{init.stdout}\n{init.stderr}"
    profile_dir = paths.profile_dir("default")
    assert (profile_dir / "memos.db").is_file(), sorted(profile_dir.iterdir())
    # Converted once here, so the launch below is a warm start (the first start converts it).
    ensure_minilm_gguf(paths)

    term = Terminal(tmux, tmp_path, env)
    try:
        term.start(app_command())
        screen = term.wait_for(
            "the status bar to say ready", lambda s: state(s) == "ready", START_TIMEOUT
        )
        assert "memos-desktop" in screen, screen
        assert QUESTION not in screen, screen

        term.type(QUESTION)
        term.wait_for("the question in the prompt", lambda s: QUESTION in s, 30)
        term.key("Enter")
        screen = term.wait_for("the answer to finish", answered, ANSWER_TIMEOUT)

        lines = screen.splitlines()
        asked = [i for i, line in enumerate(lines) if QUESTION in line]
        assert len(asked) == 1, f"the question should be in the transcript once:\n{screen}"
        # The answer block is under the question: lines with the assistant's left border at the
        # transcript's left edge (the question is indented by its margin) and some text.
        answer = [
            m.group(1).strip()
            for line in lines[asked[0] + 1 :]
            if (m := re.match(r"^ {1,3}█ (.*?)(?:\s+▏.*)?$", line)) and m.group(1).strip()
        ]
        assert answer, f"no answer block under the question:\n{screen}"
        text = " ".join(answer)
        assert "Error" not in text and "(no answer)" not in text and text != "…", screen
        bar = status_line(screen)
        assert "KV miss" in bar, f"status bar: {bar!r}\n{screen}"
        # The lock and the key method: the profile is encrypted, its key under a passphrase.
        assert re.search(r"🔒 (encrypted · )?passphrase", bar), f"status bar: {bar!r}\n{screen}"
        assert re.search(r"ctx [1-9]\d*/1024", bar), f"status bar: {bar!r}\n{screen}"

        hits = plaintext_hits(home / "data")
        assert not hits, f"typed words stored in clear while the app runs: {hits}"

        term.key("C-q")
        # The pane is dead when the pty closes; the exit status is known once tmux reaped it.
        exit_ = term.wait_exit(EXIT_TIMEOUT)
        assert exit_ == "status 0", f"the app exited with {exit_}; screen:\n{term.screen()}"
    finally:
        term.kill()
    assert term.tmux("has-session", "-t", "app", check=False).returncode != 0

    # After exit (WAL checkpointed into the DB): still no plaintext in the data or the logs...
    files = sorted(p.name for p in profile_dir.iterdir())
    assert "memos.db" in files, files
    hits = plaintext_hits(home / "data") + plaintext_hits(home / "logs")
    assert not hits, f"typed words stored in clear: {hits}"
    # ...and the message was stored (encrypted): the CLI, with the passphrase, finds it.
    found = subprocess.run(
        [*app_command(), "search", "Zorblax"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert found.returncode == 0, found.stderr
    # the fact read from it ("My cat Zorblax ...": the reader capitalises) is found...
    assert QUESTION.casefold() in found.stdout.casefold(), (
        f"the message was not remembered:\n{found.stdout}"
    )
    # ...and the message itself is kept verbatim as the raw episode
    episodes = subprocess.run(
        [*app_command(), "list", "--type", "episode"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert episodes.returncode == 0, episodes.stderr
    assert f"User: {QUESTION}" in episodes.stdout, episodes.stdout
