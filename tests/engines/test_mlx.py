"""The MLX engine for real on Linux (mlx-lm[cpu]), with a tiny random llama the test writes:
config.json + random safetensors weights + a byte-level BPE tokenizer with a chatml template."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memos_desktop.engines.base import (
    CancelToken,
    ChatEngine,
    ChatMessage,
    SamplingParams,
)
from memos_desktop.engines.mlx import MlxEngine, MlxSettings
from memos_desktop.engines.mlx_cache import cache_from_bytes
from memos_desktop.engines.select import is_apple_silicon, select_engine
from memos_desktop.errors import EngineError, ModelNotFoundError

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
GREEDY = SamplingParams.greedy(max_tokens=12)
PREFIX = [ChatMessage("system", "You are a helpful assistant. Anna likes tea and hiking.")]


def write_tiny_mlx_model(d: Path, seed: int = 0, hidden: int = 64) -> Path:
    """A 2-layer llama (hidden 64) with random weights, in MLX/HF format, plus a tokenizer."""
    import mlx.core as mx
    from mlx.utils import tree_flatten, tree_map
    from mlx_lm.models import llama
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    d.mkdir(parents=True, exist_ok=True)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = [
        "You are a helpful assistant.",
        "Anna likes tea and hiking in the mountains.",
        "What does Anna like? She likes tea.",
        "user assistant system hello",
    ] * 10
    tok.train_from_iterator(corpus, trainer)
    tok.save(str(d / "tokenizer.json"))
    (d / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "eos_token": "<|im_end|>",
                "pad_token": "<|endoftext|>",
                "chat_template": CHATML,
                "model_max_length": 512,
            }
        )
    )
    cfg = {
        "model_type": "llama",
        "hidden_size": hidden,
        "num_hidden_layers": 2,
        "intermediate_size": 2 * hidden,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-5,
        "vocab_size": tok.get_vocab_size(),
        "max_position_embeddings": 512,
        "rope_theta": 10000.0,
        "tie_word_embeddings": True,
        "eos_token_id": tok.token_to_id("<|im_end|>"),
    }
    (d / "config.json").write_text(json.dumps(cfg))
    mx.random.seed(seed)
    model = llama.Model(llama.ModelArgs.from_dict(cfg))  # type: ignore[no-untyped-call]
    # Wider random weights than the default init, so greedy output varies with the prompt.
    params = tree_map(
        lambda p: mx.random.normal(p.shape) * 0.3 if p.ndim > 1 else p, model.parameters()
    )
    mx.save_safetensors(str(d / "model.safetensors"), dict(tree_flatten(params)))
    return d


@pytest.fixture(scope="session")
def tiny_mlx_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_mlx_model(tmp_path_factory.mktemp("mlx") / "tiny-llama")


@pytest.fixture(scope="session")
def mlx_sha_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlx-sha") / "sha.json"


@pytest.fixture
def engine(tiny_mlx_path: Path, mlx_sha_cache: Path) -> Iterator[MlxEngine]:
    e = MlxEngine(tiny_mlx_path, MlxSettings(n_ctx=512), sha_cache_file=mlx_sha_cache)
    yield e
    e.close()


def chat(*user: str) -> list[ChatMessage]:
    return [*PREFIX, *(ChatMessage("user", u) for u in user)]


def test_it_is_a_chat_engine(engine: MlxEngine) -> None:
    assert isinstance(engine, ChatEngine)
    assert engine.chat_format == "template"
    assert engine.prompt_style == "chat"  # it has a chat template
    assert len(engine.model_sha256) == 64 and engine.adapter_id == ""
    assert engine.n_ctx == 512
    msgs = chat("What does Anna like?")
    assert engine.count_message_tokens(msgs) > engine.count_tokens("What does Anna like?")
    assert engine.remaining_tokens(msgs) == 512 - engine.count_message_tokens(msgs)


def test_greedy_streaming_is_deterministic(engine: MlxEngine) -> None:
    chunks = list(engine.chat_stream(chat("hello"), GREEDY))
    stats = chunks[-1].stats
    assert stats is not None and stats.completion_tokens > 0
    assert stats.finish_reason in ("length", "stop")
    text = "".join(c.text for c in chunks)
    assert text == engine.chat(chat("hello"), GREEDY)


def test_the_next_turn_reuses_the_cached_prompt(engine: MlxEngine) -> None:
    first = chat("hello")
    answer = engine.chat(first, GREEDY)
    follow = [*first, ChatMessage("assistant", answer), ChatMessage("user", "tea?")]
    chunks = list(engine.chat_stream(follow, GREEDY))
    stats = chunks[-1].stats
    assert stats is not None
    assert stats.prefix_tokens_reused == engine.count_message_tokens(first)


def test_cancel_stops_the_stream(engine: MlxEngine) -> None:
    cancel = CancelToken()
    stats = None
    for c in engine.chat_stream(chat("hello"), SamplingParams.greedy(200), cancel):
        cancel.cancel()
        stats = c.stats
    assert stats is not None and stats.finish_reason == "cancelled"
    assert stats.completion_tokens <= 2


def test_stop_strings_end_the_answer(engine: MlxEngine) -> None:
    full = engine.chat(chat("hello"), SamplingParams.greedy(30))
    # The tiny model and greedy decoding are deterministic: its answer is long enough to cut.
    assert len(full) >= 4, full
    stop = full[2:4]
    cut = engine.chat(chat("hello"), SamplingParams.greedy(30, stop=(stop,)))
    assert cut == full[: full.find(stop)]


def test_restored_prompt_cache_answers_like_a_cold_prefill(
    tiny_mlx_path: Path, mlx_sha_cache: Path
) -> None:
    msgs = chat("What does Anna like?")
    with MlxEngine(tiny_mlx_path, MlxSettings(n_ctx=512), sha_cache_file=mlx_sha_cache) as cold:
        want = cold.chat(msgs, GREEDY)
        state = cold.save_prefix_state(PREFIX)
    assert state.n_tokens == len(state.token_ids) > 0
    assert state.prefix_sha256 == cold.prefix_sha256(PREFIX)
    # A fresh engine (as in a new process) restores it and skips the prefix's prefill.
    with MlxEngine(tiny_mlx_path, MlxSettings(n_ctx=512), sha_cache_file=mlx_sha_cache) as warm:
        assert warm.restore_prefix_state(state, PREFIX)
        chunks = list(warm.chat_stream(msgs, GREEDY))
        stats = chunks[-1].stats
        assert stats is not None and stats.prefix_tokens_reused == state.n_tokens
        assert "".join(c.text for c in chunks) == want


def test_a_mismatched_state_is_refused(engine: MlxEngine, tmp_path: Path) -> None:
    state = engine.save_prefix_state(PREFIX)
    other = [ChatMessage("system", "Something else entirely.")]
    assert not engine.restore_prefix_state(state, other)
    assert not engine.restore_prefix_state(dataclasses.replace(state, model_sha256="0" * 64))
    assert not engine.restore_prefix_state(dataclasses.replace(state, settings_key="x"))
    assert not engine.restore_prefix_state(dataclasses.replace(state, state=b"garbage" * 10))
    # A different model file (same shapes, other weights) has another sha256.
    other_model = write_tiny_mlx_model(tmp_path / "other", seed=1)
    with MlxEngine(other_model, MlxSettings(n_ctx=512)) as e2:
        assert e2.model_sha256 != engine.model_sha256
        assert not e2.restore_prefix_state(state)
    assert engine.restore_prefix_state(state, PREFIX)  # and the right one still works


def test_state_bytes_are_safetensors_not_pickle(engine: MlxEngine) -> None:
    state = engine.save_prefix_state(PREFIX)
    header_len = int.from_bytes(state.state[:8], "little")
    header = json.loads(state.state[8 : 8 + header_len])
    assert header["__metadata__"]["format"] == "memos-mlx-prompt-cache/1"
    cache = cache_from_bytes(state.state)
    assert len(cache) == 2 and cache[0].offset == state.n_tokens
    bad = state.state.replace(b"KVCache", b"os.syst", 1)
    with pytest.raises(ValueError):
        cache_from_bytes(bad)


def test_complete_json_checks_the_answer(engine: MlxEngine) -> None:
    # A random model does not write JSON: the engine must say so, not return junk.
    with pytest.raises(EngineError, match="structured answer"):
        engine.complete_json(chat("json please"), {"type": "object"})


def write_random_mlx_adapter(
    model_dir: Path, out: Path, seed: int, base_sha256: str | None = None
) -> Path:
    """A random LoRA adapter in mlx_lm.lora's format (adapter_config.json + safetensors)."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm import load
    from mlx_lm.tuner.utils import linear_to_lora_layers

    model = load(str(model_dir))[0]
    lora = {"rank": 4, "scale": 4.0, "dropout": 0.0}
    linear_to_lora_layers(model, 2, lora)
    mx.random.seed(seed)
    params: Any = tree_flatten(model.parameters())
    weights = {
        k: mx.random.normal(v.shape) * 0.5 for k, v in params if k.endswith(("lora_a", "lora_b"))
    }
    out.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(str(out / "adapters.safetensors"), weights)
    config: dict[str, Any] = {"fine_tune_type": "lora", "num_layers": 2, "lora_parameters": lora}
    if base_sha256:
        config["base_model_sha256"] = base_sha256
    (out / "adapter_config.json").write_text(json.dumps(config))
    return out


def test_adapters_switch_without_reloading_and_switch_back(
    engine: MlxEngine, tiny_mlx_path: Path, tmp_path: Path
) -> None:
    msgs = chat("What does Anna like?")
    base = engine.chat(msgs, GREEDY)
    engine.load_adapter(
        "a",
        write_random_mlx_adapter(
            tiny_mlx_path, tmp_path / "a", seed=21, base_sha256=engine.model_sha256
        ),
    )
    engine.load_adapter("b", write_random_mlx_adapter(tiny_mlx_path, tmp_path / "b", seed=22))
    assert engine.chat(msgs, GREEDY) == base  # loaded, not active
    engine.set_adapter("a")
    out_a = engine.chat(msgs, GREEDY)
    engine.set_adapter("b")
    out_b = engine.chat(msgs, GREEDY)
    assert engine.adapter_id == "b"
    assert len({base, out_a, out_b}) == 3
    engine.set_adapter("a")
    assert engine.chat(msgs, GREEDY) == out_a
    engine.set_adapter(None)
    assert engine.chat(msgs, GREEDY) == base and engine.adapter_id == ""


def test_a_state_made_under_one_adapter_is_refused_under_another(
    engine: MlxEngine, tiny_mlx_path: Path, tmp_path: Path
) -> None:
    engine.load_adapter("a", write_random_mlx_adapter(tiny_mlx_path, tmp_path / "a", seed=21))
    engine.set_adapter("a")
    state = engine.save_prefix_state(PREFIX)
    assert state.adapter_id == "a"
    engine.set_adapter(None)
    assert not engine.restore_prefix_state(state, PREFIX)
    engine.set_adapter("a", scale=0.5)
    assert not engine.restore_prefix_state(state, PREFIX)  # the scale changes the cache too
    engine.set_adapter("a")
    assert engine.restore_prefix_state(state, PREFIX)


def test_a_mismatched_adapter_fails_clearly_and_the_engine_stays_usable(
    engine: MlxEngine, tmp_path: Path
) -> None:
    msgs = chat("hello")
    base = engine.chat(msgs, GREEDY)
    other = write_tiny_mlx_model(tmp_path / "narrow", seed=3, hidden=32)
    with pytest.raises(EngineError, match="does not fit"):
        engine.load_adapter("x", write_random_mlx_adapter(other, tmp_path / "x", seed=5))
    with pytest.raises(EngineError, match="another base model"):
        engine.load_adapter(
            "y", write_random_mlx_adapter(engine.path, tmp_path / "y", seed=6, base_sha256="0" * 64)
        )
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "adapter_config.json").write_text("{not json")
    with pytest.raises(EngineError, match="cannot be read"):
        engine.load_adapter("z", broken)
    with pytest.raises(EngineError, match="not loaded"):
        engine.set_adapter("x")
    assert engine.chat(msgs, GREEDY) == base


def test_prompt_too_long_and_closed_engine(engine: MlxEngine) -> None:
    with pytest.raises(EngineError, match="context window"):
        engine.chat(chat("tea " * 600), GREEDY)
    engine.close()
    with pytest.raises(EngineError, match="closed"):
        engine.count_tokens("x")


def test_not_a_model_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        MlxEngine(tmp_path)


def test_engine_selection(tiny_mlx_path: Path, tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert select_engine(gguf) == "llamacpp"
    assert select_engine(gguf, system="darwin", machine="arm64") == "llamacpp"
    assert select_engine(tiny_mlx_path) == "mlx"
    assert select_engine(tiny_mlx_path, system="darwin", machine="arm64") == "mlx"
    assert is_apple_silicon("darwin", "arm64") and not is_apple_silicon("linux", "x86_64")
    with pytest.raises(EngineError, match=r"needs a \.gguf"):
        select_engine(tiny_mlx_path, prefer="llamacpp")
    with pytest.raises(EngineError, match="not an MLX model"):
        select_engine(gguf, prefer="mlx")


def test_an_mlx_directory_resolves_as_a_model_id(tiny_mlx_path: Path) -> None:
    from memos_desktop.config import resolve_paths
    from memos_desktop.engines.loader import resolve

    r = resolve(resolve_paths(), str(tiny_mlx_path), kind="chat")
    assert r.path == tiny_mlx_path.resolve() and r.kind is None
    assert select_engine(r.path) == "mlx"
