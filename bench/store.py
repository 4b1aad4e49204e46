"""Store benchmark: batch add throughput, hybrid search latency and DB size at 1k/10k/100k.

Usage: .venv/bin/python bench/store.py [--sizes 1000,10000,100000] [--queries 200]

Data: texts are real LoCoMo conversation turns (../shared/data/locomo) with a per-item suffix so
every text is distinct; vectors are 384-dim, drawn around 300 random topic centres (a stand-in
for sentence embeddings, which cluster the same way; random isotropic vectors would be kinder to
nothing and crueller to pruning). The query is 3-4 words of a stored item plus that item's
vector with noise, so both retrievers have something to find. Search is the full hybrid path
(FTS5 BM25 + KNN + fusion + item fetch + de-duplication), query vector given.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the app (memos_desktop/cli)

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import git_rev, machine, write_section
from memos_desktop.config import Settings, resolve_paths
from memos_desktop.memory.search import HybridSearch
from memos_desktop.store.profile import Store, create_profile
from memos_desktop.store.records import NewMemory, SearchFilters
from memos_desktop.store.search import STOPWORDS
from memos_desktop.store.vector_index import EXACT_MAX

DIM = 384
LOCOMO = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo" / "locomo10.json"
TYPES = ["fact"] * 10 + ["preference"] * 3 + ["event"] * 4 + ["episode"] * 3
TAGS = [f"topic{i}" for i in range(20)]


def corpus() -> list[str]:
    if not LOCOMO.exists():
        return [f"memory about subject {i} and its details" for i in range(5000)]
    texts = []
    for conv in json.loads(LOCOMO.read_text()):
        c = conv["conversation"]
        for k, turns in c.items():
            if k.startswith("session_") and isinstance(turns, list):
                texts += [f"{t['speaker']}: {t['text']}" for t in turns]
    return texts


class Data:
    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.texts = corpus()
        self.centres = self.rng.standard_normal((300, DIM)).astype(np.float32)

    def batch(self, start: int, n: int) -> tuple[list[NewMemory], np.ndarray]:
        idx = np.arange(start, start + n)
        topics = self.rng.integers(0, len(self.centres), n)
        vecs = self.centres[topics] + 0.9 * self.rng.standard_normal((n, DIM)).astype(np.float32)
        items = [
            NewMemory(
                text=f"{self.texts[i % len(self.texts)]} (note {i})",
                type=TYPES[i % len(TYPES)],  # type: ignore[arg-type]
                tags=(TAGS[i % len(TAGS)],),
                importance=float(self.rng.random()),
            )
            for i in idx
        ]
        return items, vecs

    def query(self, items: list[NewMemory], vecs: np.ndarray) -> tuple[str, np.ndarray]:
        j = int(self.rng.integers(0, len(items)))
        words = [
            w
            # the speaker's turn, without the " (note N)" added to make every text distinct
            # (a word in every memory, which no real query holds)
            for w in re.findall(
                r"\w+", items[j].text.split(":", 1)[-1].rsplit(" (note ", 1)[0].lower()
            )
            if w not in STOPWORDS and not w.isdigit()
        ]
        k = min(len(words), int(self.rng.integers(3, 5)))
        pick = list(self.rng.choice(words, size=k, replace=False)) if words else ["note"]
        q = vecs[j] + 0.5 * self.rng.standard_normal(DIM).astype(np.float32)
        return " ".join(pick), q


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def bench_store() -> Store:
    """A fresh passphrase profile in a temporary home, for the synthetic 384-dim vectors."""
    os.environ["MEMOS_DESKTOP_HOME"] = tempfile.mkdtemp(prefix="memos-bench-")
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    return create_profile(
        resolve_paths(),
        "bench",
        Settings(),
        method="passphrase",
        passphrase="bench",
        embed_model="synthetic-384",
        embed_dim=DIM,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    store = bench_store()
    cube = store.cubes.list()[0]
    data = Data()
    all_items: list[NewMemory] = []
    all_vecs: list[np.ndarray] = []
    rows = []
    have = 0
    for size in sizes:
        add_times = []
        t_total = 0.0
        while have < size:
            n = min(1000, size - have)
            items, vecs = data.batch(have, n)
            t0 = time.perf_counter()
            store.memories.add_many(cube, items, vecs)
            dt = time.perf_counter() - t0
            t_total += dt
            add_times.append(n / dt)
            all_items += items
            all_vecs.append(vecs)
            have += n
        V = np.concatenate(all_vecs)
        added = size - (rows[-1]["n"] if rows else 0)
        store.db.checkpoint()
        size_bytes = store.size_bytes()
        queries = [data.query(all_items, V) for _ in range(args.queries)]
        base = SearchFilters(cube_ids=(cube.id,))
        filt = SearchFilters(cube_ids=(cube.id,), types=("event",), tags=(TAGS[3],))
        res: dict[str, float] = {}
        t0 = time.perf_counter()
        store.searcher.index(DIM).refresh()
        index_load = time.perf_counter() - t0
        for path in ("sqlite-vec", "resident"):
            store.searcher.resident = path == "resident"
            for label, f in (("unfiltered", base), ("filtered", filt)):
                lat = []
                for text, q in queries:
                    t0 = time.perf_counter()
                    HybridSearch(store.searcher, store.memories).search(text, q, DIM, f, top_k=10)
                    lat.append((time.perf_counter() - t0) * 1000)
                res[f"{path}/{label}/p50"] = statistics.median(lat)
                res[f"{path}/{label}/p95"] = pct(lat, 95)
        # recall of the resident KNN (two steps above EXACT_MAX rows) vs the exact scan
        index = store.searcher.index(DIM)
        live = index.rowids[: index._n]
        hit = 0
        for _, q in queries:
            got = {r for r, _, _ in index.knn(q, base, 40)}
            s = index.mat[: index._n] @ (q / np.linalg.norm(q))
            hit += len(got & set(live[np.argsort(-s)[:40]].tolist()))
        res["knn_recall40"] = hit / (40 * len(queries))
        rows.append(
            {
                "n": size,
                "add_per_s": added / t_total if t_total else 0.0,
                "bytes_per_item": size_bytes / size,
                "index_load_s": index_load,
                **res,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    store.close()

    lines = [
        "## Store (`bench/store.py`)",
        "",
        f"Command: `.venv/bin/python bench/store.py --sizes {args.sizes} --queries {args.queries}`"
        f" (commit {git_rev()})  ",
        f"Machine: {machine()}  ",
        "Data: LoCoMo turns as text, 384-dim clustered synthetic vectors, types/tags mixed; "
        "batches of 1,000 per transaction (each add also writes FTS5, vec0, history and the "
        "change log); encrypted DB (ChaCha20-Poly1305), WAL, synchronous=FULL.  ",
        "Search: full hybrid path, top 10, query vector given; *filtered* = type `event` + one "
        "tag (~2.5% of items). *sqlite-vec* = KNN in vec0 (one-shot CLI path); *resident* = "
        "the in-RAM index of long-lived processes (TUI, daemon, MCP server): exact up to "
        f"{EXACT_MAX:,} rows, above in two steps (sign codes pick a pool, exact scores rank it). "
        "KNN recall@40 = the share of the exact scan's top 40 that the resident KNN returns "
        "(its candidate depth for a top-10 search). One BLAS thread, as the app.",
        "",
        "| memories | batch add /s | DB bytes/memory | index load s | sqlite-vec p50 / p95 ms "
        "| sqlite-vec filtered p50 / p95 | resident p50 / p95 ms | resident filtered p50 / p95 "
        "| resident KNN recall@40 |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']:,} | {r['add_per_s']:,.0f} | {r['bytes_per_item']:,.0f} "
            f"| {r['index_load_s']:.2f} "
            f"| {r['sqlite-vec/unfiltered/p50']:.1f} / {r['sqlite-vec/unfiltered/p95']:.1f} "
            f"| {r['sqlite-vec/filtered/p50']:.1f} / {r['sqlite-vec/filtered/p95']:.1f} "
            f"| {r['resident/unfiltered/p50']:.1f} / {r['resident/unfiltered/p95']:.1f} "
            f"| {r['resident/filtered/p50']:.1f} / {r['resident/filtered/p95']:.1f} "
            f"| {r['knn_recall40']:.3f} |"
        )
    lines += ["", f"Peak RSS of the benchmark process: {rss:,.0f} MiB."]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("store", body)


if __name__ == "__main__":
    main()
