"""Benchmark of the OpenAI-compatible engine: time to first token and generation speed through
a local server (``python -m llama_cpp.server``, a subprocess on 127.0.0.1) against the same GGUF
in this process (``LlamaCppEngine``), same prompt, threads and sampling.

- Cold: each run's prompt starts with a different line, so neither side reuses a cached prefix
  (the whole ~600-token prompt is prefilled).
- Warm: the same prompt again; both reuse the common prefix of their own KV cache. (In-process,
  activation memory goes further: a saved prefix state restored from the encrypted store, see
  the engines section; a server model cannot do that.)

The model is the packaged Gemma 3 270M (chat format "gemma"; all text in the user turn, since
that format has no system role). Medians of ``--runs`` runs. Run:
``python bench/openai_engine.py [--runs 5] [--threads 2]``; writes the "openai_engine" section
of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._report import git_rev, machine, write_section  # noqa: E402


def prompt(run: int, words: int = 330) -> str:
    facts = " ".join(
        f"On day {i} the user visited town {i * 7} and liked dish {i * 3}." for i in range(40)
    )
    body = " ".join(facts.split()[:words])
    return f"Run {run}. Notes about the user: {body}\n\nWhat did the user like on day 12?"


def ttft(engine: Any, text: str, max_tokens: int) -> tuple[float, float, int]:
    from memos_desktop.engines.base import ChatMessage, SamplingParams

    stats = None
    for chunk in engine.chat_stream(
        [ChatMessage("user", text)], SamplingParams.greedy(max_tokens=max_tokens)
    ):
        stats = chunk.stats or stats
    assert stats is not None
    return stats.ttft_s, stats.tokens_per_s, stats.prompt_tokens


def measure(engine: Any, runs: int) -> dict[str, float]:
    ttft(engine, prompt(-1), 4)  # warm-up: first-call allocations on both sides
    cold = [ttft(engine, prompt(i), 32) for i in range(runs)]
    warm = [ttft(engine, prompt(0), 32) for _ in range(runs)]
    return {
        "cold_ttft": statistics.median(c[0] for c in cold),
        "warm_ttft": statistics.median(w[0] for w in warm),
        "tok_s": statistics.median(c[1] for c in cold),
        "prompt_tokens": cold[0][2],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    from memos_desktop.config import OpenAISettings
    from memos_desktop.engines.llamacpp import LlamaCppEngine, LlamaCppSettings
    from memos_desktop.engines.openai_compat import OpenAICompatEngine
    from tests.fixtures.openai_server import serve
    from tests.fixtures.tiny_model import packaged_gemma

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        gguf = packaged_gemma(d)
        cfg = LlamaCppSettings(
            n_ctx=2048,
            n_threads=args.threads,
            n_threads_batch=args.threads,
            chat_format="gemma",
            prompt_style="chat",
        )
        local = LlamaCppEngine(gguf, cfg, sha_cache_file=d / "sha.json")
        try:
            inproc = measure(local, args.runs)
        finally:
            local.close()
        with serve(
            gguf,
            d / "server.log",
            n_ctx=2048,
            threads=args.threads,
            chat_format="gemma",
            embedding=False,  # as the in-process engine: a chat context only
        ) as server:
            t0 = time.perf_counter()
            remote = OpenAICompatEngine(
                f"openai:{server.model}",
                OpenAISettings(base_url=server.base_url, n_ctx=2048),
            )
            connect_s = time.perf_counter() - t0
            try:
                served = measure(remote, args.runs)
            finally:
                remote.close()

    rows = [
        ("in-process (llama.cpp)", inproc),
        ("llama_cpp.server on 127.0.0.1", served),
    ]
    lines = [
        "## OpenAI-compatible engine: through a local server vs in-process "
        "(`bench/openai_engine.py`)",
        "",
        f"Machine: {machine()}; commit {git_rev()}. Command: "
        f"`python bench/openai_engine.py --runs {args.runs} --threads {args.threads}`. "
        "Packaged Gemma 3 270M (Q4_K_M), chat format gemma, greedy, 32 new tokens, "
        f"{args.threads} threads on both sides; medians of {args.runs} runs. Prompt tokens as "
        f"each side counts them: {inproc['prompt_tokens']} in-process (exact), "
        f"{served['prompt_tokens']} through the server (the server's own count).",
        "",
        "| where the model runs | TTFT cold (ms) | TTFT warm prefix (ms) | generation tok/s |",
        "|---|---:|---:|---:|",
    ]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['cold_ttft'] * 1000:.0f} | {r['warm_ttft'] * 1000:.0f} "
            f"| {r['tok_s']:.1f} |"
        )
    lines += [
        "",
        f"Opening the server engine (one `/v1/models` request) took {connect_s * 1000:.0f} ms. "
        "Cold: a new first line each run, so the whole prompt is prefilled; warm: the same "
        "prompt again (both sides reuse their cached prefix). The server adds HTTP, JSON and "
        "SSE per token on top of the same llama.cpp work; activation memory (a saved prefix "
        "state restored from the store) exists only in-process. The machine is shared (2 "
        "cores, other jobs running): compare the rows, not the absolute figures.",
    ]
    body = "\n".join(lines)
    print(body)
    write_section("openai_engine", body)


if __name__ == "__main__":
    main()
