"""The engine Protocols every back end implements (llama.cpp, MLX) and the embedder Protocol.

Design rule: the memory layer depends on these Protocols only, never on a back end's module;
``store`` and ``engines`` never import ``memory``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from memos_desktop.errors import InvalidInputError


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    @property
    def model_id(self) -> str:
        """Stable id of the embedding model (stored with every vector; a change means re-embed)."""
        ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Shape (len(texts), dim), float32, each row of unit length."""
        ...


# --- chat engines --------------------------------------------------------------------------------
#
# Rules every ChatEngine follows:
# - Messages are plain (role, content) pairs; the engine renders them with the model's own chat
#   template (or a known format when the model has none) and tokenizes them itself. A base
#   model (``prompt_style == "completion"``) gets their texts one after the other, no markers.
# - The *stable prefix* of a conversation is its block of leading system messages (persona + core
#   memories). The engine tokenizes that block on its own, so its token ids do not depend on what
#   follows; this is what lets a saved KV state of the prefix be reused by any later conversation.
# - A KVState is valid only for the exact model file, adapter, prefix and state-changing settings
#   it was made with; restore_prefix_state refuses (returns False, changes nothing) on any mismatch.
# - Switching the adapter clears the KV cache: a cached prefix computed under another adapter is
#   wrong for this one.


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system", "user" or "assistant"
    content: str


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings. ``temperature == 0`` means greedy (deterministic)."""

    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    max_tokens: int = 512
    seed: int | None = None
    stop: tuple[str, ...] = ()

    @staticmethod
    def greedy(max_tokens: int = 512, stop: tuple[str, ...] = ()) -> SamplingParams:
        return SamplingParams(
            temperature=0.0,
            top_p=1.0,
            top_k=1,
            min_p=0.0,
            repeat_penalty=1.0,
            max_tokens=max_tokens,
            seed=0,
            stop=stop,
        )


# The sampling settings a caller may set by name (``ask -o max_tokens=200``): type and range.
SAMPLING_OPTIONS: dict[str, tuple[type, float, float]] = {
    "max_tokens": (int, 1, 32768),
    "temperature": (float, 0.0, 2.0),
    "top_p": (float, 0.0, 1.0),
    "top_k": (int, 0, 1000),
    "min_p": (float, 0.0, 1.0),
    "repeat_penalty": (float, 0.5, 2.0),
    "seed": (int, 0, 2**31 - 1),
}


def parse_options(pairs: Sequence[str] | Mapping[str, Any]) -> dict[str, int | float]:
    """``["max_tokens=200", "temperature=0.2"]`` (or a mapping) as checked sampling options.
    InvalidInputError, naming the known options or the valid range, for anything else."""
    items: list[tuple[str, Any]] = []
    if isinstance(pairs, Mapping):
        items = list(pairs.items())
    else:
        for p in pairs:
            key, eq, value = p.partition("=")
            if not eq:
                raise InvalidInputError(
                    f"option {p!r} is not NAME=VALUE", hint="e.g. -o max_tokens=200"
                )
            items.append((key, value))
    known = ", ".join(SAMPLING_OPTIONS)
    out: dict[str, int | float] = {}
    for key, raw in items:
        k = str(key).strip().replace("-", "_")
        if k not in SAMPLING_OPTIONS:
            raise InvalidInputError(f"unknown option {key!r}", hint=f"known options: {known}")
        want, lo, hi = SAMPLING_OPTIONS[k]
        try:
            if isinstance(raw, bool):
                raise ValueError
            value = want(str(raw).strip()) if isinstance(raw, str) else want(raw)
            if want is int and isinstance(raw, float) and raw != int(raw):
                raise ValueError
        except (TypeError, ValueError):
            kind = "a whole number" if want is int else "a number"
            raise InvalidInputError(
                f"option {k} must be {kind}, got {raw!r}", hint=f"e.g. {k}={lo:g}"
            ) from None
        if not (lo <= value <= hi):  # NaN fails too
            raise InvalidInputError(
                f"option {k} must be between {lo:g} and {hi:g}, got {raw!r}",
                hint=f"choose a value from {lo:g} to {hi:g}",
            )
        out[k] = value
    return out


def with_options(s: SamplingParams, options: Mapping[str, int | float]) -> SamplingParams:
    """``s`` with the caller's options. Raising the temperature of greedy settings also gives
    them the default nucleus settings (greedy ones keep only the top token)."""
    if not options:
        return s
    opts: dict[str, Any] = dict(options)
    if opts.get("temperature", 0) > 0 and s.temperature == 0:
        d = SamplingParams()
        for name in ("top_k", "top_p", "min_p"):
            opts.setdefault(name, getattr(d, name))
    return replace(s, **opts)


FinishReason = Literal["stop", "length", "cancelled"]


@dataclass(frozen=True)
class GenerationStats:
    prompt_tokens: int
    completion_tokens: int
    ttft_s: float  # from the call to the first generated token
    tokens_per_s: float  # generation speed after the first token
    prefix_tokens_reused: int  # prompt tokens whose KV was already in the cache (not re-prefilled)
    finish_reason: FinishReason


@dataclass(frozen=True)
class StreamChunk:
    """A piece of generated text; the last chunk of a stream carries ``stats`` (text may be "")."""

    text: str
    stats: GenerationStats | None = None


def final_chunk(
    text: str,
    *,
    prompt_tokens: int,
    completion_tokens: int,
    t0: float,
    t_first: float | None,
    t_end: float,
    reused: int,
    finish: FinishReason,
) -> StreamChunk:
    """The last chunk of a stream, with its stats (shared by every back end)."""
    first = t_first if t_first is not None else t_end
    n = completion_tokens
    rate = (n - 1) / (t_end - first) if n > 1 and t_end > first else 0.0
    return StreamChunk(
        text,
        GenerationStats(
            prompt_tokens=prompt_tokens,
            completion_tokens=n,
            ttft_s=first - t0,
            tokens_per_s=rate,
            prefix_tokens_reused=reused,
            finish_reason=finish,
        ),
    )


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token lists (KV-cache reuse)."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def holdback(text: str, stops: Sequence[str]) -> int:
    """Length of the longest tail of ``text`` that is a proper prefix of a stop string: that
    much of a stream is held back, since it could still grow into the stop string."""
    best = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:k]):
                best = k
                break
    return best


def release(pending: str, stops: Sequence[str]) -> tuple[str, str, bool]:
    """One step of a stream with stop strings: (text safe to yield now, text held back,
    whether a stop string was reached; if so the held text ends before it)."""
    hit = min((i for i in (pending.find(x) for x in stops) if i >= 0), default=-1)
    if hit >= 0:
        return "", pending[:hit], True
    keep = holdback(pending, stops)
    cut = len(pending) - keep
    return pending[:cut], pending[cut:], False


class CancelToken:
    """Cancels a generation from another thread; engines check it between tokens."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass(frozen=True)
class KVState:
    """The saved KV cache of a token prefix (activation memory). Bytes only: never pickled.

    ``key`` identifies what the state is valid for; a state is restored only when all four parts
    equal the engine's current ones (model file, adapter, prefix text, state-changing settings).
    """

    model_sha256: str
    adapter_id: str  # "" when no adapter was active; "<id>@<scale>" when its scale is not 1
    prefix_sha256: str  # sha256 of the rendered prefix text the tokens came from
    settings_key: str  # e.g. "n_ctx=4096;type_k=1;type_v=1;flash_attn=0;..."
    token_ids: tuple[int, ...]
    state: bytes
    n_tokens: int

    @staticmethod
    def from_record(r: Any) -> KVState:
        """Build one from any object with the same fields (e.g. the store's ActivationState)."""
        return KVState(
            model_sha256=r.model_sha256,
            adapter_id=r.adapter_id,
            prefix_sha256=r.prefix_sha256,
            settings_key=r.settings_key,
            token_ids=tuple(r.token_ids),
            state=bytes(r.state),
            n_tokens=int(r.n_tokens),
        )

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.model_sha256, self.adapter_id, self.prefix_sha256, self.settings_key)

    @property
    def size_bytes(self) -> int:
        return len(self.state) + 4 * len(self.token_ids)


def has_activation_memory(engine: object) -> bool:
    """Whether the engine's KV cache is in this process, so prefix states can be saved and
    restored. An engine says it has none with ``activation_memory = False`` (a model on a
    server: its cache is the server's)."""
    return bool(getattr(engine, "activation_memory", True))


@runtime_checkable
class ChatEngine(Protocol):
    """A loaded chat model. Not thread-safe: one generation at a time (cancel from any thread)."""

    @property
    def model_id(self) -> str:
        """Human-readable id of the model (file stem or catalog id)."""
        ...

    @property
    def model_sha256(self) -> str:
        """sha256 of the model file (cached by path, size and mtime)."""
        ...

    @property
    def n_ctx(self) -> int: ...

    @property
    def adapter_id(self) -> str:
        """The active adapter's id, "" when none."""
        ...

    @property
    def settings_key(self) -> str:
        """The engine settings that change a KV state, as a stable string."""
        ...

    @property
    def prompt_style(self) -> str:
        """ "completion" for a base model (prompts are plain text the model continues; it gets
        few-shot prompts), "chat" for an instruction-tuned one (its own chat template)."""
        ...

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` (no BOS, special tokens parsed)."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def count_message_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Tokens the rendered prompt of ``messages`` takes (generation prompt included)."""
        ...

    def remaining_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Tokens left for the answer: ``n_ctx - count_message_tokens(messages)`` (may be <= 0)."""
        ...

    def chat_stream(
        self,
        messages: Sequence[ChatMessage],
        sampling: SamplingParams | None = None,
        cancel: CancelToken | None = None,
    ) -> Iterator[StreamChunk]:
        """Yield the answer as it is generated; the last chunk carries stats.

        Cancelling stops within one token; the stream then ends with finish_reason "cancelled".
        Raises EngineError if the prompt does not fit the context window.
        """
        ...

    def chat(
        self,
        messages: Sequence[ChatMessage],
        sampling: SamplingParams | None = None,
        cancel: CancelToken | None = None,
    ) -> str: ...

    def complete_json(
        self,
        messages: Sequence[ChatMessage],
        json_schema: dict[str, Any],
        sampling: SamplingParams | None = None,
    ) -> dict[str, Any]:
        """Grammar-constrained answer that parses as JSON and follows ``json_schema``."""
        ...

    def prefix_sha256(self, prefix: Sequence[ChatMessage]) -> str:
        """sha256 of the rendered prefix text: the key under which its KVState is stored."""
        ...

    def save_prefix_state(self, prefix: Sequence[ChatMessage]) -> KVState:
        """Prefill the stable prefix ``prefix`` (normally the leading system messages) and return
        its KV state, keyed on the current model, adapter and settings."""
        ...

    def restore_prefix_state(
        self, state: KVState, prefix: Sequence[ChatMessage] | None = None
    ) -> bool:
        """Load ``state`` into the KV cache so a prompt starting with its prefix is not
        re-prefilled. Returns False, and changes nothing, when the key does not match the
        engine's model, adapter and settings (and ``prefix``'s sha256, when given)."""
        ...

    def load_adapter(self, adapter_id: str, path: str | os.PathLike[str]) -> None:
        """Load a GGUF LoRA adapter (not yet active). Raises EngineError for a corrupt adapter or
        one made for another base model; the engine stays usable. An id must always name the
        same weights (use the store's adapter id): KV states are keyed on it."""
        ...

    def set_adapter(self, adapter_id: str | None, scale: float = 1.0) -> None:
        """Make a loaded adapter active (None: no adapter). Clears the KV cache on change."""
        ...

    def close(self) -> None: ...
