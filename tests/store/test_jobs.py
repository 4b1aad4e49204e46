"""The job queue on a real encrypted profile: fenced leases, renewal, dedupe keys that free up,
the kind registry, units of work, and the v4 migration from a v2 database with jobs in it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from memos_desktop.config import Settings, resolve_paths
from memos_desktop.errors import InvalidInputError, LeaseLostError
from memos_desktop.store import keys
from memos_desktop.store.db import Database
from memos_desktop.store.jobs import KINDS, JobKind, JobKinds, JobRepo, register_kind
from memos_desktop.store.migrations import LATEST, current_version, migrate
from memos_desktop.store.profile import Store, open_profile
from memos_desktop.store.records import NewMemory, SearchFilters
from tests.conftest import PASSPHRASE
from tests.store.conftest import vec

register_kind("test.quick", "a test job with a short lease", lease_s=0.6, max_attempts=2)
register_kind("test.slow", "a test job with the default lease")


def other(store: Store) -> Iterator[Store]:
    """A second connection on the same profile: another worker process."""
    s = open_profile(resolve_paths(), store.name, Settings())
    yield s
    s.close()


@pytest.fixture
def worker_b(store: Store) -> Iterator[Store]:
    yield from other(store)


def test_a_lease_expired_worker_cannot_finish_or_fail_a_reclaimed_job(
    store: Store, worker_b: Store
) -> None:
    jid = store.jobs.enqueue("test.quick", {"n": 1})
    assert jid is not None
    a = store.jobs.claim("worker-a", kinds=("test.quick",))
    assert a is not None and a.id == jid and a.lease_token
    assert worker_b.jobs.claim("worker-b") is None  # lease held
    time.sleep(0.7)  # worker A stalls past its lease
    b = worker_b.jobs.claim("worker-b")
    assert b is not None and b.id == jid and b.lease_token != a.lease_token
    assert b.attempts == 2
    before = worker_b.db.query_one("SELECT * FROM jobs WHERE id = ?", (jid,))

    # A's effects and its finish in one unit of work: the finish is refused, the effects roll back.
    cube = store.cubes.list()[0]
    with pytest.raises(LeaseLostError, match="no longer holds its lease"), store.unit_of_work():
        store.memories.add_many(cube, [NewMemory("result of worker A")], [vec(1)])
        store.jobs.finish(a, a.lease_token)
    with pytest.raises(LeaseLostError, match="held by worker-b"):
        store.jobs.fail(a, a.lease_token, "worker A gave up")
    with pytest.raises(LeaseLostError):
        store.jobs.renew(a, a.lease_token, 60)
    assert worker_b.db.query_one("SELECT * FROM jobs WHERE id = ?", (jid,)) == before
    assert store.memories.list(SearchFilters()) == []

    worker_b.jobs.finish(b, b.lease_token)
    assert worker_b.jobs.get(jid).status == "done"
    with pytest.raises(LeaseLostError, match="the job is done"):
        store.jobs.finish(a, a.lease_token)


def test_the_holder_of_an_expired_lease_nobody_reclaimed_can_still_finish(store: Store) -> None:
    store.jobs.enqueue("test.quick", {})
    a = store.jobs.claim("worker-a")
    assert a is not None and a.lease_token
    time.sleep(0.7)
    store.jobs.finish(a, a.lease_token)
    assert store.jobs.counts() == {"done": 1}


def test_renewal_keeps_the_lease(store: Store, worker_b: Store) -> None:
    store.jobs.enqueue("test.slow", {})
    a = store.jobs.claim("worker-a", lease_s=1.0)
    assert a is not None and a.lease_token and a.lease_until is not None
    time.sleep(0.6)
    until = store.jobs.renew(a, a.lease_token, 3.0)
    assert until > a.lease_until + 1.5
    time.sleep(0.6)  # past the first lease
    assert worker_b.jobs.claim("worker-b") is None
    assert store.jobs.get(a.id).locked_by == "worker-a"
    store.jobs.finish(a, a.lease_token)
    assert store.jobs.counts() == {"done": 1}


def test_claim_takes_the_lease_of_the_kind_unless_told(store: Store) -> None:
    store.jobs.enqueue("test.quick", {})
    store.jobs.enqueue("test.slow", {})
    t0 = time.time()
    quick = store.jobs.claim("w", kinds=("test.quick",))
    slow = store.jobs.claim("w", kinds=("test.slow",))
    assert quick is not None and quick.lease_until is not None
    assert slow is not None and slow.lease_until is not None
    assert quick.lease_until - t0 == pytest.approx(0.6, abs=0.2)
    assert slow.lease_until - t0 == pytest.approx(600, abs=5)
    assert quick.max_attempts == 2 and slow.max_attempts == 3  # from the registry


def test_a_dedupe_key_is_reusable_once_its_job_has_ended(store: Store) -> None:
    first = store.jobs.enqueue("test.slow", {"n": 1}, dedupe_key="k")
    assert first is not None
    assert store.jobs.enqueue("test.slow", {"n": 2}, dedupe_key="k") is None  # queued
    job = store.jobs.claim("w")
    assert job is not None and job.lease_token
    assert store.jobs.enqueue("test.slow", {"n": 3}, dedupe_key="k") is None  # running
    store.jobs.fail(job, job.lease_token, "boom", retry_in_s=0)
    assert store.jobs.get(first).status == "queued"
    assert store.jobs.enqueue("test.slow", {"n": 4}, dedupe_key="k") is None  # waiting to retry
    job = store.jobs.claim("w")
    assert job is not None and job.lease_token
    store.jobs.finish(job, job.lease_token)
    second = store.jobs.enqueue("test.slow", {"n": 5}, dedupe_key="k")
    assert second is not None and second != first
    assert store.jobs.get(second).payload == {"n": 5}
    # a dead job frees its key too
    store.jobs.enqueue("test.quick", {}, dedupe_key="q", max_attempts=1)
    job = store.jobs.claim("w", kinds=("test.quick",))
    assert job is not None and job.lease_token
    store.jobs.fail(job, job.lease_token, "boom")
    assert store.jobs.get(job.id).status == "dead"
    assert store.jobs.enqueue("test.quick", {}, dedupe_key="q") is not None


def test_an_unknown_kind_is_refused(store: Store) -> None:
    with pytest.raises(InvalidInputError, match=r"unknown job kind 'nope' \(known kinds: .*test"):
        store.jobs.enqueue("nope", {})
    assert store.jobs.counts() == {}
    repo = JobRepo(store.db, JobKinds())  # a repo with its own, empty registry
    with pytest.raises(InvalidInputError, match="known kinds: none"):
        repo.enqueue("test.slow", {})
    with pytest.raises(InvalidInputError, match="invalid job kind"):
        KINDS.register(JobKind("bad", "no attempts", max_attempts=0))
    assert "bad" not in KINDS


def test_a_job_whose_worker_keeps_dying_ends_dead(store: Store) -> None:
    jid = store.jobs.enqueue("test.quick", {})
    assert jid is not None
    for _ in range(2):  # max_attempts = 2; each worker "dies" holding the lease
        assert store.jobs.claim("doomed") is not None
        time.sleep(0.7)
    assert store.jobs.claim("next") is None
    job = store.jobs.get(jid)
    assert job.status == "dead" and "lease expired 2 times" in job.last_error


def test_a_failed_nested_write_rolls_back_the_whole_unit_of_work(store: Store) -> None:
    cube = store.cubes.list()[0]
    with pytest.raises(RuntimeError), store.unit_of_work():
        store.memories.add_many(cube, [NewMemory("first write")], [vec(1)])
        store.jobs.enqueue("test.slow", {})
        raise RuntimeError("crash between writes")
    assert store.memories.list(SearchFilters()) == [] and store.jobs.counts() == {}
    with store.unit_of_work():
        store.memories.add_many(cube, [NewMemory("first write")], [vec(1)])
        store.jobs.enqueue("test.slow", {})
    assert len(store.memories.list(SearchFilters())) == 1 and store.jobs.counts() == {"queued": 1}


def test_the_resident_index_forgets_rows_of_a_rolled_back_unit_of_work(store: Store) -> None:
    """A unit of work may search its own uncommitted writes (consolidation plans each item
    against the ones before it); after a rollback the index must not keep them, even though
    the next write reuses their rowid and change seq."""
    store.close()
    with open_profile(resolve_paths(), "default", Settings(), resident_index=True) as s:
        cube = s.cubes.list()[0]
        f = SearchFilters(cube_ids=(cube.id,))
        with pytest.raises(RuntimeError), s.unit_of_work():
            s.memories.add_many(cube, [NewMemory("rolled back")], [vec(1)])
            assert s.searcher.knn(vec(1), cube.embed_dim, f, 1)[0][1] < 1e-4  # sees its write
            raise RuntimeError("the job failed")
        kept = s.memories.add_many(cube, [NewMemory("kept")], [vec(2)])[0].item
        hits = s.searcher.knn(vec(2), cube.embed_dim, f, 5)
        assert len(hits) == 1 and hits[0][1] < 1e-4
        assert s.memories.get_many([hits[0][0]])[hits[0][0]].id == kept.id


def test_upgrade_from_v2_keeps_jobs_and_frees_ended_dedupe_keys(store: Store) -> None:
    path = store.db.path
    key = keys.unwrap_key(keys.read_keyfile(store.dir / "key.json"), PASSPHRASE)
    store.close()
    path.unlink()
    # A profile from before the high-water mark (issue 15) has no memos.mark.
    (path.parent / "memos.mark").unlink()
    old = Database(path, key, create=True)
    migrate(old, target=2)
    assert current_version(old) == 2
    now = time.time()
    with old.write() as c:
        c.execute("INSERT INTO meta VALUES ('profile_id', 'p'), ('device_id', 'dev1')")
        c.execute("INSERT INTO users (id, name, created_at) VALUES ('u1', 'me', ?)", (now,))
        c.execute(
            "INSERT INTO cubes (id, name, owner_id, embed_model, embed_dim, created_at, "
            "updated_at) VALUES ('c1', 'personal', 'u1', 'test-embed', 384, ?, ?)",
            (now, now),
        )
        rows = [
            (1, "queued", "k-queued", None, None, 0, ""),
            (2, "running", "k-running", "old-worker", now - 30, 1, ""),
            (3, "done", "k-done", None, None, 1, ""),
            (4, "dead", "k-dead", None, None, 3, "TimeoutError: slow"),
        ]
        for jid, status, dk, by, at, attempts, err in rows:
            c.execute(
                "INSERT INTO jobs (id, kind, payload, status, attempts, run_after, dedupe_key, "
                "locked_by, locked_at, last_error, created_at, updated_at) "
                "VALUES (?, 'test.slow', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (jid, f'{{"n": {jid}}}', status, attempts, now - 60, dk, by, at, err, now, now),
            )
    old.close()
    with open_profile(resolve_paths(), "default", Settings()) as s:
        assert current_version(s.db) == LATEST
        assert s.jobs.counts() == {"queued": 1, "running": 1, "done": 1, "dead": 1}
        assert [s.jobs.get(i).payload for i in (1, 2, 3, 4)] == [{"n": i} for i in (1, 2, 3, 4)]
        assert s.jobs.get(4).last_error == "TimeoutError: slow"
        running = s.jobs.get(2)
        assert running.locked_by == "old-worker" and running.lease_token
        assert running.lease_until == pytest.approx(now - 30 + 600)
        # keys of active jobs still dedupe; keys of ended jobs are free again
        assert s.jobs.enqueue("test.slow", {}, dedupe_key="k-queued") is None
        assert s.jobs.enqueue("test.slow", {}, dedupe_key="k-running") is None
        assert s.jobs.enqueue("test.slow", {}, dedupe_key="k-done") is not None
        assert s.jobs.enqueue("test.slow", {}, dedupe_key="k-dead") is not None
        # the old worker's lease is still honoured: nobody else can claim job 2 yet
        claimed = s.jobs.claim("new-worker")
        assert claimed is not None and claimed.id == 1
