"""What every front end may know about the processes sharing a profile (issue 12), cheap to
import (no numpy, store or model code: the terminal app calls it before its first paint): be
the profile's one terminal app or daemon, read the daemon's state, say it in one line, and
mark an answer in progress so the daemon yields.

Design rule: the daemon's state is counts, job kinds and times, never memory text.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from memos_desktop.config import Paths
from memos_desktop.store import presence
from memos_desktop.store.presence import RoleLock, touch_answering

__all__ = [
    "RoleLock",
    "ago",
    "answering_stream",
    "claim_role",
    "daemon_state",
    "describe",
    "status_line",
    "touch_answering",
    "write_daemon_state",
]


def answering_stream(pdir: Path, it: Iterator[str]) -> Iterator[str]:
    """Yield from ``it`` with the profile's answering marker held (the daemon pauses)."""
    with presence.answering(pdir):
        yield from it


def claim_role(paths: Paths, profile: str, role: str) -> RoleLock:
    """Be the one ``tui`` or ``daemon`` of the profile (BusyError, exit 7, if one runs)."""
    pdir = paths.profile_dir(profile)
    pdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return RoleLock(pdir, role)


def daemon_state(paths: Paths, profile: str) -> dict[str, Any]:
    """What the daemon last wrote (state, pid, its last report) and whether it runs now."""
    return presence.read_state(paths.profile_dir(profile))


def write_daemon_state(paths: Paths, profile: str, state: dict[str, Any]) -> None:
    presence.write_state(paths.profile_dir(profile), state)


# The report's words, most telling first ("merged 3 duplicates, summarised 2 sessions"):
# count name -> (verb, singular, plural).
_WORDS: dict[str, tuple[str, str, str]] = {
    "merged duplicates": ("merged", "duplicate", "duplicates"),
    "resolved conflicts": ("resolved", "conflict", "conflicts"),
    "summarised sessions": ("summarised", "session", "sessions"),
    "archived stale": ("archived", "stale memory", "stale memories"),
    "added": ("added", "memory", "memories"),
    "updated": ("updated", "memory", "memories"),
    "superseded": ("superseded", "memory", "memories"),
    "conversations read": ("read", "conversation", "conversations"),
    "refreshed KV states": ("refreshed", "KV state", "KV states"),
    "sent changes": ("synced", "change out", "changes out"),
    "applied sync files": ("applied", "sync file", "sync files"),
    "reembedded": ("re-embedded", "memory", "memories"),
}
_QUIET = ("queued maintenance jobs",)


def describe(counts: dict[str, int]) -> str:
    """Counts as a phrase: ``{"merged duplicates": 3}`` -> "merged 3 duplicates"."""
    order = list(_WORDS)
    parts = []
    for name in sorted(counts, key=lambda k: (order.index(k) if k in order else 99, k)):
        n = counts[name]
        if not n or name in _QUIET:
            continue
        if name in _WORDS:
            verb, one, many = _WORDS[name]
            parts.append(f"{verb} {n} {one if n == 1 else many}")
        else:
            parts.append(f"{name}: {n}")
    return ", ".join(parts)


def ago(t: float | None, now: float | None = None) -> str:
    if not t:
        return ""
    s = max(0.0, (now or time.time()) - t)
    if s < 60:
        return "just now"
    if s < 3600:
        return f"{int(s // 60)} min ago"
    if s < 86400:
        return f"{int(s // 3600)} h ago"
    return f"{int(s // 86400)} d ago"


def status_line(st: dict[str, Any], now: float | None = None) -> str:
    """One line: "idle · merged 3 duplicates, summarised 2 sessions, 5 min ago · 4 queued"."""
    q = st.get("queue", {})
    queued = int(q.get("queued", 0)) + int(q.get("running", 0))
    head = str(st.get("state") or "running") if st.get("running") else "off"
    parts = [head]
    last = st.get("last") or {}
    if st.get("running") and last.get("summary"):
        parts.append(f"{last['summary']}, {ago(last.get('at'), now)}")
    text = " · ".join(parts)
    return text + (f", {queued} queued" if queued else "")
