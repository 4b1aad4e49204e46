"""Consolidation jobs: what the daemon runs while the person is away (and what
``memos-desktop consolidate`` runs on demand).

Design rule: a job either finishes or is put back with its error for a later retry (dead after
``max_attempts``); a failing job never takes memories with it: fine extraction only ever adds,
updates or supersedes through the reconciler, and the raw exchange items stay.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

from memos_desktop.engines.base import ChatEngine, Embedder
from memos_desktop.memory.reader import FineReader
from memos_desktop.memory.reconcile import Reconciler
from memos_desktop.store.profile import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunReport:
    done: int
    failed: int
    added: int
    updated: int
    superseded: int
    unchanged: int


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_pending(
    store: Store,
    engine: ChatEngine,
    embedder: Embedder | None,
    *,
    user_name: str = "the user",
    limit: int = 50,
) -> RunReport:
    reader = FineReader(engine, user_name)
    reconciler = Reconciler(store)
    counts = {"add": 0, "update": 0, "supersede": 0, "noop": 0}
    done = failed = 0
    for _ in range(limit):
        job = store.jobs.claim(worker_id(), kinds=("extract",))
        if job is None:
            break
        try:
            cube = store.cubes.get(str(job.payload["cube_id"]))
            wanted = set(job.payload.get("message_ids", []))
            msgs = [
                m
                for m in store.conversations.messages(str(job.payload["conversation_id"]))
                if not wanted or m.id in wanted
            ]
            if msgs:
                emb = (
                    embedder
                    if embedder is not None and embedder.model_id == cube.embed_model
                    else None
                )
                for item in reader.extract(msgs, today=msgs[-1].created_at):
                    vec = emb.embed([item.text])[0] if emb is not None else None
                    plan = reconciler.plan(cube, item, vec)
                    reconciler.apply(cube, plan, vec, emb.model_id if emb else "")
                    counts[plan.action] += 1
            store.jobs.finish(job.id)
            done += 1
        except Exception as exc:
            log.warning("job %s (%s) failed: %s", job.id, job.kind, type(exc).__name__)
            store.jobs.fail(job.id, f"{type(exc).__name__}: {exc}")
            failed += 1
    return RunReport(
        done, failed, counts["add"], counts["update"], counts["supersede"], counts["noop"]
    )
