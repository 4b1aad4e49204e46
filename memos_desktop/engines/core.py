"""What both chat back ends (llama.cpp, MLX) do alike: identity, tokenizing a rendered prompt as
stable prefix + rest, the context budget, JSON answers checked against their schema, the
activation-memory key check, adapter bookkeeping and the engine's lifetime.

A back end subclasses ``EngineCore`` and provides ``_encode`` (text -> ids, with or without
BOS), ``n_ctx``, generation, and the native parts of KV state and adapters.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any, Protocol, Self

from memos_desktop.engines.base import (
    CancelToken,
    ChatMessage,
    KVState,
    SamplingParams,
    StreamChunk,
)
from memos_desktop.engines.chat_format import PromptFormat
from memos_desktop.engines.schema_check import schema_errors
from memos_desktop.errors import EngineError

log = logging.getLogger(__name__)


class _StateKeyed(Protocol):
    def state_key(self) -> str: ...


class EngineCore:
    settings: _StateKeyed
    _model_id: str
    _sha: str
    _format: PromptFormat
    _style: str  # "completion" (a base model) or "chat"
    _bos_text: str
    _add_bos: bool
    _n_vocab: int
    _adapters: dict[str, Any]
    _adapter: str
    _adapter_scale: float
    _busy: bool
    _closed: bool

    # --- provided by the back end -----------------------------------------------------------

    @property
    def n_ctx(self) -> int:
        raise NotImplementedError

    def _encode(self, text: str, add_bos: bool) -> list[int]:
        raise NotImplementedError

    def chat_stream(
        self,
        messages: Sequence[ChatMessage],
        sampling: SamplingParams | None = None,
        cancel: CancelToken | None = None,
    ) -> Iterator[StreamChunk]:
        raise NotImplementedError

    # --- identity ---------------------------------------------------------------------------

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def model_sha256(self) -> str:
        return self._sha

    @property
    def adapter_id(self) -> str:
        return self._adapter

    @property
    def settings_key(self) -> str:
        return self.settings.state_key()

    @property
    def prompt_style(self) -> str:
        return self._style

    def _adapter_key(self) -> str:
        # The KV content depends on the adapter *and* its scale.
        if not self._adapter or self._adapter_scale == 1.0:
            return self._adapter
        return f"{self._adapter}@{self._adapter_scale:g}"

    # --- tokens and budget ------------------------------------------------------------------

    def _tokens(self, text: str, *, first: bool) -> list[int]:
        self._check_open()  # every public call tokenizes first: after close() the model is freed
        if not text:
            return []
        # A template that writes the BOS text itself must not get a second BOS.
        add_bos = (
            first and self._add_bos and not (self._bos_text and text.startswith(self._bos_text))
        )
        return self._encode(text, add_bos)

    def tokenize(self, text: str) -> list[int]:
        return self._tokens(text, first=False)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def _prompt_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        head, tail = self._format.split(messages)
        return self._tokens(head, first=True) + self._tokens(tail, first=False)

    def count_message_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return len(self._prompt_tokens(messages))

    def remaining_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return self.n_ctx - self.count_message_tokens(messages)

    def prefix_sha256(self, prefix: Sequence[ChatMessage]) -> str:
        return hashlib.sha256(self._format.prefix_text(prefix).encode("utf-8")).hexdigest()

    def _max_new(self, tokens: Sequence[int], s: SamplingParams) -> int:
        """How many tokens may be generated after ``tokens``; an overfull prompt is an error."""
        budget = self.n_ctx - len(tokens)
        if budget <= 0:
            raise EngineError(
                f"the prompt takes {len(tokens)} tokens but the context window is {self.n_ctx}",
                hint="start a new conversation, or use a model with a larger context window",
            )
        return min(s.max_tokens, budget)

    def chat(
        self,
        messages: Sequence[ChatMessage],
        sampling: SamplingParams | None = None,
        cancel: CancelToken | None = None,
    ) -> str:
        return "".join(c.text for c in self.chat_stream(messages, sampling, cancel))

    @staticmethod
    def _checked_json(
        value: Any, json_schema: dict[str, Any], not_object_hint: str
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise EngineError(
                "the model's structured answer is not a JSON object", hint=not_object_hint
            )
        errors = schema_errors(value, json_schema)
        if errors:
            raise EngineError(
                "the model's structured answer does not follow the schema: "
                + "; ".join(errors[:3]),
                hint="retry, or loosen the schema",
            )
        return value

    # --- activation memory ------------------------------------------------------------------

    def _prefix_tokens(self, prefix: Sequence[ChatMessage]) -> tuple[str, list[int]]:
        """The prefix text and its tokens, for saving a state; too long a prefix is an error."""
        self._check_idle()
        text = self._format.prefix_text(prefix)
        tokens = self._tokens(text, first=True)
        if not tokens or len(tokens) >= self.n_ctx:
            raise EngineError(
                f"the prefix takes {len(tokens)} tokens; the context window is {self.n_ctx}",
                hint="use fewer core memories in the prefix",
            )
        return text, tokens

    def _state(self, text: str, tokens: Sequence[int], data: bytes) -> KVState:
        return KVState(
            model_sha256=self._sha,
            adapter_id=self._adapter_key(),
            prefix_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
            settings_key=self.settings_key,
            token_ids=tuple(tokens),
            state=data,
            n_tokens=len(tokens),
        )

    def _restorable(self, state: KVState, prefix: Sequence[ChatMessage] | None) -> bool:
        """Whether ``state`` was made for this model, adapter, prefix and settings, and fits."""
        self._check_idle()
        prefix_sha = state.prefix_sha256 if prefix is None else self.prefix_sha256(prefix)
        want = (self._sha, self._adapter_key(), prefix_sha, self.settings_key)
        n = state.n_tokens
        ok = (
            state.key == want
            and 0 < n < self.n_ctx
            and n == len(state.token_ids)
            and all(0 <= t < self._n_vocab for t in state.token_ids)
        )
        if not ok:
            log.info(
                "KV state not restored: it was made for another model, adapter, prefix or settings"
            )
        return ok

    # --- parametric memory ------------------------------------------------------------------

    @property
    def loaded_adapters(self) -> tuple[str, ...]:
        return tuple(self._adapters)

    def _switch_needed(self, adapter_id: str | None, scale: float) -> bool:
        """Checks for ``set_adapter``; False when that adapter and scale are already active."""
        self._check_idle()
        if adapter_id and adapter_id not in self._adapters:
            raise EngineError(
                f"adapter {adapter_id!r} is not loaded", hint="load it with load_adapter first"
            )
        same = (adapter_id or "") == self._adapter
        return not (same and (not adapter_id or scale == self._adapter_scale))

    # --- lifetime ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise EngineError("the engine is closed", hint="load the model again")

    def _check_idle(self) -> None:
        """The KV cache and adapters must not change under a running generation."""
        self._check_open()
        if self._busy:
            raise EngineError(
                "the engine is generating an answer",
                hint="wait for it to finish, or cancel it first",
            )

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
