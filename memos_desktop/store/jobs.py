"""The durable job queue the daemon drains, and the registry of job kinds.

Design rules:
- A claim is a lease: it returns a random ``lease_token`` and an expiry. ``finish``, ``fail`` and
  ``renew`` succeed only with the current token (fencing): a worker whose lease expired and whose
  job was claimed again by another worker gets :class:`LeaseLostError` and changes nothing. An
  expired lease that nobody reclaimed still belongs to its holder (nobody else ran the job).
- Run a job's effects and its ``finish`` in one ``Store.unit_of_work()``: if the lease was lost,
  ``finish`` raises inside the transaction and the effects roll back with it.
- ``dedupe_key`` is unique among active jobs only (queued or running): once a job is done or
  dead, the same key can be queued again.
- Every kind is registered (name, description, default lease, max attempts) before it is
  queued; ``enqueue`` refuses an unknown kind. The memory layer registers its kinds on import.
- A job whose lease expired ``max_attempts`` times (its worker keeps dying) is marked dead when
  it would be claimed again, instead of being retried forever.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from memos_desktop.errors import InvalidInputError, LeaseLostError, NotFoundError
from memos_desktop.store.db import Database

DEFAULT_LEASE_S = 600.0
DEFAULT_MAX_ATTEMPTS = 3
ACTIVE_STATUSES = ("queued", "running")


@dataclass(frozen=True)
class JobKind:
    name: str
    description: str
    lease_s: float = DEFAULT_LEASE_S
    max_attempts: int = DEFAULT_MAX_ATTEMPTS


class JobKinds:
    """Name -> :class:`JobKind`. Registering the same name again replaces its definition."""

    def __init__(self) -> None:
        self._kinds: dict[str, JobKind] = {}
        self._lock = threading.Lock()

    def register(self, kind: JobKind) -> JobKind:
        if not kind.name or kind.lease_s <= 0 or kind.max_attempts < 1:
            raise InvalidInputError(
                f"invalid job kind {kind!r}: it needs a name, a positive lease "
                "and at least one attempt"
            )
        with self._lock:
            self._kinds[kind.name] = kind
        return kind

    def get(self, name: str) -> JobKind:
        kind = self._kinds.get(name)
        if kind is None:
            known = ", ".join(sorted(self._kinds)) or "none"
            raise InvalidInputError(
                f"unknown job kind {name!r} (known kinds: {known})",
                hint="register the kind (store.jobs.register_kind) before queueing it",
            )
        return kind

    def find(self, name: str) -> JobKind | None:
        return self._kinds.get(name)

    def names(self) -> list[str]:
        return sorted(self._kinds)

    def __contains__(self, name: object) -> bool:
        return name in self._kinds


# The kinds this process knows; the memory layer registers into it (memory/consolidate.py).
KINDS = JobKinds()


def register_kind(
    name: str,
    description: str,
    *,
    lease_s: float = DEFAULT_LEASE_S,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> JobKind:
    return KINDS.register(JobKind(name, description, lease_s, max_attempts))


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    status: str
    priority: int
    attempts: int
    max_attempts: int
    run_after: float
    last_error: str
    locked_by: str | None = None
    lease_token: str | None = None
    lease_until: float | None = None


_COLS = (
    "id, kind, payload, status, priority, attempts, max_attempts, run_after, last_error, "
    "locked_by, lease_token, lease_until"
)


def _job(r: Sequence[Any]) -> Job:
    return Job(
        int(r[0]), r[1], json.loads(r[2]), r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11]
    )


def _id(job: Job | int) -> int:
    return job.id if isinstance(job, Job) else int(job)


class JobRepo:
    """A durable queue: jobs survive restarts; a claimed job whose worker died is retried."""

    def __init__(self, db: Database, kinds: JobKinds = KINDS) -> None:
        self.db = db
        self.kinds = kinds

    def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        priority: int = 0,
        run_after: float | None = None,
        dedupe_key: str | None = None,
        max_attempts: int | None = None,
    ) -> int | None:
        """Queue a job; None when an active job (queued or running) has the same dedupe key."""
        k = self.kinds.get(kind)
        now = time.time()
        with self.db.write() as w:
            w.execute(
                "INSERT OR IGNORE INTO jobs (kind, payload, priority, run_after, dedupe_key, "
                "max_attempts, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    kind,
                    json.dumps(payload),
                    priority,
                    run_after or now,
                    dedupe_key,
                    k.max_attempts if max_attempts is None else max_attempts,
                    now,
                    now,
                ),
            )
            if w.changes() == 0:
                return None
            return int(w.last_insert_rowid())

    def claim(
        self, worker: str, kinds: Sequence[str] = (), lease_s: float | None = None
    ) -> Job | None:
        """Lease the next ready job: queued, or running with an expired lease. The lease lasts
        ``lease_s`` or the kind's default; the returned job carries the token."""
        kind_sql = f"AND kind IN ({','.join('?' * len(kinds))})" if kinds else ""
        with self.db.write() as w:
            while True:
                now = time.time()
                r = self.db.query_one(
                    f"SELECT {_COLS} FROM jobs WHERE run_after <= ? AND (status = 'queued' OR "
                    f"(status = 'running' AND coalesce(lease_until, 0) < ?)) {kind_sql} "
                    "ORDER BY priority DESC, run_after, id LIMIT 1",
                    (now, now, *kinds),
                )
                if r is None:
                    return None
                job = _job(r)
                if job.status == "running" and job.attempts >= job.max_attempts:
                    # Its worker died with it max_attempts times: do not hand it out again.
                    w.execute(
                        "UPDATE jobs SET status = 'dead', locked_by = NULL, lease_token = NULL, "
                        "lease_until = NULL, updated_at = ?, last_error = ? WHERE id = ?",
                        (
                            now,
                            f"lease expired {job.attempts} times (the worker stopped "
                            f"without finishing); last worker {job.locked_by}",
                            job.id,
                        ),
                    )
                    continue
                found = self.kinds.find(job.kind)
                lease = lease_s if lease_s is not None else (found.lease_s if found else 0.0)
                lease = lease if lease > 0 else DEFAULT_LEASE_S
                token = uuid.uuid4().hex
                w.execute(
                    "UPDATE jobs SET status = 'running', locked_by = ?, locked_at = ?, "
                    "lease_token = ?, lease_until = ?, attempts = attempts + 1, updated_at = ? "
                    "WHERE id = ?",
                    (worker, now, token, now + lease, now, job.id),
                )
                return Job(
                    job.id,
                    job.kind,
                    job.payload,
                    "running",
                    job.priority,
                    job.attempts + 1,
                    job.max_attempts,
                    job.run_after,
                    job.last_error,
                    worker,
                    token,
                    now + lease,
                )

    def _fenced(self, w: Any, job: Job | int, token: str, what: str) -> None:
        if w.changes() == 1:
            return
        jid = _id(job)
        row = self.db.query_one("SELECT status, locked_by FROM jobs WHERE id = ?", (jid,))
        if row is None:
            raise NotFoundError(f"no job {jid}")
        raise LeaseLostError(
            f"cannot {what} job {jid}: this worker no longer holds its lease "
            f"(the job is {row[0]}" + (f", held by {row[1]})" if row[1] else ")"),
            hint="its lease expired and it was claimed again; this worker's result is dropped",
        )

    def finish(self, job: Job | int, token: str) -> None:
        """Mark done, only for the lease holder (raises :class:`LeaseLostError` otherwise)."""
        with self.db.write() as w:
            w.execute(
                "UPDATE jobs SET status = 'done', updated_at = ?, locked_by = NULL, "
                "lease_token = NULL, lease_until = NULL "
                "WHERE id = ? AND status = 'running' AND lease_token = ?",
                (time.time(), _id(job), token),
            )
            self._fenced(w, job, token, "finish")

    def fail(self, job: Job | int, token: str, error: str, retry_in_s: float = 30.0) -> None:
        """Put back for a retry (dead after max_attempts), only for the lease holder."""
        now = time.time()
        with self.db.write() as w:
            w.execute(
                "UPDATE jobs SET status = CASE WHEN attempts >= max_attempts THEN 'dead' "
                "ELSE 'queued' END, last_error = ?, run_after = ?, updated_at = ?, "
                "locked_by = NULL, lease_token = NULL, lease_until = NULL "
                "WHERE id = ? AND status = 'running' AND lease_token = ?",
                (error[:2000], now + retry_in_s, now, _id(job), token),
            )
            self._fenced(w, job, token, "fail")

    def release(self, job: Job | int, token: str) -> None:
        """Put a claimed job back untouched, its attempt not counted: its worker was asked to
        stop (SIGTERM) before the job's effects committed. Only the lease holder can."""
        with self.db.write() as w:
            w.execute(
                "UPDATE jobs SET status = 'queued', attempts = max(attempts - 1, 0), "
                "updated_at = ?, locked_by = NULL, lease_token = NULL, lease_until = NULL "
                "WHERE id = ? AND status = 'running' AND lease_token = ?",
                (time.time(), _id(job), token),
            )
            self._fenced(w, job, token, "release")

    def renew(self, job: Job | int, token: str, lease_s: float | None = None) -> float:
        """Extend the lease to ``lease_s`` (or the kind's default) from now; returns the new
        expiry. Only the lease holder can renew."""
        jid = _id(job)
        with self.db.write() as w:
            kind = self.db.scalar("SELECT kind FROM jobs WHERE id = ?", (jid,))
            found = self.kinds.find(str(kind)) if kind is not None else None
            lease = lease_s if lease_s is not None else (found.lease_s if found else 0.0)
            until = time.time() + (lease if lease > 0 else DEFAULT_LEASE_S)
            w.execute(
                "UPDATE jobs SET lease_until = ?, updated_at = ? "
                "WHERE id = ? AND status = 'running' AND lease_token = ?",
                (until, time.time(), jid, token),
            )
            self._fenced(w, job, token, "renew")
        return until

    def drop_queued(self, dedupe_key: str) -> int:
        """Delete the job with this dedupe key if no worker has claimed it yet (a running job
        is left to finish). Returns how many were deleted (0 or 1)."""
        with self.db.write() as w:
            w.execute("DELETE FROM jobs WHERE dedupe_key = ? AND status = 'queued'", (dedupe_key,))
            return int(w.changes())

    def get(self, job_id: int) -> Job:
        r = self.db.query_one(f"SELECT {_COLS} FROM jobs WHERE id = ?", (job_id,))
        if r is None:
            raise NotFoundError(f"no job {job_id}")
        return _job(r)

    def counts(self) -> dict[str, int]:
        return {
            str(s): int(n)
            for s, n in self.db.query("SELECT status, count(*) FROM jobs GROUP BY status")
        }
