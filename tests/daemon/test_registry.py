"""The handler registry on a real profile, in process: any registered kind runs by name, a
periodic job queues its next run in the unit of work that finishes it, a failing handler's
job is put back with its error and nothing of it commits, and the report reads as words."""

from __future__ import annotations

import time
from typing import Any

import pytest

from memos_desktop.api.presence import describe, status_line
from memos_desktop.config import Settings, resolve_paths
from memos_desktop.memory.handlers import (
    JobContext,
    register_handler,
    register_periodic,
)
from memos_desktop.store.jobs import Job
from memos_desktop.store.records import NewMemory, SearchFilters

calls: list[str] = []


def tick(ctx: JobContext, job: Job) -> dict[str, int]:
    calls.append("tick")
    return {"ticks": 1}


def broken(ctx: JobContext, job: Job) -> dict[str, int]:
    cube = ctx.store.cubes.list()[0]
    with ctx.effects():
        ctx.store.memories.add_many(cube, [NewMemory("half-done work")], None)
        raise RuntimeError("the handler broke half way")


register_periodic("test.tick", 3600.0, tick)
register_handler("test.broken", broken, max_attempts=2)


@pytest.fixture
def api(embedder: Any) -> Any:
    from memos_desktop.api import open_api
    from tests.conftest import new_profile

    new_profile(embedder).close()
    a = open_api(resolve_paths(), Settings(), embedder_factory=lambda: embedder)
    yield a
    a.close()


def test_a_periodic_job_runs_and_queues_its_next_run(api: Any) -> None:
    assert api.queue_periodic_jobs() >= 1
    assert api.queue_periodic_jobs() == 0  # one waiting run each (dedupe keys)
    out = api.run_next_job("w", kinds=("test.tick",))
    assert out is not None and out.status == "done" and out.counts == {"ticks": 1}
    assert calls == ["tick"]
    nxt = api.store.db.query_one(
        "SELECT status, run_after FROM jobs WHERE kind = 'test.tick' AND status = 'queued'"
    )
    assert nxt is not None and nxt[1] > time.time() + 3500
    assert api.run_next_job("w", kinds=("test.tick",)) is None  # not due yet


def test_a_failing_handler_commits_nothing_and_is_retried(api: Any) -> None:
    jid = api.store.jobs.enqueue("test.broken", {})
    out = api.run_next_job("w", kinds=("test.broken",))
    assert out.status == "failed" and out.error == "RuntimeError"
    job = api.store.jobs.get(jid)
    assert job.status == "queued" and "broke half way" in job.last_error
    f = SearchFilters(statuses=("active", "archived", "deleted"))
    assert all(m.text != "half-done work" for m in api.store.memories.list(f))


def test_the_report_reads_as_words() -> None:
    assert (
        describe({"summarised sessions": 2, "merged duplicates": 3, "queued maintenance jobs": 5})
        == "merged 3 duplicates, summarised 2 sessions"
    )
    assert describe({"archived stale": 1}) == "archived 1 stale memory"
    st = {
        "running": True,
        "state": "idle",
        "last": {"summary": "merged 3 duplicates", "at": 1000.0},
        "queue": {"queued": 4, "running": 0},
    }
    assert status_line(st, now=1000.0 + 300) == "idle · merged 3 duplicates, 5 min ago, 4 queued"
    assert status_line({"running": False, "queue": {"queued": 2}}) == "off, 2 queued"
