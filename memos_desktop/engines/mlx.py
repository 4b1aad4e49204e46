"""The MLX chat engine (mlx-lm): the Apple-silicon back end, same ChatEngine Protocol as llama.cpp.

Design rules (shared with ``llamacpp.py``):
- Prompts are rendered by ``chat_format.PromptFormat`` (the tokenizer's chat template, or gemma /
  chatml) and tokenized as stable prefix + rest, so the prefix's tokens never depend on what
  follows and a saved prompt cache of the prefix fits every later prompt.
- Activation memory is the mlx-lm prompt cache of the prefix, serialised to bytes as safetensors
  (numpy arrays + JSON metadata: the cache classes and their scalars), never pickled and never
  written to disk by the engine (the store encrypts it). Keys are the same as for llama.cpp:
  (model sha256, adapter, prefix sha256, state-changing settings); a mismatch is refused.
- Between turns the engine keeps its cache trimmed to the last prompt, so a conversation that
  grows by a turn re-prefills only the new tokens.
- The model is an MLX/Hugging Face directory (config.json, *.safetensors, tokenizer files). Its
  sha256 is one hash over those files' sha256s (each cached by size and mtime).
- On Linux this runs with ``mlx-lm[cpu]`` (tests use a tiny random model they write).

- Parametric memory: MLX LoRA adapters (the ``mlx_lm.lora`` directory format) switch by
  swapping the LoRA weights in place, without reloading the base model; "no adapter" is B = 0.
  The prompt cache is cleared on every switch.

Not done yet (the llama.cpp engine has it): grammar-constrained JSON; here the answer is
generated, then parsed and schema-checked. MLX adapters are not GGUF LoRA files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memos_desktop.engines.base import (
    CancelToken,
    ChatMessage,
    FinishReason,
    KVState,
    SamplingParams,
    StreamChunk,
    common_prefix,
    final_chunk,
    holdback,
)
from memos_desktop.engines.chat_format import TURN_MARKERS, PromptFormat, prompt_style
from memos_desktop.engines.core import EngineCore
from memos_desktop.engines.files import default_sha_cache, model_sha256
from memos_desktop.engines.mlx_cache import cache_from_bytes, cache_len, cache_to_bytes
from memos_desktop.errors import EngineError, ModelNotFoundError

log = logging.getLogger(__name__)

_HASHED = ("config.json", "tokenizer.json", "tokenizer_config.json", "tokenizer.model")


@dataclass(frozen=True)
class MlxSettings:
    n_ctx: int = 4096  # the context window we account with (capped by the model's own)
    prefill_step: int = 512
    chat_format: str | None = None  # None: the tokenizer's template, else "gemma"/"chatml"
    prompt_style: str = "auto"  # as LlamaCppSettings.prompt_style

    def state_key(self) -> str:
        from importlib.metadata import version

        return f"mlx_lm={version('mlx-lm')};mlx={version('mlx')};n_ctx={self.n_ctx}"


def directory_sha256(path: Path, sha_cache: Path | None) -> str:
    """One sha256 over the sha256s of a model directory's weights, config and tokenizer."""
    files = sorted(p for p in path.iterdir() if p.suffix == ".safetensors" or p.name in _HASHED)
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.name}={model_sha256(f, sha_cache)}\n".encode())
    return h.hexdigest()


class MlxEngine(EngineCore):
    """An MLX chat model. Not thread-safe: one call at a time (cancel from any thread)."""

    settings: MlxSettings

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        settings: MlxSettings | None = None,
        *,
        model_id: str | None = None,
        sha_cache_file: Path | None = None,
    ) -> None:
        import mlx.core as mx
        from mlx_lm import load

        self._mx = mx
        self.settings = s = settings or MlxSettings()
        path = Path(model_path)
        if not (path / "config.json").is_file() or not any(path.glob("*.safetensors")):
            raise ModelNotFoundError(
                f"no MLX model at {path} (needs config.json and *.safetensors)",
                hint="give the directory of an MLX or Hugging Face safetensors model",
            )
        self.path = path
        self._model_id = model_id or path.name
        self._sha = directory_sha256(path, sha_cache_file or default_sha_cache())
        t0 = time.perf_counter()
        try:
            loaded = load(str(path))
            self._model, self._tok = loaded[0], loaded[1]
        except Exception as exc:  # mlx-lm raises many kinds for a bad directory
            raise EngineError(
                f"mlx-lm could not load {path}: {exc}",
                hint="check that it is a complete MLX model directory",
            ) from exc
        self.load_s = time.perf_counter() - t0
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        self._n_ctx = min(s.n_ctx, int(config.get("max_position_embeddings") or s.n_ctx))
        model_type = str(config.get("model_type", ""))
        template = getattr(self._tok, "chat_template", None)
        self._style = prompt_style(
            s.prompt_style,
            names=(path.name, self._model_id, str(config.get("_name_or_path", ""))),
            has_template=bool(template),
        )
        fmt = (
            "completion"
            if self._style == "completion"
            else s.chat_format
            or ("template" if template else "gemma" if model_type.startswith("gemma") else "chatml")
        )
        self._bos_text = str(getattr(self._tok, "bos_token", None) or "")
        bos_id = getattr(self._tok, "bos_token_id", None)
        self._bos_id: int | None = int(bos_id) if bos_id is not None else None
        probe = list(self._tok.encode("a", add_special_tokens=True))
        self._add_bos = self._bos_id is not None and probe[:1] == [self._bos_id]
        self._format = PromptFormat(
            fmt,
            template=template,
            bos_token=self._bos_text,
            eos_token=str(getattr(self._tok, "eos_token", None) or ""),
            model_id=self._model_id,
        )
        self.chat_format = fmt
        vocab = self._tok.get_vocab()
        self._stop_ids = set(self._tok.eos_token_ids) | {
            vocab[t] for t in TURN_MARKERS if t in vocab
        }
        self._n_vocab = int(config.get("vocab_size") or len(vocab))
        self._cache: list[Any] | None = None
        self._cache_tokens: list[int] = []
        self._adapters: dict[str, dict[str, Any]] = {}
        self._adapter = ""
        self._adapter_scale = 1.0
        self._lora_layout: str | None = None
        self._lora_shapes: dict[str, tuple[int, ...]] = {}
        self._busy = False
        self._closed = False
        log.info("loaded MLX model %s (%s) in %.2f s", path.name, model_type, self.load_s)

    # --- identity and tokens -------------------------------------------------------------------

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    def _encode(self, text: str, add_bos: bool) -> list[int]:
        ids = [int(t) for t in self._tok.encode(text, add_special_tokens=False)]
        if add_bos and self._bos_id is not None:
            ids.insert(0, self._bos_id)
        return ids

    # --- generation ----------------------------------------------------------------------------

    def chat_stream(
        self,
        messages: Sequence[ChatMessage],
        sampling: SamplingParams | None = None,
        cancel: CancelToken | None = None,
    ) -> Iterator[StreamChunk]:
        tokens = self._prompt_tokens(messages)
        s = sampling or SamplingParams()
        return self._generate(tokens, s, cancel, self._max_new(tokens, s))

    def complete_json(
        self,
        messages: Sequence[ChatMessage],
        json_schema: dict[str, Any],
        sampling: SamplingParams | None = None,
    ) -> dict[str, Any]:
        # No grammar sampler in mlx-lm: ask, then parse and check against the schema.
        chunks = list(self.chat_stream(messages, sampling or SamplingParams.greedy(512)))
        text = "".join(c.text for c in chunks).strip()
        start, end = text.find("{"), text.rfind("}")
        try:
            value = json.loads(text[start : end + 1]) if 0 <= start < end else None
        except ValueError:
            value = None
        return self._checked_json(
            value, json_schema, "retry; the MLX engine cannot constrain output to a grammar yet"
        )

    def _prepare_cache(self, tokens: list[int]) -> int:
        """Reuse the cached tokens that start ``tokens``; returns how many are reused."""
        from mlx_lm.models.cache import can_trim_prompt_cache, make_prompt_cache, trim_prompt_cache

        common = common_prefix(self._cache_tokens, tokens)
        common = min(common, len(tokens) - 1)  # generation needs at least one token to feed
        if self._cache is not None and common > 0:
            excess = cache_len(self._cache) - common
            if excess <= 0:
                return common
            if can_trim_prompt_cache(self._cache):
                trim_prompt_cache(self._cache, excess)
                self._cache_tokens = self._cache_tokens[:common]
                return common
        self._cache = make_prompt_cache(self._model)
        self._cache_tokens = []
        return 0

    def _generate(
        self, tokens: list[int], s: SamplingParams, cancel: CancelToken | None, max_new: int
    ) -> Iterator[StreamChunk]:
        from mlx_lm.generate import generate_step
        from mlx_lm.models.cache import can_trim_prompt_cache, trim_prompt_cache
        from mlx_lm.sample_utils import make_logits_processors, make_sampler

        self._check_idle()
        mx = self._mx
        self._busy = True
        reused = self._prepare_cache(tokens)
        assert self._cache is not None
        mx.random.seed(s.seed if s.seed is not None else int.from_bytes(os.urandom(4), "little"))
        greedy = s.temperature <= 0
        sampler = make_sampler(
            temp=max(s.temperature, 0.0),
            top_p=0.0 if greedy else s.top_p,
            min_p=0.0 if greedy else s.min_p,
            top_k=0 if greedy else s.top_k,
        )
        procs = make_logits_processors(
            repetition_penalty=s.repeat_penalty if s.repeat_penalty != 1.0 else None
        )
        stops = tuple(x for x in s.stop if x)
        out_ids: list[int] = []
        emitted = 0
        finish: FinishReason = "length"
        t0 = time.perf_counter()
        t_first: float | None = None
        gen = None
        try:
            if cancel is not None and cancel.cancelled:
                finish, max_new = "cancelled", 0
            if max_new > 0:
                gen = generate_step(
                    mx.array(tokens[reused:]),
                    self._model,
                    max_tokens=max_new,
                    sampler=sampler,
                    logits_processors=procs,
                    prompt_cache=self._cache,
                    prefill_step_size=self.settings.prefill_step,
                )
            while gen is not None and len(out_ids) < max_new:
                if cancel is not None and cancel.cancelled:
                    finish = "cancelled"
                    break
                try:
                    step = next(gen)
                except StopIteration:
                    break
                token = int(step[0])
                if t_first is None:
                    t_first = time.perf_counter()
                if token in self._stop_ids:
                    finish = "stop"
                    break
                out_ids.append(token)
                text = self._tok.decode(out_ids)
                if text.endswith("\ufffd"):  # half a UTF-8 character: wait for the rest
                    continue
                hit = min((i for i in (text.find(x, 0) for x in stops) if i >= 0), default=-1)
                if hit >= 0:
                    if hit > emitted:
                        yield StreamChunk(text[emitted:hit])
                    emitted = len(text)
                    finish = "stop"
                    break
                keep = holdback(text, stops)
                if len(text) - keep > emitted:
                    yield StreamChunk(text[emitted : len(text) - keep])
                    emitted = len(text) - keep
            tail = ""
            if finish != "stop" and out_ids:
                text = self._tok.decode(out_ids)
                tail = text[emitted:]
        finally:
            if gen is not None:
                gen.close()
            # Keep exactly the prompt in the cache: the next turn starts with it.
            if self._cache is not None:
                extra = cache_len(self._cache) - len(tokens)
                if extra > 0 and can_trim_prompt_cache(self._cache):
                    trim_prompt_cache(self._cache, extra)
                    self._cache_tokens = list(tokens)
                elif extra == 0:
                    self._cache_tokens = list(tokens)
                else:
                    self._cache, self._cache_tokens = None, []
            self._busy = False
        yield final_chunk(
            tail,
            prompt_tokens=len(tokens),
            completion_tokens=len(out_ids),
            t0=t0,
            t_first=t_first,
            t_end=time.perf_counter(),
            reused=reused,
            finish=finish,
        )

    # --- activation memory ---------------------------------------------------------------------

    def save_prefix_state(self, prefix: Sequence[ChatMessage]) -> KVState:
        from mlx_lm.models.cache import make_prompt_cache

        text, tokens = self._prefix_tokens(prefix)
        mx = self._mx
        cache = make_prompt_cache(self._model)
        step = max(1, self.settings.prefill_step)
        for i in range(0, len(tokens), step):
            self._model(mx.array(tokens[i : i + step])[None], cache=cache)
            mx.eval([c.state for c in cache])
        self._cache, self._cache_tokens = cache, list(tokens)
        return self._state(text, tokens, cache_to_bytes(cache))

    def restore_prefix_state(
        self, state: KVState, prefix: Sequence[ChatMessage] | None = None
    ) -> bool:
        if not self._restorable(state, prefix):
            return False
        n = state.n_tokens
        try:
            cache = cache_from_bytes(state.state)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("prompt cache rejected (damaged or from another mlx-lm): %s", exc)
            return False
        if cache_len(cache) != n:
            log.warning("prompt cache rejected: it holds %d tokens, not %d", cache_len(cache), n)
            return False
        self._cache, self._cache_tokens = cache, list(state.token_ids)
        return True

    # --- parametric memory ---------------------------------------------------------------------

    def load_adapter(self, adapter_id: str, path: str | os.PathLike[str]) -> None:
        """Load an MLX LoRA adapter directory (adapter_config.json + adapters.safetensors, as
        ``mlx_lm.lora`` writes) without activating it. The first adapter turns the model's
        linear layers into LoRA layers (zero update until one is set); later adapters must have
        the same layout (layers, rank, keys)."""
        import mlx.core as mx
        from mlx.utils import tree_flatten

        self._check_idle()
        if not adapter_id:
            raise EngineError("an adapter needs a non-empty id", hint="give it an id")
        d = Path(path)
        fix = "retrain it for this model, or roll back to the previous adapter"
        try:
            config = json.loads((d / "adapter_config.json").read_text(encoding="utf-8"))
            loaded: Any = mx.load(str(d / "adapters.safetensors"))
            if not isinstance(loaded, dict):
                raise ValueError("adapters.safetensors holds no named tensors")
            weights: dict[str, Any] = dict(loaded)
        except (OSError, ValueError, RuntimeError) as exc:
            raise EngineError(
                f"adapter {adapter_id!r} at {d} cannot be read: {exc}", hint=fix
            ) from exc
        if config.get("fine_tune_type", "lora") != "lora":
            raise EngineError(f"adapter {adapter_id!r} is not a LoRA adapter", hint=fix)
        base = config.get("base_model_sha256")
        if base and base != self._sha:
            raise EngineError(
                f"adapter {adapter_id!r} was made for another base model "
                f"(sha256 {str(base)[:12]}..., this one is {self._sha[:12]}...)",
                hint=fix,
            )
        layout = json.dumps(
            [config.get("num_layers"), config.get("lora_parameters")], sort_keys=True
        )
        if self._lora_layout is None:
            from mlx_lm.tuner.utils import linear_to_lora_layers

            try:
                linear_to_lora_layers(
                    self._model, int(config["num_layers"]), dict(config["lora_parameters"])
                )
            except (KeyError, ValueError, TypeError) as exc:
                raise EngineError(
                    f"adapter {adapter_id!r} has a bad config: {exc}", hint=fix
                ) from exc
            params: Any = tree_flatten(self._model.parameters())
            self._lora_shapes = {
                k: tuple(v.shape) for k, v in params if k.rsplit(".", 1)[-1] in ("lora_a", "lora_b")
            }
            self._lora_layout = layout
            self._apply_lora(None, 1.0)  # LoRA layers start random: zero them until one is set
        elif layout != self._lora_layout:
            raise EngineError(
                f"adapter {adapter_id!r} has another LoRA layout (layers/rank/keys) than the "
                "adapters already loaded",
                hint="train all of a model's adapters alike",
            )
        bad = [k for k, v in weights.items() if self._lora_shapes.get(k) != tuple(v.shape)]
        if bad or not weights:
            raise EngineError(
                f"adapter {adapter_id!r} does not fit {self.model_id} "
                f"({len(bad)} tensors of other names or shapes: made for another base model?)",
                hint=fix,
            )
        self._adapters[adapter_id] = weights
        if self._adapter == adapter_id:
            self._apply_lora(adapter_id, self._adapter_scale)

    def unload_adapter(self, adapter_id: str) -> None:
        if self._adapter == adapter_id:
            self.set_adapter(None)
        self._adapters.pop(adapter_id, None)

    def set_adapter(self, adapter_id: str | None, scale: float = 1.0) -> None:
        """Activate a loaded adapter (None: none) by swapping the LoRA weights in place: no
        model reload. Clears the prompt cache, which was computed under the old weights."""
        if not self._switch_needed(adapter_id, scale):
            return
        if self._lora_layout is not None:
            self._apply_lora(adapter_id, scale)
        self._cache, self._cache_tokens = None, []
        self._adapter = adapter_id or ""
        self._adapter_scale = scale if adapter_id else 1.0

    def _apply_lora(self, adapter_id: str | None, scale: float) -> None:
        mx = self._mx
        if adapter_id is None:
            # B = 0 makes every LoRA update zero: the base model's output exactly.
            items = [
                (k, mx.zeros(shape))
                for k, shape in self._lora_shapes.items()
                if k.endswith("lora_b")
            ]
        else:
            items = [
                (k, v * scale if k.endswith("lora_b") else v)
                for k, v in self._adapters[adapter_id].items()
            ]
        self._model.load_weights(items, strict=False)
        mx.eval(self._model.parameters())

    # --- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        self._closed = True
        self._cache, self._cache_tokens = None, []
        self._adapters.clear()
