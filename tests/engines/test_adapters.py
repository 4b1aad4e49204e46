"""Parametric memory with the tiny model: load LoRA adapters, switch them at run time without
reloading the base model, and refuse bad adapters while the engine stays usable."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest

from memos_desktop.engines.base import ChatMessage, SamplingParams
from memos_desktop.engines.gguf_meta import check_lora_adapter
from memos_desktop.engines.llamacpp import LlamaCppEngine
from memos_desktop.errors import EngineError
from tests.fixtures.tiny_model import write_random_lora, write_tiny_model

CHAT = [ChatMessage("user", "Tell me something about my day.")]
GREEDY = SamplingParams.greedy(24)


def test_switching_adapters_changes_output_and_back(
    tiny: LlamaCppEngine, tiny_adapters: tuple[Path, Path]
) -> None:
    base = tiny.chat(CHAT, GREEDY)
    tiny.load_adapter("a", tiny_adapters[0])
    tiny.load_adapter("b", tiny_adapters[1])
    assert tiny.loaded_adapters == ("a", "b")
    assert tiny.chat(CHAT, GREEDY) == base  # loading is not activating
    tiny.set_adapter("a")
    out_a = tiny.chat(CHAT, GREEDY)
    tiny.set_adapter("b")
    out_b = tiny.chat(CHAT, GREEDY)
    assert len({base, out_a, out_b}) == 3
    tiny.set_adapter("a")
    assert tiny.chat(CHAT, GREEDY) == out_a
    tiny.set_adapter(None)
    assert tiny.chat(CHAT, GREEDY) == base
    tiny.set_adapter("a", scale=0.0)
    assert tiny.chat(CHAT, GREEDY) == base  # a zero-scaled adapter is the base model


def test_adapter_from_bytes_matches_adapter_from_file(
    tiny: LlamaCppEngine, tiny_adapters: tuple[Path, Path]
) -> None:
    tiny.load_adapter("file", tiny_adapters[0])
    tiny.load_adapter_bytes("mem", tiny_adapters[0].read_bytes())
    tiny.set_adapter("file")
    from_file = tiny.chat(CHAT, GREEDY)
    tiny.set_adapter("mem")
    assert tiny.chat(CHAT, GREEDY) == from_file


def test_reloading_an_active_adapter_applies_the_new_one(
    tiny: LlamaCppEngine, tiny_adapters: tuple[Path, Path]
) -> None:
    tiny.load_adapter("b", tiny_adapters[1])
    tiny.set_adapter("b")
    out_b = tiny.chat(CHAT, GREEDY)
    tiny.load_adapter("x", tiny_adapters[0])
    tiny.set_adapter("x")
    out_a = tiny.chat(CHAT, GREEDY)
    tiny.load_adapter("x", tiny_adapters[1])  # same id, new weights, while active
    assert tiny.chat(CHAT, GREEDY) == out_b != out_a
    tiny.unload_adapter("x")
    assert tiny.adapter_id == "" and "x" not in tiny.loaded_adapters


def _assert_refused_and_usable(engine: LlamaCppEngine, path: Path, match: str, base: str) -> None:
    with pytest.raises(EngineError, match=match) as err:
        engine.load_adapter("bad", path)
    assert err.value.hint
    assert "bad" not in engine.loaded_adapters
    assert engine.chat(CHAT, GREEDY) == base


def test_adapter_for_another_base_file_is_refused(
    tiny: LlamaCppEngine, tiny_other_path: Path, tmp_path: Path
) -> None:
    base = tiny.chat(CHAT, GREEDY)
    # Same architecture and shapes, but made for another model file: caught by its base sha256.
    other = write_random_lora(tiny_other_path, tmp_path / "other.gguf", seed=3)
    _assert_refused_and_usable(tiny, other, "another base model", base)


def test_adapter_with_other_shapes_is_refused_by_llama_cpp(
    tiny: LlamaCppEngine, tmp_path: Path
) -> None:
    base = tiny.chat(CHAT, GREEDY)
    wide = write_tiny_model(tmp_path / "wide.gguf", n_embd=96, n_head=4, n_head_kv=2)
    # No base sha256 recorded (a foreign adapter): llama.cpp's own shape check refuses it.
    lora = write_random_lora(wide, tmp_path / "wide-lora.gguf", seed=4, base_sha256="")
    _assert_refused_and_usable(tiny, lora, "do not fit", base)


def test_damaged_adapters_are_refused(
    tiny: LlamaCppEngine, tiny_adapters: tuple[Path, Path], tmp_path: Path
) -> None:
    base = tiny.chat(CHAT, GREEDY)
    data = tiny_adapters[0].read_bytes()
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(data[: len(data) - 100])
    _assert_refused_and_usable(tiny, truncated, "truncated or damaged", base)
    header_only = tmp_path / "header.gguf"
    header_only.write_bytes(data[:60])
    _assert_refused_and_usable(tiny, header_only, "not a valid GGUF", base)
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"\x00" * 4096)
    _assert_refused_and_usable(tiny, garbage, "not a GGUF", base)
    with pytest.raises(EngineError):
        tiny.load_adapter_bytes("bad", data[:1000])
    assert tiny.chat(CHAT, GREEDY) == base


def test_a_model_file_is_not_an_adapter(tiny: LlamaCppEngine, tiny_path: Path) -> None:
    base = tiny.chat(CHAT, GREEDY)
    _assert_refused_and_usable(tiny, tiny_path, "not a LoRA adapter", base)


def test_float64_adapter_is_refused_before_llama_cpp(tiny_path: Path, tmp_path: Path) -> None:
    # llama.cpp crashes the process on a float64 LoRA: it must never get one.
    path = tmp_path / "f64.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 8.0)
    w.add_tensor("blk.0.attn_q.weight.lora_a", np.zeros((8, 64), dtype=np.float64))
    w.add_tensor("blk.0.attn_q.weight.lora_b", np.zeros((64, 8), dtype=np.float64))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(EngineError, match="unsupported type"):
        check_lora_adapter(path, architecture="llama")


def test_adapter_for_another_architecture_is_refused(
    tiny: LlamaCppEngine, tiny_adapters: tuple[Path, Path]
) -> None:
    with pytest.raises(EngineError, match="for a llama model, not gemma3"):
        check_lora_adapter(tiny_adapters[0], architecture="gemma3")


def test_unknown_adapter_cannot_be_set(tiny: LlamaCppEngine) -> None:
    with pytest.raises(EngineError, match="not loaded"):
        tiny.set_adapter("nope")
