"""The preference channel's cost (issue 14): its hits taken from the main KNN scan vs a second,
type-filtered scan every time vs no channel, on the same queries in one process (alternating, so
load from other jobs hits all three alike). Also checks that the first two return the same hits.

Usage: .venv/bin/python bench/preference_channel.py [--sizes 10000,100000] [--queries 200]

Data and queries are bench/store.py's (15% of memories are preferences).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import git_rev, machine
from bench.store import DIM, Data, bench_store
from memos_desktop.memory.search import HybridSearch, SearchParams
from memos_desktop.store.records import NewMemory, SearchFilters


class AlwaysScan(HybridSearch):
    """The channel as it was: a second scan whatever the main list holds."""

    def preference_channel(
        self, vector: Any, dim: int, filters: Any, params: Any, dense: Any = None
    ):  # type: ignore[no-untyped-def]
        return super().preference_channel(vector, dim, filters, params, None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    store = bench_store()
    cube = store.cubes.list()[0]
    data = Data()
    items: list[NewMemory] = []
    vecs: list[np.ndarray] = []
    have = 0
    print(f"commit {git_rev()}; {machine()}")
    print(
        "| memories | path | second scan always p50 ms | from the main scan p50 ms "
        "| no channel p50 ms | same hits |"
    )
    print("|---:|---|---:|---:|---:|---:|")
    for size in (int(s) for s in args.sizes.split(",")):
        while have < size:
            it, v = data.batch(have, min(1000, size - have))
            store.memories.add_many(cube, it, v)
            items += it
            vecs.append(v)
            have += len(it)
        store.db.checkpoint()
        V = np.concatenate(vecs)
        queries = [data.query(items, V) for _ in range(args.queries)]
        f = SearchFilters(cube_ids=(cube.id,))
        ways = {
            "always": (AlwaysScan, None),
            "main": (HybridSearch, None),
            "none": (HybridSearch, SearchParams(preference_slots=0)),
        }
        for path in ("sqlite-vec", "resident"):
            store.searcher.resident = path == "resident"
            if store.searcher.resident:
                store.searcher.index(DIM).refresh()
            lat: dict[str, list[float]] = {k: [] for k in ways}
            same = 0
            for text, q in queries:
                got = {}
                for name, (cls, params) in ways.items():
                    t0 = time.perf_counter()
                    hits = cls(store.searcher, store.memories).search(
                        text, q, DIM, f, top_k=10, params=params
                    )
                    lat[name].append((time.perf_counter() - t0) * 1000)
                    got[name] = [h.item.rowid for h in hits]
                same += got["always"] == got["main"]
            med = {k: statistics.median(v) for k, v in lat.items()}
            print(
                f"| {size:,} | {path} | {med['always']:.1f} | {med['main']:.1f} "
                f"| {med['none']:.1f} | {same}/{len(queries)} |",
                flush=True,
            )
    store.close()


if __name__ == "__main__":
    main()
