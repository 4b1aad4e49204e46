"""A writer process for the crash and concurrency tests (run with ``python -m``).

usage: python -m tests.store.writer_proc PROFILE TAG BATCHES BATCH_SIZE
Prints "ack <batch>" after each committed batch, so the parent knows what was acknowledged.
"""

from __future__ import annotations

import sys

import numpy as np

from memos_desktop.config import Settings, resolve_paths
from memos_desktop.memory.search import HybridSearch
from memos_desktop.store.profile import open_profile
from memos_desktop.store.records import NewMemory, SearchFilters


def main() -> None:
    profile, tag, batches, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    store = open_profile(resolve_paths(), profile, Settings())
    cube = store.cubes.list()[0]
    rng = np.random.default_rng(abs(hash(tag)) % 2**32)
    for b in range(batches):
        items = [NewMemory(text=f"{tag} batch {b} item {i}", tags=(tag,)) for i in range(size)]
        vecs = rng.standard_normal((size, cube.embed_dim)).astype(np.float32)
        store.memories.add_many(cube, items, vecs)
        if b % 5 == 0:  # readers and writers interleave
            HybridSearch(store.searcher, store.memories).search(
                f"{tag} batch", vecs[0], cube.embed_dim, SearchFilters(cube_ids=(cube.id,)), top_k=5
            )
        print(f"ack {b}", flush=True)
    store.close()


if __name__ == "__main__":
    main()
