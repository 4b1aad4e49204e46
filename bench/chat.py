"""TTFT of a memory-augmented chat turn: stable prefix restored from activation memory vs rebuilt.

Usage: .venv/bin/python bench/chat.py [--core N] [--turns N] [--no-write]

A profile gets N pinned core memories (the stable prefix: persona + core memories), then the
same question is asked through `MemosAPI.chat` in fresh engines: *rebuilt* has an empty
activation store (the prefix is prefilled), *restored* finds the prefix's KV state saved by an
earlier turn (read from the encrypted DB, decrypted, restored). Same run, same model (the
packaged Gemma 3 270M), greedy, 8 answer tokens. TTFT is measured from the call into
`chat()` (retrieval, assembly and KV restore included) to the first streamed text.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import git_rev, machine, write_section
from memos_desktop.api import MemosAPI
from memos_desktop.config import EngineSettings, Settings, resolve_paths
from memos_desktop.engines.base import SamplingParams
from memos_desktop.engines.llamacpp import LlamaCppEngine, LlamaCppSettings
from memos_desktop.engines.loader import ensure_packaged_gemma, load_embedder
from memos_desktop.memory.scheduler import Budget
from memos_desktop.store.profile import create_profile
from memos_desktop.store.records import NewMemory

FACTS = [
    "The user's name is Amira and she lives in Leeds with her partner Jon.",
    "Amira is vegetarian and allergic to peanuts.",
    "Amira works as a paediatric nurse, mostly on night shifts.",
    "Amira prefers short, direct answers without bullet points.",
    "Amira's daughter Mira was born on 4 March 2019.",
    "Amira is training for the York half marathon in October.",
    "Amira's mother lives in Casablanca and they call every Sunday.",
    "Amira is learning Portuguese for a trip to Lisbon next spring.",
]


def ttft(api: MemosAPI, question: str) -> tuple[float, bool]:
    t0 = time.perf_counter()
    turn = api.chat(question, temporary=False, sampling=SamplingParams.greedy(max_tokens=8))
    first = None
    for _ in turn:
        if first is None:
            first = time.perf_counter() - t0
    return (first if first is not None else time.perf_counter() - t0), turn.kv_restored


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--core", type=int, default=40, help="pinned core memories in the prefix")
    ap.add_argument("--turns", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    os.environ["MEMOS_DESKTOP_HOME"] = tempfile.mkdtemp(prefix="memos-chat-")
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    paths = resolve_paths()
    embedder = load_embedder(paths, "all-minilm-l6-v2")
    model = ensure_packaged_gemma(paths)
    settings = Settings(engine=EngineSettings(activation_cache_mib=2048))
    store = create_profile(
        paths,
        "bench",
        settings,
        method="passphrase",
        passphrase="b",
        embed_model=embedder.model_id,
        embed_dim=embedder.dim,
    )
    eng = LlamaCppSettings(n_ctx=4096, chat_format="gemma")
    # A big core profile: the core budget is raised so all of it is in the stable prefix.
    api = MemosAPI(
        store,
        embedder,
        engine_factory=lambda: LlamaCppEngine(model, eng),
        budget=Budget(core_tokens=100_000),
    )
    core = [FACTS[i % len(FACTS)] + f" (note {i})" for i in range(args.core)]
    api.add([NewMemory(text=t, layer="user", pinned=True, importance=0.9) for t in core])
    rebuilt, restored = [], []
    prefix_tokens = 0
    for i in range(args.turns):
        store.activations.delete_where(user_id=api.user.id)  # empty: the prefix is prefilled
        api._engine = None  # a fresh engine (empty KV cache), as after a restart
        t, hit = ttft(api, f"What should I cook for dinner tonight? ({i})")
        assert not hit
        rebuilt.append(t)
        api.engine.close()
        api._engine = None  # fresh engine again; the state saved by the turn above is there
        t, hit = ttft(api, f"What should I cook for lunch tomorrow? ({i})")
        assert hit, "the prefix state was not restored"
        restored.append(t)
        prefix_tokens = int(store.db.scalar("SELECT max(n_tokens) FROM activation_states"))
        api.engine.close()
        api._engine = None
    store.close()
    r, s = statistics.median(rebuilt), statistics.median(restored)
    lines = [
        "## Chat turn TTFT, prefix restored vs rebuilt (`bench/chat.py`)",
        "",
        f"Command: `.venv/bin/python bench/chat.py --core {args.core} --turns {args.turns}` "
        f"(commit {git_rev()})  ",
        f"Machine: {machine()}  ",
        f"Packaged Gemma 3 270M (Q4_K_M, llama.cpp, default threads); stable prefix of "
        f"{prefix_tokens} tokens (persona + {args.core} pinned memories); fresh engine per turn; "
        "TTFT from `chat()` to the first streamed text, retrieval and KV restore included; "
        f"median of {args.turns}.",
        "",
        "| prefix | TTFT s (median) | all runs s |",
        "|---|---:|---|",
        f"| rebuilt (prefill) | {r:.3f} | {', '.join(f'{x:.3f}' for x in rebuilt)} |",
        f"| restored from activation memory | {s:.3f} | "
        f"{', '.join(f'{x:.3f}' for x in restored)} |",
        "",
        f"Ratio: {r / s:.1f}x.",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("chat", body)


if __name__ == "__main__":
    main()
