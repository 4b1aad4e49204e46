"""Benchmark of the llama.cpp chat engine: speed, memory, activation memory and adapter switching.

Measures, for the default chat model (packaged Gemma 3 270M) and the tiny test model:
- load time, resident memory after load, prompt-eval and generation tokens/s;
- time to first token (TTFT) for prefixes of ~600 and ~2,000 tokens: cold (prefill) against
  restored from a KV state kept in the encrypted store (read + decrypt + restore + first token),
  in the same run, with a check that both give the same greedy answer;
- LoRA adapter switch time (no model reload).

Each model is measured in its own subprocess so its RSS is not mixed with another's. All state
goes to a temporary MEMOS_DESKTOP_HOME. Run: ``python bench/engines.py [--threads N]``.

``--builds`` instead compares llama.cpp builds on this machine: the portable default against
``LLAMA_NATIVE=1`` (-march=native), prompt eval and generation tok/s for the packaged Gemma,
each build's wheel installed into a temporary folder that shadows the venv's llama_cpp. A build
not yet in the wheelhouse is compiled first (``make llama-wheel``, ~4 min each).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._report import machine, write_section  # noqa: E402


def rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _persona(engine: Any, n_tokens: int) -> str:
    """Persona + core memories text of about ``n_tokens`` tokens."""
    facts = ["You are a friendly assistant with a long memory. What you know about the user:"]
    i = 0
    while engine.count_tokens(" ".join(facts)) < n_tokens - 12:
        facts.append(
            f"Fact {i}: on day {i} the user visited city number {i * 7} and liked "
            f"dish {i * 3} there."
        )
        i += 1
    return " ".join(facts)


def measure(model: str, path: Path, threads: int, home: Path) -> dict[str, Any]:
    os.environ["MEMOS_DESKTOP_HOME"] = str(home)
    os.environ["MEMOS_DESKTOP_PASSPHRASE"] = "bench"
    from memos_desktop.config import Settings, resolve_paths
    from memos_desktop.engines.base import ChatMessage, KVState, SamplingParams
    from memos_desktop.engines.llamacpp import LlamaCppEngine, LlamaCppSettings
    from memos_desktop.store.activation import ActivationRepo
    from memos_desktop.store.profile import create_profile
    from tests.fixtures.tiny_model import write_random_lora

    fmt = "gemma" if model == "gemma" else None
    cfg = LlamaCppSettings(n_ctx=4096, n_threads=threads, n_threads_batch=threads, chat_format=fmt)
    sha_cache = home / "sha.json"
    out: dict[str, Any] = {"model": model, "file_mib": path.stat().st_size / 2**20}

    rss0 = rss_mib()
    t0 = time.perf_counter()
    engine = LlamaCppEngine(path, cfg, sha_cache_file=sha_cache)
    out["first_load_s"] = time.perf_counter() - t0  # includes hashing the file once
    out["load_s"] = engine.load_s
    out["rss_mib"] = rss_mib() - rss0

    # Prompt eval and generation speed (cold cache, ~512-token prompt).
    chat = [ChatMessage("user", _persona(engine, 512))]
    s = list(engine.chat_stream(chat, SamplingParams.greedy(1)))[-1].stats
    assert s is not None
    out["prompt_tok_s"] = s.prompt_tokens / s.ttft_s
    gen = SamplingParams(temperature=0.8, max_tokens=64, seed=1)
    s = list(engine.chat_stream([ChatMessage("user", "Tell me a story.")], gen))[-1].stats
    assert s is not None
    out["gen_tok_s"] = s.tokens_per_s
    out["gen_tokens"] = s.completion_tokens
    out["rss_after_gen_mib"] = rss_mib() - rss0
    engine.close()

    # Activation memory: TTFT cold vs restored from the encrypted store, in a fresh engine.
    store = create_profile(
        resolve_paths(), "bench", Settings(), method="passphrase", passphrase="bench"
    )
    repo = ActivationRepo(store.db)
    greedy = SamplingParams.greedy(8)
    out["kv"] = []
    # q8_0 K/V (needs flash attention) roughly halves the state: measured for Gemma as well.
    q8 = dataclasses.replace(cfg, type_k="q8_0", type_v="q8_0", flash_attn=True)
    runs = [("f16", cfg, 600), ("f16", cfg, 2000)]
    if model == "gemma":
        runs.append(("q8_0 + flash attn", q8, 2000))
    for kv_name, kv_cfg, target in runs:
        cold_engine = LlamaCppEngine(path, kv_cfg, sha_cache_file=sha_cache)
        prefix = [ChatMessage("system", _persona(cold_engine, target))]
        chat = [*prefix, ChatMessage("user", "Which city did I like most?")]
        chunks = list(cold_engine.chat_stream(chat, greedy))
        cold = chunks[-1].stats
        assert cold is not None
        cold_text = "".join(c.text for c in chunks)
        t = time.perf_counter()
        state = cold_engine.save_prefix_state(prefix)
        save_s = time.perf_counter() - t
        t = time.perf_counter()
        repo.put(state)
        put_s = time.perf_counter() - t
        cold_engine.close()

        warm_engine = LlamaCppEngine(path, kv_cfg, sha_cache_file=sha_cache)
        t = time.perf_counter()
        rec = repo.get(
            warm_engine.model_sha256,
            warm_engine.adapter_id,
            warm_engine.prefix_sha256(prefix),
            warm_engine.settings_key,
        )
        get_s = time.perf_counter() - t
        assert rec is not None
        t = time.perf_counter()
        ok = warm_engine.restore_prefix_state(KVState.from_record(rec), prefix)
        restore_s = time.perf_counter() - t
        assert ok
        chunks = list(warm_engine.chat_stream(chat, greedy))
        warm = chunks[-1].stats
        assert warm is not None
        warm_engine.close()
        restored_total = get_s + restore_s + warm.ttft_s
        out["kv"].append(
            {
                "kv_cache": kv_name,
                "prefix_tokens": state.n_tokens,
                "prompt_tokens": cold.prompt_tokens,
                "state_mib": len(state.state) / 2**20,
                "cold_ttft_s": cold.ttft_s,
                "save_s": save_s,
                "store_put_s": put_s,
                "store_get_s": get_s,
                "restore_s": restore_s,
                "warm_ttft_s": warm.ttft_s,
                "restored_total_s": restored_total,
                "ratio": cold.ttft_s / restored_total,
                "reused": warm.prefix_tokens_reused,
                "same_answer": cold_text == "".join(c.text for c in chunks),
            }
        )
    store.close()

    # Adapter switching: two random LoRAs, switched back and forth without reloading the model.
    engine = LlamaCppEngine(path, cfg, sha_cache_file=sha_cache)
    for name, seed in (("a", 1), ("b", 2)):
        lora = write_random_lora(
            path, home / f"lora-{name}.gguf", seed=seed, base_sha256=engine.model_sha256
        )
        t = time.perf_counter()
        engine.load_adapter(name, lora)
        out[f"adapter_load_s_{name}"] = time.perf_counter() - t
        out["adapter_mib"] = lora.stat().st_size / 2**20
    n = 200
    t = time.perf_counter()
    for i in range(n):
        engine.set_adapter("a" if i % 2 == 0 else "b")
    out["switch_ms"] = (time.perf_counter() - t) / n * 1000
    engine.close()
    return out


BUILDS = {"portable": "0", "native": "1"}


def measure_speed(path: Path, threads: int, home: Path, repeats: int = 3) -> dict[str, Any]:
    """Prompt eval and generation tok/s of the llama_cpp on sys.path (best and median)."""
    import statistics

    import llama_cpp

    from memos_desktop.engines.base import ChatMessage, SamplingParams
    from memos_desktop.engines.build_info import engine_build
    from memos_desktop.engines.llamacpp import LlamaCppEngine, LlamaCppSettings

    cfg = LlamaCppSettings(
        n_ctx=4096, n_threads=threads, n_threads_batch=threads, chat_format="gemma"
    )
    engine = LlamaCppEngine(path, cfg, sha_cache_file=home / "sha.json")
    prompt = [ChatMessage("user", _persona(engine, 512))]
    gen = SamplingParams(temperature=0.8, max_tokens=64, seed=1)
    pe, tg = [], []
    for i in range(repeats):
        engine.close()
        engine = LlamaCppEngine(path, cfg, sha_cache_file=home / "sha.json")  # cold KV cache
        s = list(engine.chat_stream(prompt, SamplingParams.greedy(1)))[-1].stats
        assert s is not None
        pe.append(s.prompt_tokens / s.ttft_s)
        story = [ChatMessage("user", f"Tell me a story number {i}.")]
        s = list(engine.chat_stream(story, gen))[-1].stats
        assert s is not None
        tg.append(s.tokens_per_s)
    engine.close()
    b = engine_build()
    return {
        "llama_cpp_file": llama_cpp.__file__,
        "features": sorted(f for f in b.built if f not in ("LLAMAFILE", "OPENMP", "REPACK")),
        "prompt_best": max(pe),
        "prompt_median": statistics.median(pe),
        "gen_best": max(tg),
        "gen_median": statistics.median(tg),
    }


def compare_builds(threads: int, write: bool) -> None:
    from tests.fixtures.tiny_model import packaged_gemma

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    rows = {}
    with tempfile.TemporaryDirectory(prefix="memos-bench-builds-") as tmp:
        gemma = packaged_gemma(Path(tmp))
        for build, native in BUILDS.items():
            make = ["make", "-s", "-C", str(ROOT), f"LLAMA_NATIVE={native}"]
            subprocess.run([*make, "llama-wheel"], check=True)
            house = subprocess.run(
                [*make, "llama-wheelhouse"], check=True, capture_output=True, text=True
            ).stdout.strip()
            target = Path(tmp) / f"site-{build}"
            wheel = next(Path(house).glob("llama_cpp_python-*.whl"))
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--no-deps",
                    "--target",
                    str(target),
                    str(wheel),
                ],
                check=True,
            )
            home = Path(tmp) / f"home-{build}"
            home.mkdir()
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), str(ROOT)]))
            print(f"measuring the {build} build ...", file=sys.stderr)
            proc = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--threads",
                    str(threads),
                    "--speed-child",
                    str(gemma),
                    str(home),
                ],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr[-3000:])
                raise SystemExit(f"benchmark of the {build} build failed (exit {proc.returncode})")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            assert r["llama_cpp_file"].startswith(str(target)), r["llama_cpp_file"]
            r["house"] = Path(house).name
            rows[build] = r
    lines = [
        "## Engine builds: portable (default) vs native",
        "",
        "Command: `python bench/engines.py --builds`  ",
        f"Machine: {machine()}  ",
        f"Gemma 3 270M Q4_K_M, {threads} threads, ~512-token prompt (cold KV) and 64 generated "
        f"tokens, best and median of 3; load average at start: {load}; "
        f"date {time.strftime('%Y-%m-%d')}.",
        "",
        "| build | wheelhouse | CPU features compiled in | prompt eval tok/s best (median) "
        "| generation tok/s best (median) |",
        "|---|---|---|---:|---:|",
    ]
    for build, r in rows.items():
        lines.append(
            f"| {build} | `{r['house']}` | {' '.join(r['features'])} | {r['prompt_best']:.0f} "
            f"({r['prompt_median']:.0f}) | {r['gen_best']:.1f} ({r['gen_median']:.1f}) |"
        )
    p, n = rows["portable"], rows["native"]
    lines += [
        "",
        f"Native vs portable here: prompt eval x{n['prompt_median'] / p['prompt_median']:.2f}, "
        f"generation x{n['gen_median'] / p['gen_median']:.2f} (medians). The native build is "
        "for this CPU only and, on AMX CPUs, includes the AMX kernels that crash on Q4_K models "
        "(llama.cpp issue 20824); `make run LLAMA_NATIVE=1` opts in.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if write:
        write_section("engine-builds", text)


def _table(results: list[dict[str, Any]], threads: int, cmd: str, load: str) -> str:
    lines = [
        "## Engines (llama.cpp)",
        "",
        f"Command: `{cmd}`  ",
        f"Machine: {machine()}  ",
        f"Threads: {threads} (generation and prompt eval); load average at start: {load}; "
        f"date {time.strftime('%Y-%m-%d')}.",
        "",
        "| model | file MiB | load s (first, with sha256) | RSS MiB | prompt eval tok/s "
        "| generation tok/s | adapter switch ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['model']} | {r['file_mib']:.1f} | {r['load_s']:.3f} ({r['first_load_s']:.2f})"
            f" | {r['rss_after_gen_mib']:.0f} | {r['prompt_tok_s']:.0f} | {r['gen_tok_s']:.1f} "
            f"| {r['switch_ms']:.3f} |"
        )
    lines += [
        "",
        "Activation memory: time to first token, cold prefill vs restored from the encrypted "
        "store in a fresh engine (restored = DB read + decrypt + `llama_state_seq_set_data` + "
        "first token). Target: ratio >= 15x.",
        "",
        "| model | KV cache | prefix tokens | state MiB | cold TTFT s | DB read s | restore s "
        "| warm TTFT s | restored total s | ratio | same greedy answer |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        for k in r["kv"]:
            lines.append(
                f"| {r['model']} | {k['kv_cache']} | {k['prefix_tokens']} | {k['state_mib']:.1f} "
                f"| {k['cold_ttft_s']:.3f} | {k['store_get_s']:.3f} | {k['restore_s']:.3f} "
                f"| {k['warm_ttft_s']:.3f} | {k['restored_total_s']:.3f} | "
                f"**{k['ratio']:.0f}x** | {'yes' if k['same_answer'] else 'NO'} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--only", choices=["gemma", "tiny"], default=None)
    ap.add_argument("--child", nargs=3, metavar=("MODEL", "PATH", "HOME"), help=argparse.SUPPRESS)
    ap.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md")
    ap.add_argument("--builds", action="store_true", help="portable vs native llama.cpp build")
    ap.add_argument("--speed-child", nargs=2, metavar=("PATH", "HOME"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.speed_child:
        path, home = args.speed_child
        print(json.dumps(measure_speed(Path(path), args.threads, Path(home))))
        return
    if args.builds:
        compare_builds(args.threads, write=not args.no_write)
        return
    if args.child:
        model, path, home = args.child
        print(json.dumps(measure(model, Path(path), args.threads, Path(home))))
        return

    from tests.fixtures.tiny_model import packaged_gemma, write_tiny_model

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results = []
    with tempfile.TemporaryDirectory(prefix="memos-bench-") as tmp:
        models = {
            "gemma": packaged_gemma(Path(tmp)),
            "tiny": write_tiny_model(Path(tmp) / "tiny.gguf"),
        }
        for name, path in models.items():
            if args.only and name != args.only:
                continue
            home = Path(tmp) / f"home-{name}"
            print(f"measuring {name} ...", file=sys.stderr)
            proc = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--threads",
                    str(args.threads),
                    "--child",
                    name,
                    str(path),
                    str(home),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr[-3000:])
                raise SystemExit(f"benchmark of {name} failed")
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    for r in results:
        r["model"] = {"gemma": "Gemma 3 270M Q4_K_M", "tiny": "tiny random llama"}[r["model"]]
    cmd = "python bench/engines.py" + (
        f" --threads {args.threads}" if args.threads != os.cpu_count() else ""
    )
    text = _table(results, args.threads, cmd, load)
    print(text)
    if not args.no_write and not args.only:
        write_section("engines", text)


if __name__ == "__main__":
    main()
