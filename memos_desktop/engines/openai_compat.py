"""The third chat back end, beside llama.cpp and MLX: a model served by a local
OpenAI-compatible server (Ollama, LM Studio, ``llama-server``, vLLM, ``llama_cpp.server``).

Design rules:
- Named ``openai:NAME`` wherever a model id goes (``[models] chat``, ``-m``); NAME is an id
  from the server's ``/v1/models``. The server is ``[openai] base_url``, loopback unless
  ``allow_remote = true`` (see ``openai_http``).
- It is an instruction-tuned model behind a chat API: the prompt style is always "chat"; the
  server applies the model's template, so messages go as (role, content) pairs.
- Activation memory does not apply: the KV cache lives in the server's process. The engine
  says so (``activation_memory`` is False); ``save_prefix_state`` is an error and
  ``restore_prefix_state`` refuses every state. Adapters (parametric memory) likewise.
- Tokens are counted without the model's tokenizer (there is no portable tokenize endpoint):
  an upper estimate (UTF-8 bytes / 3) keeps the budget on the safe side; the server's own
  count, when it reports usage, goes into the stats.
- Cancelling closes the stream between two events; closing the connection is what makes the
  server stop generating. A consumer that drops the stream closes it too.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

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
from memos_desktop.engines.openai_http import OpenAIClient, ServerModel
from memos_desktop.engines.schema_check import schema_errors
from memos_desktop.engines.select import SERVER_PREFIX, is_server_model
from memos_desktop.errors import EngineError, InvalidInputError, ModelNotFoundError

PREFIX = SERVER_PREFIX
DEFAULT_N_CTX = 4096
NO_KV = "activation memory needs an in-process model (llama.cpp or MLX)"


def server_name(model_id: str) -> str:
    name = model_id[len(PREFIX) :].strip() if is_server_model(model_id) else ""
    if not name:
        raise InvalidInputError(
            f"{model_id!r} names no server model",
            hint="write openai:NAME with a NAME from `memos-desktop models list`",
        )
    return name


def estimate_tokens(text: str) -> int:
    """An upper estimate of a text's tokens (BPE vocabularies average 3.5-4.5 bytes a token
    on English; bytes / 3 stays above that)."""
    return math.ceil(len(text.encode("utf-8")) / 3) if text else 0


@dataclass(frozen=True)
class OpenAISettingsView:
    """What the engine needs from ``config.OpenAISettings`` (kept apart so engines do not
    depend on the settings' shape beyond these fields)."""

    base_url: str
    api_key_env: str = ""
    allow_remote: bool = False
    n_ctx: int = 0
    timeout_s: float = 120.0

    @staticmethod
    def of(s: Any) -> OpenAISettingsView:
        return OpenAISettingsView(
            base_url=s.base_url,
            api_key_env=s.api_key_env,
            allow_remote=s.allow_remote,
            n_ctx=s.n_ctx,
            timeout_s=s.timeout_s,
        )


def client_for(s: Any) -> OpenAIClient:
    v = OpenAISettingsView.of(s)
    return OpenAIClient(
        v.base_url, allow_remote=v.allow_remote, api_key_env=v.api_key_env, timeout_s=v.timeout_s
    )


def _sampling_payload(s: SamplingParams) -> dict[str, Any]:
    p: dict[str, Any] = {
        "temperature": s.temperature,
        "top_p": s.top_p,
        "max_tokens": s.max_tokens,
        # Not in OpenAI's own API, accepted by llama.cpp's servers, vLLM and LM Studio:
        "top_k": s.top_k,
        "min_p": s.min_p,
        "repeat_penalty": s.repeat_penalty,
    }
    if s.seed is not None:
        p["seed"] = s.seed
    stops = [x for x in s.stop if x]
    if stops:
        p["stop"] = stops
    return p


class OpenAICompatEngine:
    """A chat model on an OpenAI-compatible server. One generation at a time."""

    activation_memory = False  # see the module docstring

    def __init__(self, model_id: str, settings: Any, *, client: OpenAIClient | None = None) -> None:
        self.name = server_name(model_id)
        self.client = client or client_for(settings)
        self.remote = self.client.remote
        self._model_id = PREFIX + self.name
        self._sha = hashlib.sha256(f"{self.client.url}\n{self.name}".encode()).hexdigest()
        served = self.client.models()  # a clear error when the server is down
        match = [m for m in served if m.name == self.name]
        if not match:
            names = ", ".join(m.id for m in served[:8]) or "none"
            raise ModelNotFoundError(
                f"the server at {self.client.base_url} does not serve {self.name!r}",
                hint=f"it serves: {names}",
            )
        self.server_model: ServerModel = match[0]
        self._n_ctx = int(settings.n_ctx) or self.server_model.n_ctx or DEFAULT_N_CTX
        self._busy = False
        self._closed = False

    # --- identity ----------------------------------------------------------------------------

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def model_sha256(self) -> str:
        """No file here: the sha256 of the server URL and model name stands for it."""
        return self._sha

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    @property
    def adapter_id(self) -> str:
        return ""

    @property
    def settings_key(self) -> str:
        return f"openai={self.client.url};n_ctx={self._n_ctx}"

    @property
    def prompt_style(self) -> str:
        return "chat"

    # --- tokens ------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        raise EngineError(
            "a server model's tokenizer is not available here",
            hint="count with count_tokens (an estimate)",
        )

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def count_message_tokens(self, messages: Sequence[ChatMessage]) -> int:
        # ~4 tokens of template around each message, ~3 for the generation prompt.
        return sum(estimate_tokens(m.content) + 4 for m in messages) + 3

    def remaining_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return self._n_ctx - self.count_message_tokens(messages)

    # --- generation --------------------------------------------------------------------------

    def _check(self) -> None:
        if self._closed:
            raise EngineError("the engine is closed", hint="load the model again")
        if self._busy:
            raise EngineError(
                "the engine is already generating", hint="cancel the running answer first"
            )

    def _payload(self, messages: Sequence[ChatMessage], s: SamplingParams) -> dict[str, Any]:
        n = self.count_message_tokens(messages)
        budget = self._n_ctx - n
        if budget <= 0:
            raise EngineError(
                f"the prompt takes about {n} tokens but the context window is {self._n_ctx}",
                hint="start a new conversation, or raise [openai] n_ctx if the server's "
                "window is larger",
            )
        s_payload = _sampling_payload(s)
        s_payload["max_tokens"] = min(s.max_tokens, budget)
        return {
            "model": self.name,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            **s_payload,
        }

    def chat_stream(
        self,
        messages: Sequence[ChatMessage],
        sampling: SamplingParams | None = None,
        cancel: CancelToken | None = None,
    ) -> Iterator[StreamChunk]:
        self._check()
        s = sampling or SamplingParams()
        payload = {**self._payload(messages, s), "stream": True}
        return self._stream(payload, s, cancel, self.count_message_tokens(messages))

    def _stream(
        self,
        payload: dict[str, Any],
        s: SamplingParams,
        cancel: CancelToken | None,
        prompt_estimate: int,
    ) -> Iterator[StreamChunk]:
        self._busy = True
        stops = tuple(x for x in s.stop if x)
        pending = ""
        n_out = 0
        prompt_tokens = prompt_estimate
        finish: FinishReason = "length"
        t0 = time.perf_counter()
        t_first: float | None = None
        events = self.client.chat_events(payload)
        try:
            for event in events:
                if cancel is not None and cancel.cancelled:
                    finish = "cancelled"
                    break
                usage = event.get("usage")
                if isinstance(usage, dict):
                    prompt_tokens = int(usage.get("prompt_tokens") or prompt_tokens)
                choices = event.get("choices") or []
                if not choices:
                    continue
                choice = choices[0]
                delta = choice.get("delta") or {}
                piece = delta.get("content") or ""
                if piece:
                    if t_first is None:
                        t_first = time.perf_counter()
                    n_out += 1
                    pending += piece
                    out, pending, stopped = release(pending, stops)
                    if stopped:
                        finish = "stop"
                        break
                    if out:
                        yield StreamChunk(out)
                reason = choice.get("finish_reason")
                if reason:
                    finish = "length" if reason == "length" else "stop"
                    break
            else:
                finish = "stop"  # the stream ended without a reason: the server was done
        finally:
            events.close()  # closes the connection: the server stops generating
            self._busy = False
        if cancel is not None and cancel.cancelled:
            finish = "cancelled"
        yield final_chunk(
            pending,
            prompt_tokens=prompt_tokens,
            completion_tokens=n_out,
            t0=t0,
            t_first=t_first,
            t_end=time.perf_counter(),
            reused=0,
            finish=finish,
        )

    def chat(
        self,
        messages: Sequence[ChatMessage],
        sampling: SamplingParams | None = None,
        cancel: CancelToken | None = None,
    ) -> str:
        return "".join(c.text for c in self.chat_stream(messages, sampling, cancel))

    def complete_json(
        self,
        messages: Sequence[ChatMessage],
        json_schema: dict[str, Any],
        sampling: SamplingParams | None = None,
    ) -> dict[str, Any]:
        import json

        self._check()
        s = sampling or SamplingParams.greedy(512)
        base = self._payload(messages, s)
        # OpenAI's form first (vLLM, LM Studio, Ollama, llama-server); llama_cpp.server's own
        # (json_object with a schema) when the server does not take it.
        forms: list[dict[str, Any]] = [
            {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": json_schema, "strict": True},
            },
            {"type": "json_object", "schema": json_schema},
        ]
        last: EngineError | None = None
        for form in forms:
            try:
                data = self.client.chat({**base, "response_format": form})
                break
            except EngineError as exc:
                if " refused " not in exc.message:  # down or broken: no use trying the other form
                    raise
                last = exc
        else:
            assert last is not None
            raise last
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
            value = json.loads(text)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise EngineError(
                "the server model's structured answer was not valid JSON",
                hint="retry, or use a model that supports structured output",
            ) from exc
        if not isinstance(value, dict):
            raise EngineError("the server model's structured answer is not a JSON object")
        errors = schema_errors(value, json_schema)
        if errors:
            raise EngineError(
                "the model's structured answer does not follow the schema: "
                + "; ".join(errors[:3]),
                hint="retry, or loosen the schema",
            )
        return value

    # --- activation and parametric memory: not here ------------------------------------------

    def prefix_sha256(self, prefix: Sequence[ChatMessage]) -> str:
        text = "\n".join(f"{m.role}:{m.content}" for m in prefix)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def save_prefix_state(self, prefix: Sequence[ChatMessage]) -> KVState:
        raise EngineError(f"a server model has no saved KV state: {NO_KV}")

    def restore_prefix_state(
        self, state: KVState, prefix: Sequence[ChatMessage] | None = None
    ) -> bool:
        return False

    def load_adapter(self, adapter_id: str, path: Any) -> None:
        raise EngineError(
            "adapters (parametric memory) need an in-process model",
            hint="use a GGUF model (llama.cpp) to train and use adapters",
        )

    def set_adapter(self, adapter_id: str | None, scale: float = 1.0) -> None:
        if adapter_id:
            self.load_adapter(adapter_id, "")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.client.close()


class OpenAIEmbedder:
    """Embeddings from the server (optional; the local embedder stays the default). Refused
    for a server off this machine: every memory would be sent to it."""

    def __init__(self, model_id: str, settings: Any, *, client: OpenAIClient | None = None) -> None:
        self.name = server_name(model_id)
        self.client = client or client_for(settings)
        if self.client.remote:
            self.client.close()
            raise EngineError(
                "embeddings from a server off this machine would send it every memory",
                hint="use a local embedder ([models] embedding), or a server on 127.0.0.1",
            )
        self._model_id = PREFIX + self.name
        self._dim = len(self.client.embeddings(self.name, ["dimension probe"])[0])

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        v = np.asarray(self.client.embeddings(self.name, texts), dtype=np.float32)
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        out: npt.NDArray[np.float32] = (v / norms).astype(np.float32)
        return out
