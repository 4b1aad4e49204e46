"""The registry of what the daemon runs: a handler per queued job kind, and periodic jobs.

It lives in the memory layer so that every layer above can plug in: memory's own
maintenance (``memory/maintenance.py``), sync (``register_periodic("sync", ...)``) and the api
(re-embedding) all register here, and the daemon (a front end) runs them through the api.

Design rules:
- A handler gets a :class:`JobContext` and the claimed job. It does its slow work (a model
  call, embedding) first, outside any transaction, then writes its effects inside
  ``with ctx.effects():``, which commits them together with the job's ``finish`` (one unit of
  work). A job whose worker died mid-way is claimed again after its lease and redone from the
  start; since nothing of the first run committed, its effect lands exactly once.
- A handler that never enters ``ctx.effects()`` (nothing to change) is finished after it
  returns. It returns counts of what it did (``{"merged": 3}``) for the daemon's report; no
  memory text goes into them.
- A periodic job is an ordinary job kind: its next run is queued (``run_after`` = now +
  interval) in the same unit of work that finishes the current one, and queued again at
  daemon start if none is waiting, so the schedule survives restarts and crashes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from memos_desktop.config import Settings
from memos_desktop.engines.base import ChatEngine, Embedder
from memos_desktop.errors import LeaseLostError
from memos_desktop.store.jobs import KINDS, Job
from memos_desktop.store.profile import Store
from memos_desktop.store.records import Cube

log = logging.getLogger(__name__)

Counts = dict[str, int]


@dataclass
class JobContext:
    """What a handler may use. ``services`` carries what upper layers put there for their own
    handlers (the daemon puts ``"api"``: the open MemosAPI)."""

    store: Store
    settings: Settings
    engine: Callable[[], ChatEngine]  # loads the chat model on first call
    embedder_for: Callable[[Cube], Embedder | None]
    user_name: str = "the user"
    services: dict[str, Any] = field(default_factory=dict)
    job: Job | None = None
    committed: bool = False

    @contextlib.contextmanager
    def effects(self) -> Iterator[None]:
        """The job's writes and its ``finish`` (plus a periodic job's next run) in one unit of
        work. A lost lease raises LeaseLostError inside it: nothing of the job commits."""
        job = self.job
        assert job is not None and job.lease_token is not None
        with self.store.unit_of_work():
            yield
            self.store.jobs.finish(job, job.lease_token)
            every = PERIODIC.get(job.kind)
            if every is not None:
                queue_periodic(self.store, job.kind, every, delay=True)
        self.committed = True


Handler = Callable[[JobContext, Job], Counts | None]


class Handlers:
    """Kind name -> handler. Registering a name again replaces its handler."""

    def __init__(self) -> None:
        self._fns: dict[str, Handler] = {}
        self._lock = threading.Lock()

    def register(self, kind: str, fn: Handler) -> None:
        with self._lock:
            self._fns[kind] = fn

    def get(self, kind: str) -> Handler | None:
        return self._fns.get(kind)

    def names(self) -> list[str]:
        return sorted(self._fns)


HANDLERS = Handlers()
PERIODIC: dict[str, float] = {}  # kind -> interval in seconds


def register_handler(
    kind: str,
    fn: Handler,
    *,
    description: str = "",
    lease_s: float | None = None,
    max_attempts: int | None = None,
) -> None:
    """Run ``fn`` for queued jobs of ``kind``. The kind is registered in the store's registry
    too if it is not there yet (``description``, ``lease_s``, ``max_attempts``)."""
    from memos_desktop.store.jobs import DEFAULT_LEASE_S, DEFAULT_MAX_ATTEMPTS, register_kind

    if kind not in KINDS or lease_s is not None or max_attempts is not None:
        known = KINDS.find(kind)
        register_kind(
            kind,
            description or (known.description if known else kind),
            lease_s=lease_s or (known.lease_s if known else DEFAULT_LEASE_S),
            max_attempts=max_attempts or (known.max_attempts if known else DEFAULT_MAX_ATTEMPTS),
        )
    HANDLERS.register(kind, fn)


def register_periodic(
    name: str,
    interval_s: float,
    fn: Handler,
    *,
    description: str = "",
    lease_s: float | None = None,
) -> None:
    """Run ``fn`` every ``interval_s`` seconds (a job kind named ``name``; the job's payload
    is empty). The first run is at daemon start."""
    register_handler(name, fn, description=description or f"periodic: {name}", lease_s=lease_s)
    PERIODIC[name] = float(interval_s)


def queue_periodic(store: Store, name: str, interval_s: float, *, delay: bool) -> int | None:
    """Queue the next run of a periodic job unless one is waiting (dedupe key)."""
    return store.jobs.enqueue(
        name,
        {},
        run_after=time.time() + interval_s if delay else None,
        dedupe_key=f"periodic:{name}",
        priority=-1,
    )


@dataclass(frozen=True)
class Outcome:
    job_id: int
    kind: str
    status: str  # "done", "failed", "lost" (lease lost: nothing saved), "released"
    counts: Counts
    error: str = ""


class Released(BaseException):
    """Raised into a running job to stop it (the daemon got SIGTERM): the job is put back
    untouched, its attempt not counted."""


def run_one(ctx: JobContext, worker: str, kinds: tuple[str, ...] = ()) -> Outcome | None:
    """Claim the next ready job this process has a handler for, and run it. None: nothing
    to do. Never raises for a failing job (it is put back with its error, dead after its
    attempts); :class:`Released` is re-raised after the job was put back."""
    store = ctx.store
    job = store.jobs.claim(worker, kinds=kinds or tuple(HANDLERS.names()))
    if job is None:
        return None
    assert job.lease_token is not None
    fn = HANDLERS.get(job.kind)
    ctx.job, ctx.committed = job, False
    try:
        if fn is None:  # claimed with an explicit kind list naming an unhandled kind
            raise LookupError(f"no handler for job kind {job.kind!r} in this process")
        counts = fn(ctx, job) or {}
        if not ctx.committed:
            with ctx.effects():
                pass
        return Outcome(job.id, job.kind, "done", counts)
    except LeaseLostError:
        log.warning("job %s (%s): lease lost to another worker; nothing saved", job.id, job.kind)
        return Outcome(job.id, job.kind, "lost", {})
    except Released:
        if not ctx.committed:
            with contextlib.suppress(LeaseLostError):
                store.jobs.release(job, job.lease_token)
            log.info("job %s (%s): put back untouched (shutting down)", job.id, job.kind)
        raise
    except Exception as exc:
        # The error's type and message only: handlers do not put memory text in exceptions.
        log.warning("job %s (%s) failed: %s", job.id, job.kind, type(exc).__name__)
        with contextlib.suppress(LeaseLostError):
            store.jobs.fail(job, job.lease_token, f"{type(exc).__name__}: {exc}")
        return Outcome(job.id, job.kind, "failed", {}, type(exc).__name__)
    finally:
        ctx.job = None
