"""The ``reembed`` job: embed the memories of a cube that have no vector of the cube's model
(imported from a cube file made with another embedding model, or with none).

Design rules:
- Durable and resumable: the job holds only the cube id; each run embeds what still lacks a
  vector, in batches, each batch committed with a lease renewal (so a worker that dies loses
  one batch of work, and a worker whose lease was taken commits nothing more).
- The model runs outside any transaction; only the vectors' writes take the write lock.
- :func:`run_pending` is the foreground runner (CLI, tests); a daemon worker calls
  :func:`handle` for each claimed job of this kind (:data:`HANDLERS`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from memos_desktop.engines.base import Embedder
from memos_desktop.errors import InvalidInputError, LeaseLostError
from memos_desktop.memory.handlers import Counts, JobContext, register_handler
from memos_desktop.store import cube_rows
from memos_desktop.store.jobs import Job, register_kind
from memos_desktop.store.profile import Store

log = logging.getLogger(__name__)

REEMBED = register_kind(
    "reembed",
    "embed a cube's memories that lack a vector of its model (after a cube import)",
    lease_s=300.0,
    max_attempts=5,
)
BATCH = 64

Progress = Callable[[int, int], None]  # (done, total) memories of the job's cube


@dataclass(frozen=True)
class ReembedReport:
    jobs: int
    embedded: int
    failed: int

    def summary(self) -> str:
        return f"{self.embedded} memories embedded in {self.jobs} jobs ({self.failed} failed)"


def handle(
    store: Store,
    embedder: Embedder,
    job: Job,
    progress: Progress | None = None,
    *,
    finish: bool = True,
) -> int:
    """Run one claimed ``reembed`` job to the end and finish it (``finish=False``: the caller
    does); returns how many memories were embedded. Each batch commits on its own: a job
    redone after a crash embeds only what is still missing. Raises LeaseLostError if another
    worker took the job."""
    assert job.lease_token is not None
    cube = store.cubes.get(str(job.payload["cube_id"]))
    if embedder.model_id != cube.embed_model or embedder.dim != cube.embed_dim:
        raise InvalidInputError(
            f"the cube {cube.name} is embedded with {cube.embed_model}, this device's "
            f"embedder is {embedder.model_id}",
            hint="configure the cube's embedding model to re-embed it",
        )
    total = cube_rows.count_missing_vectors(store.db, cube.id, cube.embed_model)
    done = 0
    while True:
        rows = cube_rows.missing_vectors(store.db, cube.id, cube.embed_model, BATCH)
        if not rows:
            break
        vecs = np.asarray(embedder.embed([t for _, t in rows]), dtype=np.float32)
        with store.unit_of_work() as c:
            store.jobs.renew(job, job.lease_token)
            cube_rows.set_vectors(
                c,
                store.changelog,
                cube.id,
                cube.embed_dim,
                cube.embed_model,
                [(rowid, vecs[i].tobytes()) for i, (rowid, _) in enumerate(rows)],
            )
        done += len(rows)
        if progress is not None:
            progress(done, max(total, done))
    if finish:
        store.jobs.finish(job, job.lease_token)
    return done


def _daemon_job(ctx: JobContext, job: Job) -> Counts:
    """The daemon's handler: the cube's embedder, the batches, then the job's finish."""
    cube = ctx.store.cubes.get(str(job.payload["cube_id"]))
    embedder = ctx.embedder_for(cube)
    if embedder is None:
        raise InvalidInputError(
            f"no embedding model is available to re-embed the cube {cube.name}",
            hint="`memos-desktop models list` shows the embedders",
        )
    done = handle(ctx.store, embedder, job, finish=False)
    with ctx.effects():
        pass
    return {"reembedded": done}


register_handler(REEMBED.name, _daemon_job)

HANDLERS: dict[str, Callable[[Store, Embedder, Job, Progress | None], int]] = {REEMBED.name: handle}


def run_pending(
    store: Store,
    embedder: Embedder | None,
    *,
    worker: str = "foreground",
    limit: int = 100,
    progress: Progress | None = None,
) -> ReembedReport:
    """Claim and run queued ``reembed`` jobs in this process, until none is left."""
    if embedder is None:
        raise InvalidInputError(
            "no embedding model is available to re-embed with",
            hint="`memos-desktop models list` shows the embedders",
        )
    jobs = embedded = failed = 0
    for _ in range(limit):
        job = store.jobs.claim(worker, kinds=(REEMBED.name,))
        if job is None:
            break
        assert job.lease_token is not None
        try:
            embedded += handle(store, embedder, job, progress)
            jobs += 1
        except LeaseLostError:
            log.warning("reembed job %s: lease lost to another worker", job.id)
        except Exception as exc:
            log.warning("reembed job %s failed: %s", job.id, type(exc).__name__)
            failed += 1
            with contextlib.suppress(LeaseLostError):
                store.jobs.fail(job, job.lease_token, f"{type(exc).__name__}: {exc}")
    return ReembedReport(jobs, embedded, failed)
