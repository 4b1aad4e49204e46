"""One terminal app per profile: a second `memos-desktop` on the same profile, on a real
terminal (a pty), says who holds it and exits 7 before painting, while CLI commands still
work beside the first."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from typing import Any

from memos_desktop.config import resolve_paths
from memos_desktop.store import presence
from memos_desktop.store.profile import Store
from tests.daemon.conftest import child_env, cli, wait_for


def on_pty() -> tuple[subprocess.Popen[bytes], int]:
    master, slave = pty.openpty()
    env = {**child_env(), "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
    p = subprocess.Popen(
        [sys.executable, "-m", "memos_desktop.cli"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    return p, master


def drain(fd: int) -> bytes:
    out = b""
    while select.select([fd], [], [], 0.2)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out


def test_a_second_terminal_app_gets_the_message_and_exit_7(profile: Store, embedder: Any) -> None:
    pdir = resolve_paths().profile_dir("default")
    first, m1 = on_pty()
    try:
        wait_for(lambda: (drain(m1), presence.role_held(pdir, "tui"))[1], 60, "the first app")
        second, m2 = on_pty()
        out = b""
        try:
            while b"[q] quit" not in out and second.poll() is None:
                out += drain(m2)
            os.write(m2, b"q\n")  # it asks: read-only, or quit
            while second.poll() is None:
                out += drain(m2)
            out += drain(m2)
        finally:
            os.close(m2)
        text = out.decode("utf-8", "replace")
        assert second.returncode == 7, text
        assert "the terminal app is already running on profile 'default'" in text
        assert f"pid {first.pid}" in text
        assert "read-only" in text
        assert first.poll() is None

        # asked again, "r" opens it read-only beside the first (it paints and says so)
        second, m2 = on_pty()
        out = b""
        try:
            while b"[q] quit" not in out and second.poll() is None:
                out += drain(m2)
            os.write(m2, b"r\n")
            after = [b""]

            def painted_read_only() -> bool:
                after[0] += drain(m2)
                return b"read-only" in after[0]

            wait_for(painted_read_only, 60, "the read-only app")
            assert second.poll() is None
        finally:
            second.kill()
            second.wait(timeout=10)
            os.close(m2)
        assert first.poll() is None
        # a CLI command beside the open app works
        r = cli("add", "I keep my bike in the hall")
        assert r.returncode == 0, r.stderr
    finally:
        first.kill()
        first.wait(timeout=10)
        os.close(m1)
    assert not presence.role_held(pdir, "tui")  # a killed app leaves nothing stale
