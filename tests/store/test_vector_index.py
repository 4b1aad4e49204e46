"""The resident vector index's two-step search of large stores, and the post-filter's plan.

The two-step path (Hamming distance of sign codes picks a pool, exact float32 scores rank it)
runs above ``EXACT_MAX`` rows; here the thresholds are lowered so a few thousand real rows in a
real encrypted profile take it.
"""

from __future__ import annotations

import numpy as np
import pytest

from memos_desktop.store import vector_index
from memos_desktop.store.profile import Store
from memos_desktop.store.records import NewMemory, SearchFilters
from memos_desktop.store.search import postfilter_sql
from tests.store.conftest import DIM

N = 3000


def clustered(n: int, seed: int) -> np.ndarray:
    """Unit vectors around 60 topic centres with a shared offset: sentence embeddings share a
    large common component, which is what the codes' centring is for."""
    rng = np.random.default_rng(seed)
    common = 2.0 * rng.standard_normal(DIM).astype(np.float32)
    centres = rng.standard_normal((60, DIM)).astype(np.float32)
    v = common + centres[rng.integers(0, 60, n)] + 0.9 * rng.standard_normal((n, DIM))
    v = v.astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def fill(store: Store, vecs: np.ndarray, start: int = 0) -> None:
    c = store.cubes.list()[0]
    items = [
        NewMemory(text=f"memory {start + i}", type="event" if (start + i) % 4 == 0 else "fact")
        for i in range(len(vecs))
    ]
    store.memories.add_many(c, items, vecs)


@pytest.fixture
def two_step(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Thresholds that send a 3,000-row store down the two-step path (pool of 150 = 5%, the
    share 2,000 of 40,000 has); returns the pool sizes the index used, one per query."""
    monkeypatch.setattr(vector_index, "EXACT_MAX", 1000)
    monkeypatch.setattr(vector_index, "RESCORE_MIN", 150)
    pools: list[int] = []
    real = vector_index.VectorIndex._nearest_codes

    def spy(self, q, idx, n, pool):  # type: ignore[no-untyped-def]
        out = real(self, q, idx, n, pool)
        pools.append(len(out))
        return out

    monkeypatch.setattr(vector_index.VectorIndex, "_nearest_codes", spy)
    return pools


def exact(vecs: np.ndarray, q: np.ndarray, k: int, allowed: np.ndarray | None = None) -> set[int]:
    s = vecs @ (q / np.linalg.norm(q))
    if allowed is not None:
        s = np.where(allowed, s, -np.inf)
    return set(np.argsort(-s)[:k].tolist())


def test_large_store_two_step_search_finds_the_exact_neighbours(
    store: Store, two_step: list[int]
) -> None:
    vecs = clustered(N, 1)
    fill(store, vecs)
    index = store.searcher.index(DIM)
    c = store.cubes.list()[0]
    rowid_at = {
        int(r[0]): i
        for i, r in enumerate(store.db.query("SELECT rowid FROM memory_items ORDER BY rowid"))
    }
    rng = np.random.default_rng(7)
    recall = []
    for j in rng.choice(N, 40, replace=False):
        q = vecs[j] + 0.08 * rng.standard_normal(DIM).astype(np.float32)
        got = index.knn(q, SearchFilters(cube_ids=(c.id,)), 10)
        dists = [d for _, d, _ in got]
        assert dists == sorted(dists)  # ranked by the exact score
        found = {rowid_at[r] for r, _, _ in got}
        recall.append(len(found & exact(vecs, q, 10)) / 10)
    assert len(two_step) == 40 and all(p < N / 5 for p in two_step)  # the pool, not a scan
    assert np.mean(recall) >= 0.95


def test_two_step_search_keeps_the_filters(store: Store, two_step: list[int]) -> None:
    vecs = clustered(N, 2)
    fill(store, vecs)
    index = store.searcher.index(DIM)
    facts = np.array([i % 4 != 0 for i in range(N)])  # 2,250 rows pass: over EXACT_MAX
    kinds = dict(store.db.query("SELECT rowid, type FROM memory_items"))
    q = vecs[8]  # an event: its own row must not come back under a fact filter
    got = index.knn(q, SearchFilters(types=("fact",)), 10)
    assert two_step and len(got) == 10
    assert {kinds[r] for r, _, _ in got} == {"fact"}
    order = {int(r): i for i, r in enumerate(sorted(kinds))}
    found = {order[r] for r, _, _ in got}
    assert len(found & exact(vecs, q, 10, facts)) >= 9


def test_rows_added_after_the_load_are_found(store: Store, two_step: list[int]) -> None:
    vecs = clustered(N, 3)
    fill(store, vecs[:2000])
    index = store.searcher.index(DIM)
    index.refresh()  # loaded and centred at 2,000 rows
    fill(store, vecs[2000:], start=2000)  # read from the change log at the next query
    last = int(store.db.scalar("SELECT max(rowid) FROM memory_items"))
    got = index.knn(vecs[-1], SearchFilters(), 5)
    assert two_step and got[0][0] == last and got[0][1] == pytest.approx(0.0, abs=1e-5)


def test_small_store_scan_is_exact(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under EXACT_MAX (the default thresholds) every row is scored: no code step at all."""
    called: list[int] = []
    monkeypatch.setattr(vector_index.VectorIndex, "_nearest_codes", lambda *a: called.append(1))
    vecs = clustered(500, 4)
    fill(store, vecs)
    got = store.searcher.index(DIM).knn(vecs[9], SearchFilters(), 10)
    assert not called
    order = {
        int(r): i
        for i, (r,) in enumerate(store.db.query("SELECT rowid FROM memory_items ORDER BY rowid"))
    }
    assert {order[r] for r, _, _ in got} == exact(vecs, vecs[9], 10)


def test_post_filter_looks_rows_up_by_rowid(store: Store) -> None:
    """ "rowid IN (...) AND cube_id = ?" must be answered by rowid lookups: walking the cube's
    index instead visits every memory of the profile (8-15 ms at 100k)."""
    c = store.cubes.list()[0]
    fill(store, clustered(50, 5))
    for f in (
        SearchFilters(cube_ids=(c.id,)),
        SearchFilters(cube_ids=(c.id,), statuses=("active",), types=("fact",)),
        SearchFilters(cube_ids=(c.id,), tags=("x",), pinned=False),
    ):
        sql, params = postfilter_sql(3, f)
        plan = " | ".join(
            str(r[3]) for r in store.db.query("EXPLAIN QUERY PLAN " + sql, (1, 2, 3, *params))
        )
        assert "INTEGER PRIMARY KEY (rowid=?)" in plan, plan
        assert "memory_items_hash" not in plan and "SCAN m" not in plan, plan
        rows = store.db.query(sql, (1, 2, 3, *params))
        assert {int(r[0]) for r in rows} <= {1, 2, 3}
    sql, params = postfilter_sql(3, SearchFilters(cube_ids=(c.id,)))
    assert {int(r[0]) for r in store.db.query(sql, (1, 2, 999_999, *params))} == {1, 2}
