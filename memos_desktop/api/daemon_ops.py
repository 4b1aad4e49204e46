"""The daemon's door into the api (issue 12): run the next queued job, queue the periodic ones,
yield to the person, and what a front end shows about the daemon.

Design rules:
- The daemon is a front end: it calls these and nothing below the api. Jobs run generically
  (``memory/handlers.py``: a handler looked up by kind name); memory's maintenance handlers are
  registered on import, and other layers register theirs (``register_handler``,
  ``register_periodic``, re-exported here for the api level).
- A job runs holding the API's lock only around its store work, like any other call; the
  model work of a handler happens in the handler.
- What the daemon reports (``daemon.json``) is counts, job kinds and times: no memory text.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from memos_desktop.api.base import ApiBase
from memos_desktop.config import Paths
from memos_desktop.memory import handlers
from memos_desktop.memory import maintenance as _maintenance
from memos_desktop.memory.consolidate import worker_id
from memos_desktop.memory.handlers import (
    Outcome,
    Released,
    register_handler,
    register_periodic,
)
from memos_desktop.store import presence
from memos_desktop.store.presence import RoleLock, touch_answering

__all__ = [
    "DaemonOps",
    "Outcome",
    "Released",
    "RoleLock",
    "claim_role",
    "daemon_state",
    "describe",
    "register_handler",
    "register_periodic",
    "touch_answering",
    "worker_id",
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


class DaemonOps(ApiBase):
    def job_context(self, services: dict[str, Any] | None = None) -> handlers.JobContext:
        return handlers.JobContext(
            store=self.store,
            settings=self.store.settings,
            engine=lambda: self.engine,
            embedder_for=self._embedder_for,
            user_name=self.user.display_name,
            services={"api": self, **(services or {})},
        )

    def run_next_job(
        self, worker: str, ctx: handlers.JobContext | None = None, kinds: tuple[str, ...] = ()
    ) -> Outcome | None:
        """Claim and run the next ready job this process has a handler for (None: none)."""
        return handlers.run_one(ctx or self.job_context(), worker, kinds)

    def queue_periodic_jobs(self) -> int:
        """Queue every periodic job that has no run waiting (daemon start): how many."""
        handlers.PERIODIC[_maintenance.SWEEP] = self.store.settings.daemon.sweep_interval_s
        n = 0
        for name, every in handlers.PERIODIC.items():
            if handlers.queue_periodic(self.store, name, every, delay=False) is not None:
                n += 1
        return n

    def person_active(self) -> bool:
        """Is a front end answering on this profile now, or did it within the idle window?"""
        return presence.person_active(self.store.dir, self.store.settings.daemon.idle_s)

    def answering_dir(self) -> Path:
        return self.store.dir

    def daemon_status(self) -> dict[str, Any]:
        """For ``daemon status`` and the status bar: running or not, its state, what it did
        last and when, and the queue (queued, running, failed for good)."""
        st = presence.read_state(self.store.dir)
        counts = self.store.jobs.counts()
        st["queue"] = {
            "queued": counts.get("queued", 0),
            "running": counts.get("running", 0),
            "dead": counts.get("dead", 0),
        }
        return st


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
