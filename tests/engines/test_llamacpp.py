"""Plumbing of the llama.cpp engine with the tiny random-weight model: real GGUF files, real
llama.cpp, no mocks. Its answers are noise, so the tests compare answers with each other."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Generator
from pathlib import Path

import pytest

from memos_desktop.engines.base import (
    CancelToken,
    ChatEngine,
    ChatMessage,
    SamplingParams,
    StreamChunk,
)
from memos_desktop.engines.chat_format import render_gemma
from memos_desktop.engines.files import model_sha256
from memos_desktop.engines.llamacpp import LlamaCppEngine
from memos_desktop.engines.schema_check import schema_errors
from memos_desktop.errors import EngineError, InvalidInputError, ModelNotFoundError
from tests.engines.conftest import TINY

SYSTEM = ChatMessage("system", "You are a kind assistant. The user is called Ada and likes tea.")
CHAT = [SYSTEM, ChatMessage("user", "What do I like to drink?")]
GREEDY = SamplingParams.greedy(24)


def test_is_a_chat_engine(tiny: LlamaCppEngine) -> None:
    assert isinstance(tiny, ChatEngine)
    assert tiny.chat_format == "template"  # the tiny GGUF carries a ChatML template
    assert tiny.n_ctx == TINY.n_ctx
    assert len(tiny.model_sha256) == 64


def test_stream_yields_pieces_then_stats(tiny: LlamaCppEngine) -> None:
    chunks = list(tiny.chat_stream(CHAT, GREEDY))
    assert all(isinstance(c, StreamChunk) for c in chunks)
    assert all(c.stats is None for c in chunks[:-1])
    stats = chunks[-1].stats
    assert stats is not None
    assert len(chunks) > 2  # streamed, not one block
    assert stats.prompt_tokens == tiny.count_message_tokens(CHAT)
    assert 0 < stats.completion_tokens <= 24
    assert stats.finish_reason in ("length", "stop")
    assert stats.ttft_s > 0
    text = "".join(c.text for c in chunks)
    assert text and text == tiny.chat(CHAT, GREEDY)  # greedy is deterministic


def test_sampling_seed_is_reproducible(tiny: LlamaCppEngine) -> None:
    s = SamplingParams(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, max_tokens=24, seed=7)
    assert tiny.chat(CHAT, s) == tiny.chat(CHAT, s)


def test_cancel_stops_within_a_token(tiny: LlamaCppEngine) -> None:
    cancel = CancelToken()
    last = None
    for n, chunk in enumerate(tiny.chat_stream(CHAT, SamplingParams.greedy(200), cancel)):
        if n == 2:
            cancel.cancel()
        last = chunk
    assert last is not None and last.stats is not None
    assert last.stats.finish_reason == "cancelled"
    assert last.stats.completion_tokens <= 4
    # The engine is usable afterwards and still deterministic.
    assert tiny.chat(CHAT, GREEDY) == tiny.chat(CHAT, GREEDY)


def test_cancel_before_start_generates_nothing(tiny: LlamaCppEngine) -> None:
    cancel = CancelToken()
    cancel.cancel()
    chunks = list(tiny.chat_stream(CHAT, GREEDY, cancel))
    assert chunks[-1].stats is not None and chunks[-1].stats.completion_tokens == 0
    assert "".join(c.text for c in chunks) == ""


def test_stop_string_cuts_the_answer(tiny: LlamaCppEngine) -> None:
    full = tiny.chat(CHAT, SamplingParams.greedy(40))
    stop = full[8:11]
    assert stop
    cut = tiny.chat(CHAT, SamplingParams.greedy(40, stop=(stop,)))
    assert cut == full[: full.index(stop)]


def test_token_counting_and_context_accounting(tiny: LlamaCppEngine) -> None:
    assert tiny.count_tokens("") == 0
    assert tiny.count_tokens("the cat") == len(tiny.tokenize("the cat")) > 0
    short = tiny.count_message_tokens(CHAT)
    longer = tiny.count_message_tokens(
        [*CHAT, ChatMessage("assistant", "Tea."), ChatMessage("user", "And to eat?")]
    )
    assert short > tiny.count_tokens(SYSTEM.content) and longer > short
    assert tiny.remaining_tokens(CHAT) == tiny.n_ctx - short
    huge = [ChatMessage("user", "word " * 2000)]
    assert tiny.remaining_tokens(huge) < 0
    with pytest.raises(EngineError, match="context window"):
        tiny.chat(huge)


def test_unknown_role_is_refused(tiny: LlamaCppEngine) -> None:
    with pytest.raises(InvalidInputError):
        tiny.chat([ChatMessage("robot", "hi")])


def test_gemma_format_puts_system_text_in_the_first_user_turn() -> None:
    prompt = render_gemma(
        [
            ChatMessage("system", "S"),
            ChatMessage("user", "U"),
            ChatMessage("assistant", "A"),
            ChatMessage("user", "V"),
        ]
    )
    assert prompt == (
        "<start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\nA"
        "<end_of_turn>\n<start_of_turn>user\nV<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


def test_json_schema_output_parses_and_validates(tiny: LlamaCppEngine) -> None:
    schema = {
        "type": "object",
        "properties": {
            "mood": {"enum": ["happy", "sad", "neutral"]},
            "urgent": {"type": "boolean"},
            "count": {"type": "integer"},
            "tags": {"type": "array", "items": {"enum": ["tea", "food"]}, "maxItems": 3},
        },
        "required": ["mood", "urgent", "count", "tags"],
        "additionalProperties": False,
    }
    out = tiny.complete_json(CHAT, schema, SamplingParams.greedy(300))
    assert schema_errors(out, schema) == []
    assert set(out) == {"mood", "urgent", "count", "tags"}
    assert out["mood"] in ("happy", "sad", "neutral")
    assert isinstance(out["urgent"], bool) and isinstance(out["count"], int)


def test_json_keywords_the_grammar_ignores_are_still_checked(tiny: LlamaCppEngine) -> None:
    # llama-cpp-python's grammar does not enforce numeric bounds: the answer is checked after.
    schema = {
        "type": "object",
        "properties": {"stars": {"type": "integer", "minimum": 1, "maximum": 5}},
        "required": ["stars"],
    }
    try:
        out = tiny.complete_json(CHAT, schema, SamplingParams.greedy(100))
    except EngineError as err:
        assert "does not follow the schema" in str(err)
    else:
        assert 1 <= out["stars"] <= 5


def test_schema_errors_covers_the_extraction_subset() -> None:
    schema = {
        "type": "object",
        "required": ["a", "b"],
        "additionalProperties": False,
        "properties": {
            "a": {"type": "integer", "maximum": 3},
            "b": {"type": "array", "items": {"type": "string"}},
        },
    }
    assert schema_errors({"a": 3, "b": ["x"]}, schema) == []
    errs = schema_errors({"a": True, "b": ["x", 2], "c": 1}, schema)
    assert len(errs) == 3  # a is a bool not an integer, b[1] not a string, c unexpected
    assert schema_errors({"a": 4, "b": []}, schema) == ["$.a: above maximum 3"]
    assert schema_errors({"b": []}, schema) == ["$: missing 'a'"]


def test_json_cut_off_says_raise_max_tokens(tiny: LlamaCppEngine) -> None:
    schema = {
        "type": "object",
        "properties": {"mood": {"enum": ["happy", "sad"]}},
        "required": ["mood"],
    }
    with pytest.raises(EngineError, match="cut off") as err:
        tiny.complete_json(CHAT, schema, SamplingParams.greedy(2))
    assert err.value.hint and "max_tokens" in err.value.hint


# --- model files -------------------------------------------------------------------------------


def test_missing_model_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as err:
        LlamaCppEngine(tmp_path / "nope.gguf", TINY)
    assert err.value.hint and "models pull" in err.value.hint


@pytest.mark.parametrize("damage", ["not-gguf", "truncated"])
def test_corrupt_model_is_an_engine_error(tmp_path: Path, tiny_path: Path, damage: str) -> None:
    bad = tmp_path / "bad.gguf"
    data = tiny_path.read_bytes()
    bad.write_bytes(b"this is not a model" * 100 if damage == "not-gguf" else data[:4000])
    with pytest.raises(EngineError) as err:
        LlamaCppEngine(bad, TINY, sha_cache_file=tmp_path / "sha.json")
    assert err.value.hint and "fetch it again" in err.value.hint


def test_model_sha256_is_cached_by_path_size_and_mtime(tmp_path: Path, tiny_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(tiny_path.read_bytes())
    cache = tmp_path / "sha.json"
    real = model_sha256(model, cache)
    table = json.loads(cache.read_text())
    assert table[str(model.resolve())]["sha256"] == real
    # A fake entry with the same size and mtime is trusted: proof that nothing is re-hashed...
    table[str(model.resolve())]["sha256"] = "f" * 64
    cache.write_text(json.dumps(table))
    from memos_desktop.engines import files

    files._SHA_MEMO.clear()
    assert model_sha256(model, cache) == "f" * 64
    # ...and a changed file (new mtime) is hashed again.
    st = model.stat()
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert model_sha256(model, cache) == real


def test_closed_engine_refuses_work(tiny_path: Path, sha_cache: Path) -> None:
    e = LlamaCppEngine(tiny_path, TINY, sha_cache_file=sha_cache)
    e.close()
    e.close()  # idempotent
    with pytest.raises(EngineError, match="closed"):
        e.chat(CHAT)


def test_second_generation_while_streaming_is_refused(tiny: LlamaCppEngine) -> None:
    stream = tiny.chat_stream(CHAT, GREEDY)
    next(stream)
    with pytest.raises(EngineError, match="already generating"):
        tiny.chat(CHAT, GREEDY)
    list(stream)
    time.sleep(0)
    assert tiny.chat(CHAT, GREEDY)


class _CancelAfter(CancelToken):
    """Reports "cancelled" from the n-th check on: cancels at a chosen point, deterministically."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.left = checks

    @property
    def cancelled(self) -> bool:
        self.left -= 1
        return self.left < 0


LONG = [
    ChatMessage("system", "Remember: " + "the user likes green tea. " * 50),
    ChatMessage("user", "What do I like?"),
]


def test_long_prompt_prefill_can_be_cancelled(tiny: LlamaCppEngine) -> None:
    assert tiny.count_message_tokens(LONG) > tiny.settings.n_batch
    chunks = list(tiny.chat_stream(LONG, GREEDY, _CancelAfter(1)))  # stop after one batch
    stats = chunks[-1].stats
    assert stats is not None and stats.finish_reason == "cancelled"
    assert stats.completion_tokens == 0
    # A token that is never cancelled changes nothing: same answer as without one.
    assert tiny.chat(LONG, GREEDY, CancelToken()) == tiny.chat(LONG, GREEDY)
    tiny.save_prefix_state(LONG[:1])  # the cache is reusable afterwards
    assert tiny.chat(LONG, GREEDY, CancelToken()) == tiny.chat(LONG, GREEDY)


def test_cache_and_adapters_cannot_change_mid_answer(tiny: LlamaCppEngine) -> None:
    stream = tiny.chat_stream(CHAT, GREEDY)
    assert isinstance(stream, Generator)
    next(stream)
    with pytest.raises(EngineError, match="generating"):
        tiny.save_prefix_state(CHAT[:1])
    with pytest.raises(EngineError, match="generating"):
        tiny.set_adapter(None)
    stream.close()
    tiny.save_prefix_state(CHAT[:1])
