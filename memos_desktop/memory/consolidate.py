"""Consolidation jobs: what the daemon runs while the person is away (and what
``memos-desktop consolidate`` runs on demand).

Design rules:
- a job either finishes or is put back with its error for a later retry (dead after
  ``max_attempts``); a failing job never takes memories with it: fine extraction only ever adds,
  updates or supersedes through the reconciler, and the raw exchange items stay.
- the kinds are registered here (``store.jobs`` refuses to queue an unknown kind), and a job's
  effects and its completion commit in one unit of work.
- the report is honest: a job is "done" when its conversation was read, but every window the
  model failed on (an error, or output that is not the JSON asked for) is counted with its
  kind, as are the items the grounding test dropped. A base model that cannot extract gives
  "3 done, model failed on 3 windows (EngineError x3)", never "0 failed". The memories the
  rule reader made when the messages were said are not touched.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from memos_desktop.engines.base import ChatEngine, Embedder
from memos_desktop.errors import LeaseLostError
from memos_desktop.memory import slots
from memos_desktop.memory.reader import FineReader
from memos_desktop.memory.reconcile import Reconciler
from memos_desktop.memory.statements import Statement
from memos_desktop.store.jobs import Job, register_kind
from memos_desktop.store.profile import Store
from memos_desktop.store.records import NewMemory

log = logging.getLogger(__name__)

EXTRACT = register_kind(
    "extract",
    "fine extraction: the model reads a conversation's new turns and the reconciler adds, "
    "updates or supersedes memories from them",
    lease_s=600.0,
    max_attempts=3,
)


@dataclass(frozen=True)
class RunReport:
    done: int
    failed: int  # jobs that failed (put back for a retry, or dead)
    added: int
    updated: int
    superseded: int
    unchanged: int
    extraction_failed: int = 0  # conversation windows the model failed to read
    failure_kinds: dict[str, int] = field(default_factory=dict)  # error kind -> windows
    rejected: int = 0  # items the model wrote that the grounding test dropped
    windows: int = 0  # conversation windows the model was asked to read
    skipped_base_model: int = 0  # jobs not sent to the model: a base model cannot extract

    def summary(self) -> str:
        """One line for a person (the CLI prints it)."""
        jobs = f"{self.done} job{'s' if self.done != 1 else ''} run, {self.failed} failed"
        text = jobs
        if self.extraction_failed:
            kinds = ", ".join(f"{k} x{n}" for k, n in sorted(self.failure_kinds.items()))
            text += (
                f"; extraction FAILED on {self.extraction_failed} of {self.windows} "
                f"conversation window{'s' if self.windows != 1 else ''} ({kinds}): this model "
                "cannot extract (an instruct model can); what the reader took from the "
                "messages when they were said is kept"
            )
        if self.skipped_base_model:
            text += (
                f"; model extraction skipped for {self.skipped_base_model} of them: the chat "
                "model is a base (completion) model, which cannot follow extraction "
                "instructions; what the reader took from the messages when they were said is "
                "kept (an instruct model adds to it)"
            )
        if self.rejected:
            text += f"; {self.rejected} extracted items dropped as not grounded"
        return (
            f"{text}. {self.added} memories added, {self.updated} updated, "
            f"{self.superseded} superseded, {self.unchanged} already known."
        )


def read_as(item: NewMemory) -> Statement:
    """The model's memory as the rule reader would read it: its attribute claims let the
    reconciler supersede an older value of the same attribute."""
    return Statement(item.text, item.type, slots.claims(item.text))


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@contextlib.contextmanager
def _finishing(store: Store, job: Job) -> Iterator[None]:
    assert job.lease_token is not None
    with store.unit_of_work():
        yield
        store.jobs.finish(job, job.lease_token)


def extract_one(
    store: Store,
    job: Job,
    reader: FineReader,
    reconciler: Reconciler,
    embedder: Embedder | None,
    *,
    base_model: bool,
    effects: Callable[[], AbstractContextManager[None]],
) -> list[str] | None:
    """One extraction job: the model reads the job's messages (outside any transaction), then
    the reconciler's writes run inside ``effects()`` (the unit of work that also finishes the
    job). Returns the reconciler's actions; None when a base model was not asked."""
    cube = store.cubes.get(str(job.payload["cube_id"]))
    wanted = set(job.payload.get("message_ids", []))
    msgs = [
        m
        for m in store.conversations.messages(str(job.payload["conversation_id"]))
        if not wanted or m.id in wanted
    ]
    emb = embedder if embedder is not None and embedder.model_id == cube.embed_model else None
    items = reader.extract(msgs, today=msgs[-1].created_at) if msgs and not base_model else []
    vecs = [emb.embed([item.text])[0] if emb is not None else None for item in items]
    actions: list[str] = []
    with effects():
        for item, vec in zip(items, vecs, strict=True):
            plan = reconciler.plan(cube, item, vec, read_as(item))
            reconciler.apply(
                cube, plan, vec, emb.model_id if emb else "", emb.embed if emb else None
            )
            actions.append(plan.action)
    return None if base_model else actions


def run_pending(
    store: Store,
    engine: ChatEngine,
    embedder: Embedder | None,
    *,
    user_name: str = "the user",
    limit: int = 50,
    lease_s: float | None = None,
) -> RunReport:
    """Claim and run extraction jobs. The model runs first, outside any transaction; then the
    reconciler's writes and the job's ``finish`` commit in one unit of work, so a job is done
    exactly when its memories are saved. A worker that lost its lease (it was too slow and
    another worker claimed the job) commits nothing of it."""
    reader = FineReader(engine, user_name)
    base_model = getattr(engine, "prompt_style", "chat") == "completion"
    skipped = 0
    reconciler = Reconciler(store)
    counts = {"add": 0, "update": 0, "supersede": 0, "noop": 0}
    done = failed = 0
    worker = worker_id()
    for _ in range(limit):
        job = store.jobs.claim(worker, kinds=(EXTRACT.name,), lease_s=lease_s)
        if job is None:
            break
        assert job.lease_token is not None
        try:
            actions = extract_one(
                store,
                job,
                reader,
                reconciler,
                embedder,
                base_model=base_model,
                effects=functools.partial(_finishing, store, job),
            )
            if actions is None:
                skipped += 1
                actions = []
            for a in actions:
                counts[a] += 1
            done += 1
        except LeaseLostError:
            log.warning(
                "job %s (%s): lease lost to another worker; nothing saved", job.id, job.kind
            )
        except Exception as exc:
            log.warning("job %s (%s) failed: %s", job.id, job.kind, type(exc).__name__)
            try:
                store.jobs.fail(job, job.lease_token, f"{type(exc).__name__}: {exc}")
            except LeaseLostError:
                log.warning(
                    "job %s (%s): lease lost before its failure was recorded", job.id, job.kind
                )
            failed += 1
    return RunReport(
        done,
        failed,
        counts["add"],
        counts["update"],
        counts["supersede"],
        counts["noop"],
        extraction_failed=sum(reader.failures.values()),
        failure_kinds=dict(reader.failures),
        rejected=reader.rejected,
        windows=reader.windows,
        skipped_base_model=skipped,
    )
