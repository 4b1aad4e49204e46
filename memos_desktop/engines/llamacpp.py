"""The llama.cpp chat engine (llama-cpp-python): generation, activation memory, parametric memory.

Design rules:
- Prompts are rendered by ``chat_format`` (the GGUF's own chat template, or a known format
  where it has none; plain text for a base model, see ``prompt_style``) and tokenized in two
  pieces: the *stable prefix* (the leading system
  messages) and the rest. The prefix's token ids therefore never depend on what follows, so a
  saved KV state of the prefix matches every later prompt.
- Activation memory is ``llama_state_seq_get_data`` bytes plus the token ids, never a pickled
  ``LlamaState`` (it drags a 512 MB logits array). After ``llama_state_seq_set_data`` we set
  ``input_ids[:n]`` and ``n_tokens`` so llama-cpp-python's prefix matching reuses the cache.
- A state is keyed on (model file sha256, adapter, prefix sha256, settings that change the state,
  llama-cpp-python version); any mismatch is refused, never "mostly" restored.
- ``swa_full`` is on by default: with a sliding-window cache (Gemma 3), cutting the cache back to
  a prefix after a longer prompt would otherwise keep a window that lost cells, and
  llama-cpp-python would reuse it silently wrong.
- Adapters switch with ``llama_set_adapters_lora`` without reloading the base model; every switch
  clears the KV cache, because a cache computed under one adapter is wrong under another.
- Special tokens never reach the text: a generated turn marker (or, for a base model, any
  control token) ends the answer, since the model is starting a turn of its own.
- Nothing here logs or writes prompt text, answers or state bytes.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llama_cpp
from llama_cpp.llama_grammar import LlamaGrammar

from memos_desktop.engines import llama_native as native
from memos_desktop.engines.base import (
    CancelToken,
    ChatMessage,
    FinishReason,
    KVState,
    SamplingParams,
    StreamChunk,
    final_chunk,
    release,
)
from memos_desktop.engines.chat_format import TURN_MARKERS, PromptFormat, prompt_style
from memos_desktop.engines.core import EngineCore
from memos_desktop.engines.files import check_gguf, default_sha_cache, memory_file, model_sha256
from memos_desktop.engines.gguf_meta import BASE_SHA_KEY, GGUFHeader, check_lora_adapter
from memos_desktop.errors import EngineError, InvalidInputError

log = logging.getLogger(__name__)

KV_TYPES = {
    "f32": llama_cpp.GGML_TYPE_F32,
    "f16": llama_cpp.GGML_TYPE_F16,
    "q8_0": llama_cpp.GGML_TYPE_Q8_0,
    "q4_0": llama_cpp.GGML_TYPE_Q4_0,
}


@dataclass(frozen=True)
class LlamaCppSettings:
    n_ctx: int = 4096
    n_batch: int = 512
    # None: llama-cpp-python's defaults (half the cores for generation, all for prompt eval).
    # On a busy machine fewer threads can be much faster: llama.cpp's threads spin while waiting.
    n_threads: int | None = None
    n_threads_batch: int | None = None
    type_k: str = "f16"  # KV cache types: f16, q8_0 (q8_0 V needs flash_attn), q4_0, f32
    type_v: str = "f16"
    flash_attn: bool = False
    swa_full: bool = True  # see the module docstring
    chat_format: str | None = None  # None: the GGUF's template, else "gemma"/"chatml" by arch
    # "auto": a base model gets the plain "completion" format, an instruct model its chat
    # format (chat_format.prompt_style); "completion" / "chat" force one.
    prompt_style: str = "auto"

    def state_key(self) -> str:
        """The settings a KV state depends on (n_batch and threads do not change its content)."""
        return (
            f"llama_cpp={llama_cpp.__version__};n_ctx={self.n_ctx};type_k={self.type_k};"
            f"type_v={self.type_v};flash_attn={int(self.flash_attn)};"
            f"swa_full={int(self.swa_full)}"
        )


# --- the engine --------------------------------------------------------------------------------


class LlamaCppEngine(EngineCore):
    """A GGUF chat model in llama.cpp. Not thread-safe: one call at a time (cancel from any)."""

    settings: LlamaCppSettings

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        settings: LlamaCppSettings | None = None,
        *,
        model_id: str | None = None,
        sha_cache_file: Path | None = None,
    ) -> None:
        self.settings = s = settings or LlamaCppSettings()
        path = Path(model_path)
        check_gguf(path, "model")
        if s.type_k not in KV_TYPES or s.type_v not in KV_TYPES:
            raise InvalidInputError(
                f"unknown KV cache type {s.type_k!r}/{s.type_v!r}",
                hint=f"use one of {', '.join(KV_TYPES)}",
            )
        if s.type_v != "f16" and s.type_v != "f32" and not s.flash_attn:
            raise InvalidInputError(
                "a quantized V cache needs flash attention",
                hint="set flash_attn = true or type_v = 'f16'",
            )
        self.path = path
        self._model_id = model_id or path.stem
        self._sha = model_sha256(path, sha_cache_file or default_sha_cache())
        native.keep_stdio()
        t0 = time.perf_counter()
        try:
            self._llama = llama_cpp.Llama(
                str(path),
                n_ctx=s.n_ctx,
                n_batch=s.n_batch,
                n_threads=s.n_threads,
                n_threads_batch=s.n_threads_batch,
                type_k=KV_TYPES[s.type_k],
                type_v=KV_TYPES[s.type_v],
                flash_attn=s.flash_attn,
                swa_full=s.swa_full,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise EngineError(
                f"llama.cpp could not load {path.name}: the file is damaged or is not a model "
                "this version of llama.cpp supports",
                hint="delete it and fetch it again with `memos-desktop models pull <id>`",
            ) from exc
        self.load_s = time.perf_counter() - t0
        meta = self._llama.metadata
        self._arch = meta.get("general.architecture", "")
        template = meta.get("tokenizer.chat_template")
        try:
            self._style = prompt_style(
                s.prompt_style,
                names=(
                    meta.get("general.name", ""),
                    meta.get("general.finetune", ""),
                    path.stem,
                    self._model_id,
                ),
                has_template=bool(template),
            )
        except InvalidInputError:
            self._llama.close()
            raise
        fmt = (
            "completion"
            if self._style == "completion"
            else s.chat_format
            or ("template" if template else "gemma" if self._arch.startswith("gemma") else "chatml")
        )
        model = self._llama._model
        self._bos_text = model.token_get_text(model.token_bos()) if model.token_bos() >= 0 else ""
        self._add_bos = bool(model.add_bos_token())
        eos = model.token_eos()
        try:
            self._format = PromptFormat(
                fmt,
                template=template,
                bos_token=self._bos_text,
                model_id=self._model_id,
                eos_token=model.token_get_text(eos) if eos >= 0 else "",
            )
        except Exception:
            self._llama.close()
            raise
        self.chat_format = fmt
        self._vocab = llama_cpp.llama_model_get_vocab(self._llama.model)
        self._n_vocab = self._llama.n_vocab()
        self._stop_ids = {t for t in (self._special_id(m) for m in TURN_MARKERS) if t is not None}
        self._adapters: dict[str, Any] = {}
        self._adapter: str = ""
        self._adapter_scale = 1.0
        self._busy = False
        self._closed = False
        log.info(
            "loaded %s (%s, %s model, format %s) in %.2f s",
            path.name,
            self._arch,
            self._style,
            fmt,
            self.load_s,
        )

    # --- identity and tokens -------------------------------------------------------------------

    @property
    def n_ctx(self) -> int:
        return int(self._llama.n_ctx())

    def _special_id(self, text: str) -> int | None:
        ids = self._llama.tokenize(text.encode(), add_bos=False, special=True)
        return (
            ids[0] if len(ids) == 1 and self._llama._model.token_get_text(ids[0]) == text else None
        )

    def ends_answer(self, token: int) -> bool:
        """End of generation, a turn marker, or (a base model) any special token: each would
        show as nothing or as marker text, and what follows is a turn the model made up."""
        if token in self._stop_ids or native.is_end_of_generation(self._vocab, token):
            return True
        return self._style == "completion" and native.is_special(self._vocab, token)

    def _encode(self, text: str, add_bos: bool) -> list[int]:
        return list(self._llama.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True))

    # --- generation ----------------------------------------------------------------------------

    def chat_stream(
        self,
        messages: Sequence[ChatMessage],
        sampling: SamplingParams | None = None,
        cancel: CancelToken | None = None,
    ) -> Iterator[StreamChunk]:
        return self._stream(self._prompt_tokens(messages), sampling or SamplingParams(), cancel)

    def complete_json(
        self,
        messages: Sequence[ChatMessage],
        json_schema: dict[str, Any],
        sampling: SamplingParams | None = None,
    ) -> dict[str, Any]:
        try:
            grammar = LlamaGrammar.from_json_schema(json.dumps(json_schema), verbose=False)
        except Exception as exc:
            raise InvalidInputError(
                f"this JSON schema cannot be turned into a grammar: {exc}",
                hint="simplify the schema (no remote $ref)",
            ) from exc
        chunks = list(
            self._stream(
                self._prompt_tokens(messages), sampling or SamplingParams.greedy(512), None, grammar
            )
        )
        text = "".join(c.text for c in chunks)
        stats = chunks[-1].stats
        try:
            value = json.loads(text)
        except ValueError as exc:
            cut = stats is not None and stats.finish_reason == "length"
            raise EngineError(
                "the model's structured answer was " + ("cut off" if cut else "not valid JSON"),
                hint="raise max_tokens" if cut else "retry; report this if it repeats",
            ) from exc
        # The grammar fixes the shape, not every keyword (numeric bounds are not enforced).
        return self._checked_json(value, json_schema, "give the schema an object at its root")

    def _stream(
        self,
        tokens: list[int],
        s: SamplingParams,
        cancel: CancelToken | None,
        grammar: LlamaGrammar | None = None,
    ) -> Iterator[StreamChunk]:
        self._check_open()
        return self._generate(tokens, s, cancel, grammar, self._max_new(tokens, s))

    def _generate(
        self,
        tokens: list[int],
        s: SamplingParams,
        cancel: CancelToken | None,
        grammar: LlamaGrammar | None,
        max_new: int,
    ) -> Iterator[StreamChunk]:
        if self._busy:
            raise EngineError(
                "the engine is already generating", hint="cancel the running answer first"
            )
        self._busy = True
        lm = self._llama
        reused = max(native.cached_prefix(lm, tokens), 0)
        lm.set_seed(s.seed if s.seed is not None else int.from_bytes(os.urandom(4), "little"))
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        stops = tuple(x for x in s.stop if x)
        pending = ""
        n_out = 0
        finish: FinishReason = "length"
        t0 = time.perf_counter()
        t_first: float | None = None
        gen = None
        try:
            if cancel is not None and not native.prefill(
                lm, tokens, reused, self.settings.n_batch, lambda: cancel.cancelled
            ):
                max_new = 0
                finish = "cancelled"
            gen = lm.generate(
                tokens,
                top_k=s.top_k if s.temperature > 0 else 1,
                top_p=s.top_p,
                min_p=s.min_p,
                temp=s.temperature,
                repeat_penalty=s.repeat_penalty,
                grammar=grammar,
            )
            while n_out < max_new:
                if cancel is not None and cancel.cancelled:
                    finish = "cancelled"
                    break
                try:
                    token = next(gen)
                except StopIteration:
                    finish = "stop"
                    break
                if t_first is None:
                    t_first = time.perf_counter()
                if self.ends_answer(token):
                    finish = "stop"
                    break
                n_out += 1
                pending += decoder.decode(native.token_piece(self._vocab, token))
                # Hold back a tail that could still grow into a stop string.
                out, pending, stopped = release(pending, stops)
                if stopped:
                    finish = "stop"
                    break
                if out:
                    yield StreamChunk(out)
            if finish != "stop":
                pending += decoder.decode(b"", final=True)
        finally:
            if gen is not None:
                gen.close()
            self._busy = False
        yield final_chunk(
            pending,
            prompt_tokens=len(tokens),
            completion_tokens=n_out,
            t0=t0,
            t_first=t_first,
            t_end=time.perf_counter(),
            reused=reused,
            finish=finish,
        )

    # --- activation memory ---------------------------------------------------------------------

    def save_prefix_state(self, prefix: Sequence[ChatMessage]) -> KVState:
        text, tokens = self._prefix_tokens(prefix)
        native.prefill_exactly(self._llama, tokens)
        data = native.copy_seq_state(self._llama.ctx)
        if not data:
            raise EngineError(
                "llama.cpp could not copy the KV state",
                hint="report this bug; chat still works without it",
            )
        return self._state(text, tokens, data)

    def restore_prefix_state(
        self, state: KVState, prefix: Sequence[ChatMessage] | None = None
    ) -> bool:
        if not self._restorable(state, prefix):
            return False
        if not native.restore_cache(self._llama, state.token_ids, state.state):
            log.warning("KV state rejected by llama.cpp (damaged or from another build)")
            return False
        return True

    # --- parametric memory ---------------------------------------------------------------------

    def load_adapter(self, adapter_id: str, path: str | os.PathLike[str]) -> None:
        self._check_idle()
        p = Path(path)
        check_gguf(p, "adapter")
        # Checked in Python first: llama.cpp trusts the file and can crash on a bad one.
        header = check_lora_adapter(p, architecture=self._arch, name=f"adapter {adapter_id!r}")
        self._install_adapter(
            adapter_id,
            header,
            lambda model: native.lora_from_path(model, os.fsencode(p)),
        )

    def load_adapter_bytes(self, adapter_id: str, data: bytes) -> None:
        """Load an adapter from bytes (decrypted from the store) without writing them to disk:
        llama.cpp reads them through an in-memory ``FILE*`` (POSIX ``fmemopen``)."""
        self._check_idle()
        header = check_lora_adapter(data, architecture=self._arch, name=f"adapter {adapter_id!r}")
        with memory_file(data) as fp:
            self._install_adapter(
                adapter_id,
                header,
                lambda model: native.lora_from_file_ptr(model, fp),
            )

    def _install_adapter(
        self, adapter_id: str, header: GGUFHeader, init: Callable[[Any], Any]
    ) -> None:
        if not adapter_id:
            raise InvalidInputError("an adapter needs a non-empty id")
        fix = "retrain it for this model, or roll back to the previous adapter"
        base = header.get_str(BASE_SHA_KEY)
        if base and base != self._sha:
            raise EngineError(
                f"adapter {adapter_id!r} was made for another base model file "
                f"(sha256 {base[:12]}..., this one is {self._sha[:12]}...)",
                hint=fix,
            )
        adapter = init(self._llama.model)
        if not adapter:
            raise EngineError(
                f"adapter {adapter_id!r} could not be loaded: its tensors do not fit "
                f"{self.model_id} (made for another base model?) or it is damaged",
                hint=fix,
            )
        old = self._adapters.pop(adapter_id, None)
        self._adapters[adapter_id] = adapter
        if old is not None:
            if self._adapter == adapter_id:
                self._apply_adapter(adapter_id, self._adapter_scale)
            native.free_lora(old)

    def unload_adapter(self, adapter_id: str) -> None:
        if self._adapter == adapter_id:
            self.set_adapter(None)
        adapter = self._adapters.pop(adapter_id, None)
        if adapter is not None:
            native.free_lora(adapter)

    def set_adapter(self, adapter_id: str | None, scale: float = 1.0) -> None:
        if self._switch_needed(adapter_id, scale):
            self._apply_adapter(adapter_id, scale)

    def _apply_adapter(self, adapter_id: str | None, scale: float) -> None:
        adapter = self._adapters[adapter_id] if adapter_id else None
        rc = native.set_lora(self._llama.ctx, adapter, scale)
        if rc != 0:
            raise EngineError(
                f"llama.cpp refused adapter {adapter_id!r} (code {rc})",
                hint="roll back to the previous adapter",
            )
        native.clear(self._llama)
        self._adapter = adapter_id or ""
        self._adapter_scale = scale if adapter_id else 1.0

    # --- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            native.set_lora(self._llama.ctx, None)
        for adapter in self._adapters.values():
            native.free_lora(adapter)
        self._adapters.clear()
        self._llama.close()
