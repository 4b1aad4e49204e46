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

from pathlib import Path
from typing import Any

from memos_desktop.api.base import ApiBase, locked
from memos_desktop.api.presence import (
    RoleLock,
    answering_stream,
    claim_role,
    daemon_state,
    describe,
    status_line,
    touch_answering,
    write_daemon_state,
)
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

__all__ = [
    "DaemonOps",
    "Outcome",
    "Released",
    "RoleLock",
    "answering_stream",
    "claim_role",
    "daemon_state",
    "describe",
    "register_handler",
    "register_periodic",
    "status_line",
    "touch_answering",
    "worker_id",
    "write_daemon_state",
]


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
        d = self.store.settings.daemon
        return d.yield_to_answers and presence.person_active(self.store.dir, d.idle_s)

    def answering_dir(self) -> Path:
        return self.store.dir

    @locked
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
