"""Embedding benchmark: MiniLM conversion time and throughput at several packing budgets.

Run: ``.venv/bin/python bench/embeddings.py`` (``--quick`` for a short run). Writes the
"embeddings" section of BENCHMARKS.md. Throughput is the best of three runs (the machine may be
shared); sentences/s depends on sentence length, so tokens/s is shown too.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._report import machine, write_section  # noqa: E402
from memos_desktop.config import resolve_paths  # noqa: E402
from memos_desktop.engines.bert_gguf import convert  # noqa: E402
from memos_desktop.engines.embeddings import (  # noqa: E402
    LlamaEmbedder,
    ensure_minilm_gguf,
    minilm_source_dir,
)

LOCOMO = ROOT.parent / "shared" / "data" / "locomo" / "locomo10.json"


def short_sentences(n: int) -> list[str]:
    """Memory-like facts of 8-14 tokens, deterministic."""
    rng = random.Random(7)
    who = ["Anna", "My brother", "Sam", "Our neighbour", "Grandma", "The new manager"]
    did = ["likes", "moved to", "is allergic to", "started learning", "works at", "visited"]
    what = [
        "green tea",
        "Lisbon",
        "peanuts",
        "the violin",
        "a small bakery",
        "Kyoto in April",
        "hiking on weekends",
        "a hospital downtown",
    ]
    return [f"{rng.choice(who)} {rng.choice(did)} {rng.choice(what)}." for _ in range(n)]


def locomo_turns(n: int) -> list[str]:
    if not LOCOMO.is_file():
        return []
    data = json.loads(LOCOMO.read_text(encoding="utf-8"))
    out: list[str] = []
    for conv in data:
        for key, turns in conv["conversation"].items():
            if key.startswith("session_") and isinstance(turns, list):
                out.extend(t["text"] for t in turns)
    return out[:n]


def throughput(emb: LlamaEmbedder, texts: list[str], runs: int) -> tuple[float, float, float]:
    """(best sentences/s, median sentences/s, mean tokens per sentence)."""
    emb.embed(texts[:16])  # warm up
    rates = []
    for _ in range(runs):
        t0 = time.perf_counter()
        emb.embed(texts)
        rates.append(len(texts) / (time.perf_counter() - t0))
    n_tok = sum(len(emb.tokenize(t)) for t in texts) / len(texts)
    return max(rates), statistics.median(rates), n_tok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, nargs="+", default=sorted({1, os.cpu_count() or 2}))
    args = ap.parse_args()
    n = 200 if args.quick else 500
    runs = 2 if args.quick else 3

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        convert(minilm_source_dir(), Path(tmp) / "m.gguf", name="bench", f16=True)
        t_convert = time.perf_counter() - t0
        paths = resolve_paths({"MEMOS_DESKTOP_HOME": tmp})
        t0 = time.perf_counter()
        path = ensure_minilm_gguf(paths)
        t_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        ensure_minilm_gguf(paths)
        t_cached = time.perf_counter() - t0

        sets = {"short facts": short_sentences(n)}
        turns = locomo_turns(n)
        if turns:
            sets["LoCoMo turns"] = turns
        rows = []
        for threads in args.threads:
            for budget in (32, 64, 128, 256):
                emb = LlamaEmbedder(
                    path, "all-minilm-l6-v2", batch_tokens=budget, n_threads=threads
                )
                for name, texts in sets.items():
                    best, med, tok = throughput(emb, texts, runs)
                    rows.append((threads, budget, name, best, med, tok))
                    print(
                        f"threads={threads} batch_tokens={budget:<4} {name:<13} best "
                        f"{best:6.0f} sent/s (median {med:6.0f}), {best * tok:6.0f} tok/s, "
                        f"{tok:.1f} tok/sent",
                        flush=True,
                    )
                emb.close()
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    lines = [
        "## Embeddings (all-MiniLM-L6-v2, f16 GGUF, llama.cpp)",
        "",
        f"Machine: {machine()}  ",
        f"Command: `.venv/bin/python bench/embeddings.py{' --quick' if args.quick else ''}`"
        f" ({n} sentences per set, best and median of {runs} runs; load average at the end "
        f"{load:.2f})",
        "",
        f"- Conversion safetensors -> GGUF: {t_convert:.2f} s; first use (convert + numpy "
        f"reference check + hashes): {t_first:.2f} s; later loads (cached; source and GGUF "
        f"sha256 looked up by size and mtime): {t_cached * 1000:.0f} ms",
        "",
        "| threads | batch_tokens | texts | tokens/text | sentences/s (best) | (median) "
        "| tokens/s |",
        "|---:|---:|---|---:|---:|---:|---:|",
    ]
    for threads, budget, name, best, med, tok in rows:
        lines.append(
            f"| {threads} | {budget} | {name} | {tok:.1f} | {best:.0f} | {med:.0f} | "
            f"{best * tok:.0f} |"
        )
    lines += [
        "",
        "Throughput is bound by tokens, so sentences/s falls with sentence length. "
        "`LlamaEmbedder` packs texts into one decode up to `batch_tokens` (default 64, the best "
        "budget measured here) and truncates at 256 tokens, as sentence-transformers does "
        "for this model. It uses half the cores by default: ggml's threads spin at barriers, "
        "and on a busy machine two threads on two cores were measured many times slower "
        "than one.",
    ]
    write_section("embeddings", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
