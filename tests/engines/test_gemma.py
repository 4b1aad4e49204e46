"""Behaviour with the packaged Gemma 3 270M (a real model, base not instruction-tuned): a restored
KV state answers exactly like a cold prefill, and LoRA adapters change the answer reversibly."""

from __future__ import annotations

from pathlib import Path

import pytest

from memos_desktop.engines.base import ChatMessage, SamplingParams
from memos_desktop.engines.llamacpp import LlamaCppEngine
from memos_desktop.errors import EngineError
from tests.engines.conftest import GEMMA

PERSONA = (
    "You are a friendly assistant with a long memory. What you know about the user: "
    + " ".join(
        f"Fact {i}: the user once visited city number {i * 7} and liked it." for i in range(12)
    )
)
PREFIX = [ChatMessage("system", PERSONA)]
CHAT = [*PREFIX, ChatMessage("user", "Which cities did I like?")]
GREEDY = SamplingParams.greedy(16)


def test_gemma_uses_the_gemma_format(gemma: LlamaCppEngine) -> None:
    assert gemma.chat_format == "gemma"
    # The format wraps the persona and the question in turns: more tokens than the texts alone.
    texts = gemma.count_tokens(PERSONA) + gemma.count_tokens(CHAT[1].content)
    assert gemma.count_message_tokens(CHAT) > texts
    assert gemma.prefix_sha256(PREFIX) != gemma.prefix_sha256([ChatMessage("system", "x")])


def test_restored_state_answers_like_a_cold_prefill(gemma_path: Path, sha_cache: Path) -> None:
    with LlamaCppEngine(gemma_path, GEMMA, sha_cache_file=sha_cache) as cold:
        chunks = list(cold.chat_stream(CHAT, GREEDY))
        cold_text = "".join(c.text for c in chunks)
        assert chunks[-1].stats is not None and chunks[-1].stats.prefix_tokens_reused == 0
        state = cold.save_prefix_state(PREFIX)
    assert cold_text.strip()
    assert state.n_tokens > 100
    with LlamaCppEngine(gemma_path, GEMMA, sha_cache_file=sha_cache) as warm:
        assert warm.restore_prefix_state(state, PREFIX)
        chunks = list(warm.chat_stream(CHAT, GREEDY))
        stats = chunks[-1].stats
        assert stats is not None and stats.prefix_tokens_reused == state.n_tokens
        assert "".join(c.text for c in chunks) == cold_text


def test_adapters_change_the_answer_and_switching_back_restores_it(
    gemma: LlamaCppEngine, gemma_adapters: tuple[Path, Path]
) -> None:
    chat = [ChatMessage("user", "Tell me about the weather today.")]
    try:
        base = gemma.chat(chat, GREEDY)
        gemma.load_adapter("a", gemma_adapters[0])
        gemma.load_adapter_bytes("b", gemma_adapters[1].read_bytes())
        gemma.set_adapter("a")
        out_a = gemma.chat(chat, GREEDY)
        gemma.set_adapter("b")
        out_b = gemma.chat(chat, GREEDY)
        assert len({base, out_a, out_b}) == 3
        gemma.set_adapter("a")
        assert gemma.chat(chat, GREEDY) == out_a
        gemma.set_adapter(None)
        assert gemma.chat(chat, GREEDY) == base
    finally:
        gemma.set_adapter(None)


def test_adapter_for_another_model_is_refused_and_gemma_still_works(
    gemma: LlamaCppEngine, tiny_adapters: tuple[Path, Path]
) -> None:
    chat = [ChatMessage("user", "Hello!")]
    before = gemma.chat(chat, GREEDY)
    with pytest.raises(EngineError, match="llama model, not gemma3"):
        gemma.load_adapter("tiny", tiny_adapters[0])
    assert gemma.chat(chat, GREEDY) == before


def test_prefix_reuse_after_a_long_turn_is_still_exact(gemma: LlamaCppEngine) -> None:
    """Gemma 3 attends through a 512-token sliding window. Unless the SWA cache is full size
    (``swa_full``, our default), a turn longer than the window overwrites the prefix's cells and
    llama-cpp-python then reuses the damaged prefix silently (measured: garbage answers)."""
    prefix = [ChatMessage("system", "You are helpful. The user likes tea and lives in Lyon.")]
    chat = [*prefix, ChatMessage("user", "Where do I live?")]
    reference = gemma.chat(chat, GREEDY)
    filler = " ".join(f"Also item {i} is nice." for i in range(160))
    long_turn = [*chat, ChatMessage("assistant", reference), ChatMessage("user", filler)]
    assert gemma.count_message_tokens(long_turn) > 1100  # past window + batch (1024 cells)
    gemma.chat(long_turn, SamplingParams.greedy(1))
    chunks = list(gemma.chat_stream(chat, GREEDY))
    assert chunks[-1].stats is not None and chunks[-1].stats.prefix_tokens_reused > 10
    assert "".join(c.text for c in chunks) == reference
    gemma.chat(long_turn, SamplingParams.greedy(1))
    state = gemma.save_prefix_state(prefix)  # cut back from the long turn, then saved
    assert gemma.restore_prefix_state(state) and gemma.chat(chat, GREEDY) == reference
