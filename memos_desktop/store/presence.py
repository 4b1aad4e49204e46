"""Who is using a profile, between processes (issue 12): the one terminal app, the one daemon,
and whether someone is being answered right now. Files beside ``.lock`` (store/guard.py), none
holding a secret or a memory:

    tui.lock        flock held exclusively by the terminal app while it runs (one per profile)
    daemon.lock     flock held exclusively by the daemon while it runs (one per profile)
    daemon.json     the daemon's state for ``status`` and the status bar: pid, state, counts of
                    what it did last, and when (numbers and job kinds only: no memory text)
    .answering      flock held shared while an answer streams; its mtime is when the last
                    answer ended (the daemon's idle window)

Design rules:
- Every "is it running" answer comes from an flock, never from a pid file alone: a process
  that was killed (SIGKILL, a crash, a reboot) releases its locks, so nothing is ever stale.
  The pid in daemon.json is what ``stop`` signals, and only while daemon.lock is held.
- Any number of short CLI commands share a profile with these two (they take only the shared
  ``.lock``): SQLite's WAL, busy timeouts and BEGIN IMMEDIATE keep their writes apart.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from memos_desktop.errors import BusyError

TUI_LOCK = "tui.lock"
DAEMON_LOCK = "daemon.lock"
DAEMON_STATE = "daemon.json"
ANSWERING = ".answering"

ROLES = {"tui": TUI_LOCK, "daemon": DAEMON_LOCK}
_WHO = {"tui": "the terminal app", "daemon": "the memos-desktop daemon"}


def _open(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


class RoleLock:
    """The one process of a role (``tui`` or ``daemon``) on a profile. A second one gets
    :class:`BusyError` (exit 7) naming the holder's pid."""

    def __init__(self, pdir: Path, role: str) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        self.role = role
        self.path = pdir / ROLES[role]
        fd = _open(self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            what = _WHO[role]
            raise BusyError(
                f"{what} is already running on profile '{pdir.name}'"
                + (f" (pid {holder})" if holder.isdigit() else ""),
                hint=(
                    "switch to the window it runs in, or quit it (ctrl+q) and start again; "
                    "`memos-desktop` commands such as search, add and chat work beside it"
                    if role == "tui"
                    else "`memos-desktop daemon status` shows it; `memos-desktop daemon stop` "
                    "stops it"
                ),
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd: int | None = fd

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)
                os.close(self.fd)
            self.fd = None


def role_held(pdir: Path, role: str) -> bool:
    """Is a process of this role running on the profile (its flock taken)?"""
    path = pdir / ROLES[role]
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


# --- answering: the daemon yields to the person ---------------------------------------------


@contextlib.contextmanager
def answering(pdir: Path) -> Iterator[None]:
    """Held while an answer is produced (shared: several answers at once are fine). On exit
    the marker's mtime records when the person was last answered."""
    fd = _open(pdir / ANSWERING)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.utime(fd)
        os.close(fd)


def touch_answering(pdir: Path) -> None:
    """A question arrived: the idle window starts again now (before retrieval and prefill,
    which come before the answer's stream holds the marker)."""
    fd = _open(pdir / ANSWERING)
    try:
        os.utime(fd)
    finally:
        os.close(fd)


def person_active(pdir: Path, idle_s: float) -> bool:
    """Someone is being answered now, or was less than ``idle_s`` seconds ago."""
    path = pdir / ANSWERING
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return time.time() - os.fstat(fd).st_mtime < idle_s
    finally:
        os.close(fd)


# --- the daemon's state file ------------------------------------------------------------------


def write_state(pdir: Path, state: dict[str, Any]) -> None:
    """Atomically (temp file + rename, 0600). Numbers, kinds and times only."""
    tmp = pdir / (DAEMON_STATE + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps(state, sort_keys=True).encode())
    finally:
        os.close(fd)
    os.replace(tmp, pdir / DAEMON_STATE)


def read_state(pdir: Path) -> dict[str, Any]:
    """The daemon's last written state ({} when none); ``running`` says whether it holds its
    lock now (a killed daemon's file says what it was doing when it died)."""
    try:
        data = json.loads((pdir / DAEMON_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    data["running"] = role_held(pdir, "daemon")
    return data
