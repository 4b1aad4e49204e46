"""Retrieval on the evaluation sets written for this app (bench/data/, see its README): things
said in passing in chat vs later requests that need them (preferences.json), and facts that
changed over two years vs questions about now, the past and time periods (changes.json).

Usage: .venv/bin/python bench/retrieval_sets.py [--sets preferences,changes]
       [--split dev|test|all] [--no-write] [--types given|episode] [--no-valid-to]

Robustness options (print only, BENCHMARKS.md keeps the sets as written): ``--types episode``
stores every memory as an episode (no type labels: how much does a ranking lean on them?),
``--no-valid-to`` drops every valid_to (raw chat memories carry none until reconciliation).

Each set and split gets a fresh encrypted profile (BM25's statistics are counted over the whole
profile, so no other set or split may be in it); each person's memories go into their own cube
through `MemosAPI.add` (NewMemory with the set's type, created_at, valid_from, valid_to); each
query is searched in that person's cube, top 10. Variants, on the same ingested data:
- hybrid: `store.settings.search` exactly as a new profile has it (the defaults a user gets);
- BM25 alone / dense alone: `memory.search.retriever_alone` (one retriever's own order: no
  fusion, floor, time, type weights, preference channel or boosts).
Every query has an `asked_at` (the moment it is asked; the set's memories all precede it) and
goes through `MemosAPI.search(..., now=asked_at)`. A diagnostic row also runs plain
`MemosAPI.search` on the real clock.

Dev (persons 1-4) is for tuning; test (persons 5-8) is for reporting. Scores: recall@5/@10
(share of the gold memories found), NDCG@10 (binary gain), MRR (first gold hit).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._ablations import PARTS_OFF
from bench._report import git_rev, machine, write_section
from memos_desktop.api import MemosAPI
from memos_desktop.config import SearchSettings, Settings, resolve_paths
from memos_desktop.engines.loader import load_embedder
from memos_desktop.memory.search import retriever_alone
from memos_desktop.store.profile import Store, create_profile
from memos_desktop.store.records import Cube, NewMemory, SearchHit, Source

DATA = Path(__file__).resolve().parent / "data"
SETS = ("preferences", "changes")
TOP_K = 10
# The three variants every table shows, and diagnostics (not targets) that say where a loss is.
# "BM25 alone" and "dense alone" are one retriever's own order (memory.search.retriever_alone).
VARIANTS: dict[str, Callable[[SearchSettings], SearchSettings]] = {
    "BM25 alone": lambda s: retriever_alone(s, "bm25"),
    "dense alone": lambda s: retriever_alone(s, "dense"),
    "hybrid (default)": lambda s: s,
}
BASELINES = tuple(v for v in VARIANTS if v != "hybrid (default)")
DIAGNOSTICS: dict[str, Callable[[SearchSettings], SearchSettings]] = dict(PARTS_OFF)
REAL_CLOCK = "hybrid (default), MemosAPI.search, real clock"


def ts(s: str | None) -> float | None:
    return None if s is None else dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def ndcg(ranked: list[str], gold: set[str], k: int) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranked[:k]) if d in gold)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(gold), k)))
    return dcg / ideal if ideal else 0.0


def score(ranked: list[str], gold: set[str]) -> dict[str, float]:
    first = next((i for i, d in enumerate(ranked) if d in gold), None)
    return {
        "r5": len(gold & set(ranked[:5])) / len(gold),
        "r10": len(gold & set(ranked[:10])) / len(gold),
        "ndcg10": ndcg(ranked, gold, 10),
        "mrr": 0.0 if first is None else 1.0 / (first + 1),
        "hits": float(len(ranked)),
    }


def mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.mean(r[k] for r in rows) for k in rows[0]} if rows else {}


@contextmanager
def search_settings(store: Store, params: SearchSettings) -> Iterator[None]:
    """The profile's [search] settings replaced for the duration (what a user's config.toml
    would set): the API reads them on every search."""
    old = store.settings
    store.settings = replace(old, search=params)
    try:
        yield
    finally:
        store.settings = old


class Runner:
    def __init__(self, api: MemosAPI, store: Store) -> None:
        self.api = api
        self.store = store

    def search(
        self, cube: Cube, text: str, asked_at: float | None, params: SearchSettings
    ) -> list[SearchHit]:
        with search_settings(self.store, params):
            return self.api.search(text, top_k=TOP_K, cube=cube.id, now=asked_at).hits


def ingest(
    api: MemosAPI, name: str, person: dict[str, Any], *, types: str, valid_to: bool
) -> tuple[Cube, dict[str, str]]:
    """The person's cube, and store item id -> the set's memory id."""
    cube = api.create_cube(f"{name}-{person['id']}")
    items = [
        NewMemory(
            text=m["text"],
            type=m["type"] if types == "given" else "episode",
            source="conversation",
            created_at=ts(m["created_at"]),
            valid_from=ts(m.get("valid_from")),
            valid_to=ts(m.get("valid_to")) if valid_to else None,
            sources=(
                Source(kind="conversation", role="user", ref=m["id"], at=ts(m["created_at"])),
            ),
        )
        for m in person["memories"]
    ]
    results = api.add(items, cube=cube.id)
    if not all(r.created for r in results):
        raise SystemExit(f"{person['id']}: two memories with the same text (one item in store)")
    return cube, {r.item.id: m["id"] for r, m in zip(results, person["memories"], strict=True)}


def fmt(row: dict[str, float]) -> str:
    return " | ".join(f"{row[k]:.3f}" for k in ("r5", "r10", "ndcg10", "mrr")) + (
        f" | {row['hits']:.1f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", default=",".join(SETS), help="comma-separated: " + ", ".join(SETS))
    ap.add_argument("--split", choices=("dev", "test", "all"), default="all")
    ap.add_argument(
        "--grid",
        default="",
        help='extra diagnostic variants, JSON {"name": {"setting": value}} (tune on dev only)',
    )
    ap.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md")
    ap.add_argument(
        "--types",
        choices=("given", "episode"),
        default="given",
        help="episode: store every memory as an episode (print only)",
    )
    ap.add_argument(
        "--no-valid-to", action="store_true", help="add memories without valid_to (print only)"
    )
    args = ap.parse_args()
    robustness = args.types != "given" or args.no_valid_to
    names = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = [s for s in names if s not in SETS]
    if unknown:
        ap.error(f"unknown set(s) {', '.join(unknown)}; choose from {', '.join(SETS)}")
    splits = ("dev", "test") if args.split == "all" else (args.split,)

    home = tempfile.mkdtemp(prefix="memos-retrieval-sets-")
    os.environ["MEMOS_DESKTOP_HOME"] = home
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    paths = resolve_paths()
    embedder = load_embedder(paths, "all-minilm-l6-v2")

    # (set, split, kind, variant) -> per-query scores
    per: dict[tuple[str, str, str, str], list[dict[str, float]]] = {}
    for gname, over in (json.loads(args.grid) if args.grid else {}).items():
        DIAGNOSTICS[gname] = lambda s, over=over: replace(s, **over)
    sizes: dict[str, dict[str, int]] = {}
    kinds: dict[str, list[str]] = {}
    t0 = time.perf_counter()
    for name in names:
        data = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
        kinds[name] = list(data["query_kinds"])
        sizes[name] = {"persons": 0, "memories": 0, "queries": 0}
        for split in splits:
            # A fresh profile per set and split: BM25's statistics (IDF, the common-term cap)
            # are counted over the whole profile, every cube, so nothing of another set or
            # split may be in it.
            store = create_profile(
                paths,
                f"{name}-{split}",
                Settings(),
                method="passphrase",
                passphrase="b",
                embed_model=embedder.model_id,
                embed_dim=embedder.dim,
            )
            store.searcher.resident = True  # as the TUI opens a profile (api/session.py)
            api = MemosAPI(store, embedder)
            runner = Runner(api, store)
            base = store.settings.search
            assert base == SearchSettings(), "a new profile should have the default settings"
            persons = [p for p in data["persons"] if p["split"] == split]
            sizes[name]["persons"] += len(persons)
            sizes[name]["memories"] += sum(len(p["memories"]) for p in persons)
            sizes[name]["queries"] += sum(len(p["queries"]) for p in persons)
            for p in persons:
                cube, to_data = ingest(
                    api, name, p, types=args.types, valid_to=not args.no_valid_to
                )
                for q in p["queries"]:
                    gold = set(q["gold"])
                    asked = ts(q.get("asked_at"))
                    runs = {v: (f(base), asked) for v, f in {**VARIANTS, **DIAGNOSTICS}.items()}
                    runs[REAL_CLOCK] = (base, None)
                    for variant, (params, now) in runs.items():
                        hits = runner.search(cube, q["text"], now, params)
                        s = score([to_data[h.item.id] for h in hits], gold)
                        for key in ((split, q["kind"]), (split, "all"), ("all", q["kind"])):
                            per.setdefault((name, *key, variant), []).append(s)
                        per.setdefault((name, "all", "all", variant), []).append(s)
            store.close()
        print(f"{name}: {sizes[name]}", flush=True)
    elapsed = time.perf_counter() - t0

    shown = (*splits, "all") if len(splits) > 1 else splits
    path = "`MemosAPI.search(..., now=asked_at)`"
    cmd = "`.venv/bin/python bench/retrieval_sets.py" + (
        f" --sets {','.join(names)}" if names != list(SETS) else ""
    )
    cmd += f" --split {args.split}" if args.split != "all" else ""
    cmd += (" --types episode" if args.types != "given" else "") + (
        " --no-valid-to" if args.no_valid_to else ""
    )
    cmd += "`"
    lines = [
        "## Retrieval on this app's own sets (`bench/retrieval_sets.py`)",
        "",
        f"Command: {cmd} (commit {git_rev()})  ",
        f"Machine: {machine()}  ",
        "Data (`bench/data/`, written for this project, described in its README): "
        + "; ".join(
            f"{n}: {s['persons']} persons, {s['memories']} memories, {s['queries']} queries"
            for n, s in sizes.items()
        )
        + f". Ingest and {len(VARIANTS) + len(DIAGNOSTICS) + 1} searches per query took "
        f"{elapsed:.0f} s. A fresh encrypted profile per set and split, one cube per person, "
        "memories added "
        "through `MemosAPI.add` with their type, created_at, valid_from and valid_to; top "
        f"{TOP_K} searched in the person's cube through {path}. **hybrid** = the search "
        "settings of a new profile, unchanged; **BM25 alone** and **dense alone** (MiniLM-L6) = "
        "one retriever's own order (no fusion, floor, time, type weights, preference channel "
        "or boosts). "
        "**dev** = persons 1-4 (tune on these), **test** = persons 5-8 (report these). R@k: "
        "share of a query's gold memories in the top k; NDCG@10 binary; MRR of the first gold; "
        "hits: results returned per query (at most 10; the floor returns fewer).",
        "",
        "| set | split | variant | queries | R@5 | R@10 | NDCG@10 | MRR | hits |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    checks = []
    for name in names:
        for split in shown:
            for v in VARIANTS:
                rows = per[(name, split, "all", v)]
                lines.append(f"| {name} | {split} | {v} | {len(rows)} | {fmt(mean(rows))} |")
            r10 = {v: mean(per[(name, split, "all", v)])["r10"] for v in VARIANTS}
            best = max(BASELINES, key=lambda v: r10[v])
            ok = "yes" if r10["hybrid (default)"] >= r10[best] else "**no**"
            checks.append(
                f"{name} {split}: {ok} ({r10['hybrid (default)']:.3f} vs {best} {r10[best]:.3f})"
            )
    lines += [
        "",
        "Hybrid R@10 >= the better of BM25 alone and dense alone (issue 14's target): "
        + "; ".join(checks),
        "",
        "By query kind, each cell R@5 / R@10 / NDCG@10 / MRR:",
        "",
        "| set | kind | split | queries | " + " | ".join(VARIANTS) + " |",
        "|---|---|---|---:|" + "---|" * len(VARIANTS),
    ]
    for name in names:
        for kind in kinds[name]:
            for split in splits:
                n = len(per.get((name, split, kind, "hybrid (default)"), []))
                if not n:
                    continue
                cells = []
                for v in VARIANTS:
                    m = mean(per[(name, split, kind, v)])
                    cells.append(" / ".join(f"{m[k]:.2f}" for k in ("r5", "r10", "ndcg10", "mrr")))
                lines.append(f"| {name} | {kind} | {split} | {n} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Diagnostics (not targets): the hybrid with one part off at a time, the previous "
        "fusion, and the plain `MemosAPI.search` call with the default settings on the real clock "
        "(recency measured from the day the bench ran, not from when the question is asked).",
        "",
        "| set | split | variant | queries | R@5 | R@10 | NDCG@10 | MRR | hits |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        for split in shown:
            for v in (*DIAGNOSTICS, REAL_CLOCK):
                rows = per[(name, split, "all", v)]
                lines.append(f"| {name} | {split} | {v} | {len(rows)} | {fmt(mean(rows))} |")
    body = "\n".join(lines)
    print(body)
    if robustness:
        print("(robustness run: not written to BENCHMARKS.md)", file=sys.stderr)
    elif not args.no_write:
        write_section("retrieval-sets", body)


if __name__ == "__main__":
    main()
