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
    what = ["green tea", "Lisbon", "peanuts", "the violin", "a small bakery", "Kyoto in April",
            "hiking on weekends", "a hospital downtown"]
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
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    n = 300 if args.quick else 1000
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
        for budget in (32, 64, 128, 256, 512):
            emb = LlamaEmbedder(path, "all-minilm-l6-v2", batch_tokens=budget,
                                n_threads=args.threads)
            for name, texts in sets.items():
                best, med, tok = throughput(emb, texts, runs)
                rows.append((budget, name, best, med, tok))
                print(f"batch_tokens={budget:<4} {name:<13} best {best:6.0f} sent/s "
                      f"(median {med:6.0f}), {best * tok:6.0f} tok/s, {tok:.1f} tok/sent",
                      flush=True)
            emb.close()

    lines = [
        "## Embeddings (all-MiniLM-L6-v2, f16 GGUF, llama.cpp)",
        "",
        f"Machine: {machine()}  ",
        f"Command: `.venv/bin/python bench/embeddings.py{' --quick' if args.quick else ''}`"
        f" ({args.threads} threads, {n} sentences per set, best and median of {runs} runs)",
        "",
        f"- Conversion safetensors -> GGUF: {t_convert:.2f} s; first use (convert + numpy "
        f"reference check + hashes): {t_first:.2f} s; later starts (cached, hash-checked): "
        f"{t_cached * 1000:.0f} ms",
        "",
        "| batch_tokens | texts | tokens/text | sentences/s (best) | (median) | tokens/s |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for budget, name, best, med, tok in rows:
        lines.append(f"| {budget} | {name} | {tok:.1f} | {best:.0f} | {med:.0f} | "
                     f"{best * tok:.0f} |")
    lines += [
        "",
        "Throughput is bound by tokens (about the same tokens/s at every budget), so "
        "sentences/s falls with sentence length. `LlamaEmbedder` packs texts into one decode "
        "up to `batch_tokens` (default 256: a whole 256-token text fits, which is the "
        "truncation length sentence-transformers uses for this model).",
    ]
    write_section("embeddings", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
