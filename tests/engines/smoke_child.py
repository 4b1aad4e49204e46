"""One smoke check of a packaged model, run in its own process by test_smoke_subprocess.py.

``python -m tests.engines.smoke_child CASE WORKDIR [GEMMA_PATH]``: exit 0 and print ``ok`` when
the check holds, exit 1 with the reason when it does not. A crash in native code (SIGSEGV,
SIGILL from a build for another CPU) kills only this process, and the test reports the signal
with this command line to reproduce it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from memos_desktop.config import resolve_paths
from memos_desktop.engines.base import ChatMessage, SamplingParams
from memos_desktop.engines.llamacpp import LlamaCppEngine
from memos_desktop.engines.loader import load_embedder
from tests.fixtures.tiny_model import packaged_gemma, write_random_lora
from tests.model_fixtures import GEMMA

GREEDY = SamplingParams.greedy(12)
PREFIX = [ChatMessage("system", "You are a helpful assistant. The user lives in Porto. " * 8)]
CHAT = [*PREFIX, ChatMessage("user", "Where do I live?")]


def check(ok: bool, why: str) -> None:
    if not ok:
        print(f"FAILED: {why}")
        sys.exit(1)


def gemma_generate(work: Path, gemma: Path) -> None:
    with LlamaCppEngine(gemma, GEMMA, sha_cache_file=work / "sha.json") as e:
        text = e.chat(CHAT, GREEDY)
    check(bool(text.strip()), "Gemma produced no text")


def minilm_embed(work: Path, _gemma: Path) -> None:
    emb = load_embedder(
        resolve_paths({"MEMOS_DESKTOP_HOME": str(work / "home")}), "all-minilm-l6-v2"
    )
    v = emb.embed(["I live in Porto.", "My home is in Porto.", "The stock market fell."])
    check(v.shape == (3, emb.dim), f"shape {v.shape}")
    check(bool(np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-3)), "vectors not unit length")
    check(float(v[0] @ v[1]) > float(v[0] @ v[2]), "similar sentences are not closer")


def kv_roundtrip(work: Path, gemma: Path) -> None:
    sha = work / "sha.json"
    with LlamaCppEngine(gemma, GEMMA, sha_cache_file=sha) as cold:
        cold_text = cold.chat(CHAT, GREEDY)
        state = cold.save_prefix_state(PREFIX)
    with LlamaCppEngine(gemma, GEMMA, sha_cache_file=sha) as warm:
        check(warm.restore_prefix_state(state, PREFIX), "state was not restored")
        check(warm.chat(CHAT, GREEDY) == cold_text, "restored state answers differently")


def lora_switch(work: Path, gemma: Path) -> None:
    with LlamaCppEngine(gemma, GEMMA, sha_cache_file=work / "sha.json") as e:
        adapter = write_random_lora(gemma, work / "a.gguf", seed=21, base_sha256=e.model_sha256)
        chat = [ChatMessage("user", "Tell me about the weather today.")]
        base = e.chat(chat, GREEDY)
        e.load_adapter("a", adapter)
        e.set_adapter("a")
        with_adapter = e.chat(chat, GREEDY)
        e.set_adapter(None)
        check(with_adapter != base, "the adapter did not change the answer")
        check(e.chat(chat, GREEDY) == base, "switching the adapter off did not restore the answer")


CASES = {
    "gemma-generate": gemma_generate,
    "minilm-embed": minilm_embed,
    "kv-roundtrip": kv_roundtrip,
    "lora-switch": lora_switch,
}

if __name__ == "__main__":
    case, work = sys.argv[1], Path(sys.argv[2])
    gemma = Path(sys.argv[3]) if len(sys.argv) > 3 else packaged_gemma(work)
    CASES[case](work, gemma)
    print("ok")
