"""Recall of the resident index's two-step KNN (sign codes, then exact scores) on real embeddings.

Usage: .venv/bin/python bench/knn_recall.py [--no-write]

Stores above 5,000 rows are searched in two steps (store/vector_index.py): the Hamming distance
of centred sign codes picks a pool of max(2,000, 50 k) rows, and only those are scored exactly.
bench/store.py measures its recall at 100k on synthetic clustered vectors; this measures it on
what a person's store holds: every LoCoMo turn (5,882) embedded by the app's MiniLM, queried by
the 1,986 LoCoMo questions embedded the same way. The store is smaller than the threshold, so the
thresholds are scaled to keep the pool's *share* of the store: 2,000 of 100,000 (2%) is what the
app's pool is at 100k, 2,000 of 25,000 (8%) at 25k (and 20% at 10k); 1% shows the margin.
Recall@k = the share of the exact top k (the full float32 scan) that the two-step search returns.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the app (memos_desktop/cli)

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._profile import minilm_profile
from bench._report import git_rev, machine, write_section
from memos_desktop.store import vector_index
from memos_desktop.store.records import NewMemory, SearchFilters

LOCOMO = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo" / "locomo10.json"
SHARES = (0.08, 0.02, 0.01)
KS = (10, 40)


def load() -> tuple[list[str], list[str]]:
    turns, questions = [], []
    for conv in json.loads(LOCOMO.read_text()):
        for key, val in conv["conversation"].items():
            if key.startswith("session_") and isinstance(val, list):
                turns += [f"{t['speaker']}: {t['text']}" for t in val]
        questions += [str(q["question"]) for q in conv["qa"]]
    return turns, questions


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--cache", default="", help="an .npz to keep the (public) LoCoMo vectors in")
    args = ap.parse_args()
    embedder, store = minilm_profile("memos-knn-")
    turns, questions = load()
    t0 = time.perf_counter()
    if args.cache and Path(args.cache).exists():
        cached = np.load(args.cache)
        tv, qv = cached["turns"], cached["questions"]
    else:
        tv = np.asarray(embedder.embed(turns), dtype=np.float32)
        qv = np.asarray(embedder.embed(questions), dtype=np.float32)
        if args.cache:
            np.savez(args.cache, turns=tv, questions=qv)
    embed_s = time.perf_counter() - t0
    cube = store.cubes.list()[0]
    for i in range(0, len(turns), 1000):
        store.memories.add_many(
            cube, [NewMemory(text=t) for t in turns[i : i + 1000]], tv[i : i + 1000]
        )
    # The exact reference is the index's own float32 matrix (identical texts are stored once,
    # so rows are not one per turn).
    ref = vector_index.VectorIndex(store.db, embedder.dim)
    vector_index.EXACT_MAX = 10**9
    ref.refresh()
    mat, rowids = ref.mat[: ref._n], ref.rowids[: ref._n]
    qn = qv / np.linalg.norm(qv, axis=1, keepdims=True)
    truth = rowids[np.argsort(-(qn @ mat.T), axis=1)[:, : max(KS)]]
    f = SearchFilters(cube_ids=(cube.id,))
    n = int(ref._n)
    rows = []
    for share in SHARES:
        vector_index.EXACT_MAX = 0
        vector_index.RESCORE_MIN = max(1, round(share * n))
        vector_index.RESCORE_FACTOR = 0  # the pool is the share alone, whatever k
        index = vector_index.VectorIndex(store.db, embedder.dim)
        index.refresh()
        res = {}
        for k in KS:
            hit = 0
            for qi in range(len(questions)):
                got = {r for r, _, _ in index.knn(qv[qi], f, k)}
                hit += len(got & set(truth[qi, :k].tolist()))
            res[k] = hit / (k * len(questions))
        rows.append((share, vector_index.RESCORE_MIN, res))
        print(share, res, flush=True)
    store.close()
    lines = [
        "## Two-step KNN recall on real embeddings (`bench/knn_recall.py`)",
        "",
        f"Command: `.venv/bin/python bench/knn_recall.py` (commit {git_rev()})  ",
        f"Machine: {machine()}  ",
        f"Data: {n:,} distinct LoCoMo turns and {len(questions):,} LoCoMo questions, "
        f"embedded by the app's MiniLM-L6 ({embed_s:.0f} s), in an encrypted profile; the "
        "resident index's two-step search with the pool set to a share of the store, "
        "against the exact float32 scan. The app's pool is 2,000 rows (or 50 k): 8% of a "
        "store of 25,000, 2% at 100,000 rows (20% at 10,000).",
        "",
        "| pool share of the store | pool rows here | recall@10 | recall@40 |",
        "|---:|---:|---:|---:|",
    ]
    for share, pool, res in rows:
        lines.append(f"| {share:.0%} | {pool:,} | {res[10]:.3f} | {res[40]:.3f} |")
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("knn_recall", body)


if __name__ == "__main__":
    main()
