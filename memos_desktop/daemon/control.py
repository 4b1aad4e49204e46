"""Start, stop and report on a profile's daemon from another process (``memos-desktop daemon``).

Design rules:
- "Running" is decided by the daemon's flock (``daemon.lock``), never by a pid file alone; the
  pid in ``daemon.json`` is signalled only while that lock is held.
- ``start`` spawns ``python -m memos_desktop.daemon run`` in its own session, detached from
  the terminal. A passphrase profile's passphrase is written to the child's stdin pipe and the
  pipe closed: it is never on a command line, in a child's environment, or in a file. The
  child keeps the key in memory only, for as long as it runs (one unlock per login session).
- ``start`` waits until the child says it is up (or why it is not: its error and exit code in
  ``daemon.json``), so a wrong passphrase is reported where it was typed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from memos_desktop.api.daemon_ops import daemon_state
from memos_desktop.config import Paths
from memos_desktop.daemon.worker import LOG_FILE
from memos_desktop.errors import BusyError, DaemonStartError

UP_STATES = ("idle", "working", "paused")


def daemon_command(
    profile: str, *, once: bool = False, passphrase_fd: int | None = None
) -> list[str]:
    cmd = [sys.executable, "-m", "memos_desktop.daemon", "run", "--profile", profile]
    if once:
        cmd.append("--once")
    if passphrase_fd is not None:
        cmd += ["--passphrase-fd", str(passphrase_fd)]
    return cmd


def start(
    paths: Paths, profile: str, *, passphrase: str | None = None, wait_s: float = 60.0
) -> dict[str, Any]:
    """Spawn the daemon and wait until it is up; returns its state. BusyError if one runs;
    :class:`DaemonStartError` (with the child's exit code) if it stopped first."""
    st = daemon_state(paths, profile)
    if st.get("running"):
        raise BusyError(
            f"the daemon is already running on profile '{profile}' (pid {st.get('pid')})",
            hint="`memos-desktop daemon status` shows what it does",
        )
    pdir = paths.profile_dir(profile)
    before = float(st.get("started_at") or 0.0)
    proc = subprocess.Popen(
        daemon_command(profile, passphrase_fd=0 if passphrase is not None else None),
        stdin=subprocess.PIPE if passphrase is not None else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    if passphrase is not None:
        assert proc.stdin is not None
        proc.stdin.write(passphrase.encode("utf-8"))
        proc.stdin.close()
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        st = daemon_state(paths, profile)
        fresh = st.get("pid") == proc.pid and float(st.get("started_at") or 0) >= before
        if fresh and st.get("state") in UP_STATES and st.get("running"):
            return st
        code = proc.poll()
        if code is not None:
            st = daemon_state(paths, profile)
            error = st.get("error") if st.get("pid") == proc.pid else None
            raise DaemonStartError(
                f"the daemon stopped while starting: {error or f'exit code {code}'}",
                int(st.get("exit_code") or code or 1),
                hint=f"see {pdir / LOG_FILE}",
            )
        time.sleep(0.1)
    raise DaemonStartError(
        f"the daemon did not come up within {wait_s:.0f} s (pid {proc.pid})",
        1,
        hint=f"see {pdir / LOG_FILE}; `memos-desktop daemon stop` stops it",
    )


def stop(paths: Paths, profile: str, *, wait_s: float = 10.0) -> bool:
    """SIGTERM the running daemon and wait for it to let go of the profile. False: none ran."""
    st = daemon_state(paths, profile)
    if not st.get("running"):
        return False
    pid = int(st.get("pid") or 0)
    if pid <= 0:
        raise BusyError(
            "a daemon holds the profile but its pid is not known",
            hint="wait a moment and retry",
        )
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if not daemon_state(paths, profile).get("running"):
            return True
        time.sleep(0.05)
    raise BusyError(
        f"the daemon (pid {pid}) did not stop within {wait_s:.0f} s",
        hint=f"it may be finishing a model call; retry, or `kill -9 {pid}` (its job is redone)",
    )


def log_path(paths: Paths, profile: str) -> Path:
    return paths.profile_dir(profile) / LOG_FILE


def tail(path: Path, lines: int) -> list[str]:
    try:
        data = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    return data[-lines:] if lines > 0 else data


def follow(path: Path, poll_s: float = 0.5) -> Iterator[str]:
    """New lines of the log as they are written (until interrupted)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        f.seek(0, os.SEEK_END)
        while True:
            line = f.readline()
            if line:
                yield line.rstrip("\n")
            else:
                time.sleep(poll_s)
