"""The daemon's main loop: drain the job queue while the person is away.

Design rules:
- One daemon per profile (``daemon.lock``, an flock: a killed daemon leaves nothing stale);
  it shares the profile with one terminal app and any number of CLI commands.
- It yields to the person: before each job it asks whether a front end is answering (or did
  within ``[daemon] idle_s``) and waits while one is; it runs at a low CPU priority
  (``[daemon] nice``).
- SIGTERM (or SIGINT) stops it within a poll interval: between jobs it just stops; during a
  job the job is interrupted (:class:`~memos_desktop.api.daemon_ops.Released`), nothing of it
  commits, and it is put back untouched for the next start. SIGKILL leaves the job leased: it
  is claimed again after its lease expires and redone from the start (its effects and its
  finish commit together, so it takes effect exactly once).
- The state file (``daemon.json``) and the log (``daemon.log`` in the profile folder) hold
  counts, job kinds, ids and times, never memory text.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

import memos_desktop.api.sync_ops  # noqa: F401  (registers the periodic "sync" job)
from memos_desktop.api.daemon_ops import (
    Released,
    claim_role,
    describe,
    worker_id,
    write_daemon_state,
)
from memos_desktop.config import Paths, Settings

if TYPE_CHECKING:
    from memos_desktop.api import MemosAPI

log = logging.getLogger(__name__)

LOG_FILE = "daemon.log"
PLUGINS_ENV = "MEMOS_DESKTOP_DAEMON_PLUGINS"


def setup_daemon_logging(paths: Paths, profile: str) -> None:
    """The daemon logs to ``daemon.log`` in the profile folder (0600)."""
    pdir = paths.profile_dir(profile)
    pdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = pdir / LOG_FILE
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    root = logging.getLogger("memos_desktop")
    if not any(getattr(h, "baseFilename", "") == str(path) for h in root.handlers):
        h = logging.FileHandler(path, encoding="utf-8")
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(h)
    root.setLevel(logging.INFO)


def load_plugins(names: str) -> list[str]:
    """Import the modules named (comma-separated) so they register their job handlers."""
    loaded = []
    for name in (n.strip() for n in names.split(",")):
        if name:
            importlib.import_module(name)
            loaded.append(name)
    return loaded


@dataclass
class Daemon:
    api: MemosAPI
    paths: Paths
    settings: Settings
    profile: str
    once: bool = False
    stop: threading.Event = field(default_factory=threading.Event)
    worker: str = field(default_factory=worker_id)
    started_at: float = field(default_factory=time.time)
    jobs_done: int = 0
    jobs_failed: int = 0
    last: dict[str, Any] = field(default_factory=dict)
    _in_job: bool = False
    _state: str = "starting"
    _written: float = 0.0

    # --- signals ----------------------------------------------------------------------------

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        self.stop.set()
        if self._in_job:
            self._in_job = False  # a second signal does not interrupt the putting back
            raise Released()

    # --- state --------------------------------------------------------------------------------

    def write_state(self, state: str, *, force: bool = False, **extra: Any) -> None:
        now = time.time()
        if not force and state == self._state and now - self._written < 2.0:
            return
        self._state, self._written = state, now
        write_daemon_state(
            self.paths,
            self.profile,
            {
                "pid": os.getpid(),
                "worker": self.worker,
                "state": state,
                "started_at": self.started_at,
                "updated_at": now,
                "jobs_done": self.jobs_done,
                "jobs_failed": self.jobs_failed,
                "last": self.last,
                **extra,
            },
        )

    # --- the loop -------------------------------------------------------------------------------

    def run(self) -> int:
        ctx = self.api.job_context()
        queued = self.api.queue_periodic_jobs()
        log.info(
            "daemon %s started (pid %d); %d periodic jobs queued", self.worker, os.getpid(), queued
        )
        batch: dict[str, int] = {}
        poll = self.settings.daemon.poll_s
        try:
            while not self.stop.is_set():
                if self.api.person_active():
                    self.write_state("paused")
                    self.stop.wait(poll)
                    continue
                self._in_job = True
                try:
                    out = self.api.run_next_job(self.worker, ctx)
                finally:
                    self._in_job = False
                if out is None:
                    if batch:
                        self.last = {"summary": describe(batch), "counts": batch, "at": time.time()}
                        batch = {}
                        self.write_state("idle", force=True)
                    if self.once:
                        break
                    self.write_state("idle")
                    self.stop.wait(poll)
                    continue
                if out.status == "done":
                    self.jobs_done += 1
                    for k, v in out.counts.items():
                        batch[k] = batch.get(k, 0) + v
                elif out.status == "failed":
                    self.jobs_failed += 1
                log.info("job %d (%s): %s %s", out.job_id, out.kind, out.status, out.error)
                self.write_state("working")
        except Released:
            log.info("stopped during a job; it was put back")
        if batch:
            self.last = {"summary": describe(batch), "counts": batch, "at": time.time()}
        self.write_state("stopped", force=True)
        log.info("daemon stopped (%d jobs done, %d failed)", self.jobs_done, self.jobs_failed)
        return 0


def serve(
    paths: Paths,
    settings: Settings,
    profile: str,
    *,
    passphrase: str | None = None,
    once: bool = False,
) -> int:
    """Open the profile as its daemon and run until stopped (``once``: until the queue is
    empty). Raises MemosError (BusyError if a daemon runs; AuthError without the key)."""
    from memos_desktop.api import default_embedder_factory, open_api

    setup_daemon_logging(paths, profile)
    plugins = load_plugins(os.environ.get(PLUGINS_ENV, ""))
    if plugins:
        log.info("plugins loaded: %s", ", ".join(plugins))
    role = claim_role(paths, profile, "daemon")
    try:
        daemon_stub = {"pid": os.getpid(), "state": "starting", "started_at": time.time()}
        write_daemon_state(paths, profile, daemon_stub)
        if settings.daemon.nice:
            with contextlib.suppress(OSError):
                os.nice(settings.daemon.nice)

        def provide(prompt: str) -> str:
            if passphrase is None:
                from memos_desktop.errors import PassphraseRequiredError

                raise PassphraseRequiredError(
                    f"profile '{profile}' is protected by a passphrase and the daemon has no one "
                    "to ask",
                    hint="run `memos-desktop daemon start` in a terminal and type the passphrase "
                    "once per login session (it is kept in the daemon's memory only), or move "
                    "the key to the OS keyring",
                )
            return passphrase

        try:
            api = open_api(
                paths,
                settings,
                profile=profile,
                passphrase_provider=provide,
                embedder_factory=default_embedder_factory(paths, settings),
            )
        except Exception as exc:
            from memos_desktop.errors import MemosError

            code = exc.exit_code if isinstance(exc, MemosError) else 1
            write_daemon_state(
                paths,
                profile,
                {**daemon_stub, "state": "failed", "error": str(exc), "exit_code": code},
            )
            log.error("could not open the profile: %s", type(exc).__name__)
            raise
        try:
            d = Daemon(api, paths, settings, profile, once=once)
            d.install_signals()
            d.write_state("idle", force=True)
            return d.run()
        finally:
            api.close()
    finally:
        role.release()
