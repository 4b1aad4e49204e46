"""A small HTTP client for OpenAI-compatible servers (Ollama, LM Studio, llama.cpp's
``llama-server``, vLLM, ``llama_cpp.server``): models, chat completions (whole or streamed as
server-sent events) and embeddings, over httpx.

Design rules:
- Loopback only unless the person says otherwise: a base URL whose host is not a loopback
  address is refused unless ``allow_remote`` is set (:func:`check_base_url`). The host is
  checked as written, and a name is resolved and every address it has must be loopback, so
  ``localhost`` passes and a name that points elsewhere does not.
- The API key is never in the settings file: the settings name an environment variable
  (``api_key_env``), read when the client is made. It is sent only in the Authorization header
  and never logged.
- A server that is not there is a clear error naming the URL and the fix; a server that
  answers with an error passes its own message on.
- A stream is closed as soon as its reader stops (cancelled, or the consumer dropped it):
  closing the connection is how the server learns to stop generating.
- Nothing here logs prompt text, answers or embeddings.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import socket
import urllib.parse
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from memos_desktop.errors import ConfigError, EngineError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 3.0
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def root_url(base_url: str) -> str:
    """The base URL as the person wrote it, without a trailing slash or ``/v1`` (for messages)."""
    u = base_url.strip().rstrip("/")
    return u[: -len("/v1")] if u.endswith("/v1") else u


def api_url(base_url: str) -> str:
    """The ``/v1`` root of the OpenAI API under ``base_url`` (given with or without it)."""
    return root_url(base_url) + "/v1"


def _is_loopback_host(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if host.lower() == "localhost":
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False  # unknown name: not shown to be loopback
    addrs = {str(info[4][0]) for info in infos}
    return bool(addrs) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs)


def is_loopback(base_url: str) -> bool:
    """Whether ``base_url`` names this machine (127.0.0.0/8, ::1, localhost)."""
    host = urllib.parse.urlsplit(root_url(base_url)).hostname or ""
    return bool(host) and _is_loopback_host(host)


def check_base_url(base_url: str, allow_remote: bool) -> str:
    """The ``/v1`` URL of ``base_url``; ConfigError for a malformed URL, or for one that leaves
    this machine without ``allow_remote``."""
    u = urllib.parse.urlsplit(root_url(base_url))
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ConfigError(
            f"[openai] base_url {base_url!r} is not an http(s) URL",
            hint='set it to the server\'s address, e.g. base_url = "http://127.0.0.1:8080"',
        )
    if not allow_remote and not is_loopback(base_url):
        raise ConfigError(
            f"[openai] base_url {root_url(base_url)} is not on this machine: prompts (with the "
            "memories they use) would leave it",
            hint="use a server on 127.0.0.1, or set allow_remote = true in [openai] if you mean it",
        )
    return api_url(base_url)


def api_key(env_name: str) -> str | None:
    """The key from the environment variable the settings name (None when unset or empty)."""
    if not env_name:
        return None
    if not _ENV_NAME.match(env_name):
        raise ConfigError(
            "[openai] api_key_env must name an environment variable (e.g. OPENAI_API_KEY), "
            "not hold the key itself",
            hint="put the key in an environment variable and write its name in api_key_env",
        )
    return os.environ.get(env_name) or None


@dataclass(frozen=True)
class ServerModel:
    """A model the server lists at ``/v1/models``."""

    name: str
    owned_by: str
    n_ctx: int  # the context length it reports, 0 when it does not say

    @property
    def id(self) -> str:
        return f"openai:{self.name}"


def _ctx_of(entry: dict[str, Any]) -> int:
    # vLLM: max_model_len; LM Studio: context_length / max_context_length; llama-server: meta.
    meta = entry.get("meta") if isinstance(entry.get("meta"), dict) else {}
    for v in (
        entry.get("max_model_len"),
        entry.get("context_length"),
        entry.get("max_context_length"),
        (meta or {}).get("n_ctx"),
        (meta or {}).get("n_ctx_train"),
    ):
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    return 0


def _per_token(vec: Any) -> bool:
    return isinstance(vec, list) and bool(vec) and all(isinstance(v, list) for v in vec)


def _pooled(vec: Any) -> list[float]:
    """One vector. A server may return one per token (``llama_cpp.server`` for a model with
    no pooling of its own): those are averaged (mean pooling)."""
    if _per_token(vec):
        n = len(vec)
        return [sum(float(row[i]) for row in vec) / n for i in range(len(vec[0]))]
    if isinstance(vec, list) and vec and all(isinstance(v, int | float) for v in vec):
        return [float(v) for v in vec]
    raise EngineError(
        "the server's embedding is not a list of numbers",
        hint="choose a model the server serves embeddings with",
    )


class OpenAIClient:
    """One server. Thread-safe for separate calls (httpx's client is)."""

    def __init__(
        self,
        base_url: str,
        *,
        allow_remote: bool = False,
        api_key_env: str = "",
        timeout_s: float = 120.0,
    ) -> None:
        self.base_url = root_url(base_url)
        self.url = check_base_url(base_url, allow_remote)
        self.remote = not is_loopback(base_url)
        headers = {"Accept": "application/json"}
        key = api_key(api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=CONNECT_TIMEOUT_S),
            trust_env=self.remote,  # a proxy setting must not route loopback traffic away
        )

    # --- errors ------------------------------------------------------------------------------

    def _down(self, exc: Exception) -> EngineError:
        return EngineError(
            f"no server at {self.base_url}: start it or change [openai] base_url",
            hint="e.g. `ollama serve`, `llama-server -m MODEL.gguf --port 8080`, or "
            "LM Studio's local server; then try again",
        )

    def _http_error(self, resp: httpx.Response, what: str) -> EngineError:
        try:
            body = resp.read().decode("utf-8", "replace")
            data = json.loads(body)
            err = data.get("error", data) if isinstance(data, dict) else data
            detail = err.get("message", err) if isinstance(err, dict) else err
            detail = str(detail)
        except (ValueError, httpx.HTTPError):
            detail = ""
        detail = detail[:300]
        hint = (
            "check [openai] api_key_env and the key in that variable"
            if resp.status_code in (401, 403)
            else "`memos-desktop models list` shows the server's models"
            if resp.status_code == 404
            else "see the server's own log"
        )
        return EngineError(
            f"the server at {self.base_url} refused {what}: HTTP {resp.status_code}"
            + (f" ({detail})" if detail else ""),
            hint=hint,
        )

    def _request(self, method: str, path: str, what: str, **kw: Any) -> Any:
        try:
            resp = self._http.request(method, path, **kw)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise self._down(exc) from exc
        except httpx.HTTPError as exc:
            raise EngineError(
                f"the server at {self.base_url} did not answer {what} ({type(exc).__name__})",
                hint="check that it is running and not overloaded",
            ) from exc
        if resp.status_code >= 400:
            raise self._http_error(resp, what)
        try:
            return resp.json()
        except ValueError as exc:
            raise EngineError(
                f"the server at {self.base_url} answered {what} with something that is not JSON",
                hint="is base_url an OpenAI-compatible server?",
            ) from exc

    # --- calls -------------------------------------------------------------------------------

    def models(self) -> list[ServerModel]:
        data = self._request("GET", "/models", "the model list")
        rows = data.get("data", []) if isinstance(data, dict) else []
        out = []
        for r in rows:
            if isinstance(r, dict) and isinstance(r.get("id"), str):
                out.append(ServerModel(r["id"], str(r.get("owned_by") or ""), _ctx_of(r)))
        return out

    def chat(self, payload: dict[str, Any]) -> dict[str, Any]:
        data = self._request("POST", "/chat/completions", "the chat request", json=payload)
        if not isinstance(data, dict):
            raise EngineError("the server's chat answer is not a JSON object")
        return data

    def chat_events(self, payload: dict[str, Any]) -> Generator[dict[str, Any], None, None]:
        """The server-sent events of a streamed chat completion, parsed. Closing the iterator
        (or leaving it early) closes the connection."""
        try:
            with self._http.stream("POST", "/chat/completions", json=payload) as resp:
                if resp.status_code >= 400:
                    raise self._http_error(resp, "the chat request")
                for line in resp.iter_lines():
                    if not line.startswith("data:"):
                        continue  # comments (": ping"), event names, blank separators
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    try:
                        event = json.loads(data)
                    except ValueError:
                        log.warning("skipped a stream event that is not JSON")
                        continue
                    if isinstance(event, dict):
                        if "error" in event:
                            err = event["error"]
                            msg = err.get("message", err) if isinstance(err, dict) else err
                            raise EngineError(
                                f"the server at {self.base_url} stopped the answer: {msg}",
                                hint="see the server's own log",
                            )
                        yield event
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise self._down(exc) from exc
        except httpx.HTTPError as exc:
            raise EngineError(
                f"the connection to {self.base_url} broke during the answer ({type(exc).__name__})",
                hint="check that the server is still running",
            ) from exc

    def embeddings(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        data = self._request(
            "POST",
            "/embeddings",
            "the embedding request",
            json={"model": model, "input": list(texts)},
        )
        rows = data.get("data") if isinstance(data, dict) else None
        if not isinstance(rows, list) or len(rows) != len(texts):
            raise EngineError(
                f"the server at {self.base_url} gave no embeddings for {model}",
                hint="choose a model the server serves embeddings with, or keep the local "
                "embedder ([models] embedding)",
            )
        rows = sorted(rows, key=lambda r: int(r.get("index", 0)) if isinstance(r, dict) else 0)
        vecs = [r.get("embedding") if isinstance(r, dict) else None for r in rows]
        if len(texts) > 1 and any(_per_token(v) for v in vecs):
            # Per-token vectors of a batch are not to be trusted (llama_cpp.server mixes the
            # sequences of a batch for a model with no pooling): one text per request.
            return [self.embeddings(model, [t])[0] for t in texts]
        return [_pooled(v) for v in vecs]

    def close(self) -> None:
        self._http.close()
