"""Thin typed wrappers over the llama.cpp C calls that llama-cpp-python's ``Llama`` does not
expose: sequence state copy/restore, memory clearing, LoRA adapters, token pieces, logging.

Design rule: every ctypes detail of the engine, and every use of llama-cpp-python's private
state, lives here, so ``llamacpp.py`` reads as engine logic and a change below the public API
(both move fast) is fixed in one place.
"""

from __future__ import annotations

import ctypes
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

import llama_cpp
from llama_cpp import Llama

from memos_desktop.engines.base import common_prefix

# llama.cpp logs through one process-wide callback: route it to our logger (warnings and errors
# only; llama.cpp never puts prompt text in those) instead of stderr, which is the UI's.
_native_log = logging.getLogger("memos_desktop.engines.llama_native")


@llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
def _log_callback(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
    # ggml_log_level: 1 debug, 2 info, 3 warn, 4 error, 5 continuation (llama-cpp-python's own
    # table predates this numbering, which is why it prints info lines as warnings).
    if level in (3, 4):
        msg = text.decode("utf-8", "replace").strip()[:300]
        if msg:
            _native_log.log(logging.WARNING if level == 3 else logging.ERROR, "%s", msg)


def route_native_logs() -> None:
    llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))


class _KeepStdio:
    """Stands in for llama-cpp-python's ``suppress_stdout_stderr``, which while a model loads
    points file descriptors 1 and 2 (and sys.stdout / sys.stderr) at /dev/null for the whole
    process: the terminal app draws on fd 2 from another thread meanwhile, and what it drew
    was lost. llama.cpp's own logs already go to our callback (``route_native_logs``) and
    ``verbose=False`` prints nothing, so there is nothing to hide."""

    def __init__(self, disable: bool = True) -> None:
        self.disable = disable

    def __enter__(self) -> _KeepStdio:
        return self

    def __exit__(self, *_: object) -> None:
        return None


def keep_stdio() -> None:
    """Load models without redirecting the process's stdout and stderr (see ``_KeepStdio``);
    also routes llama.cpp's logs, which that relies on."""
    route_native_logs()
    import importlib

    for name in ("llama", "_internals", "llama_chat_format"):  # each imported it by name
        try:
            module = importlib.import_module(f"llama_cpp.{name}")
        except ImportError:
            continue
        if hasattr(module, "suppress_stdout_stderr"):
            setattr(module, "suppress_stdout_stderr", _KeepStdio)  # noqa: B010


def copy_seq_state(ctx: Any) -> bytes:
    """The KV state of sequence 0 as bytes (b"" if llama.cpp could not copy it)."""
    size = llama_cpp.llama_state_seq_get_size(ctx, 0)
    buf = (ctypes.c_uint8 * size)()
    n = llama_cpp.llama_state_seq_get_data(ctx, buf, size, 0)
    return ctypes.string_at(buf, n) if n else b""


def load_seq_state(ctx: Any, data: bytes, n_tokens: int) -> bool:
    """Load ``data`` into sequence 0; True only if llama.cpp took it and it holds exactly
    positions 0..n_tokens-1."""
    buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
    ok = llama_cpp.llama_state_seq_set_data(ctx, buf, len(data), 0)
    mem = llama_cpp.llama_get_memory(ctx)
    return (
        bool(ok) and mem is not None and llama_cpp.llama_memory_seq_pos_max(mem, 0) == n_tokens - 1
    )


def clear_memory(ctx: Any) -> None:
    # data=False: forget the cells without zeroing the buffers (an adapter switch stays well
    # under a millisecond; zeroing a 4k-token cache costs ~10 ms).
    mem = llama_cpp.llama_get_memory(ctx)
    if mem is not None:
        llama_cpp.llama_memory_clear(mem, False)


def lora_from_path(model: Any, path: bytes) -> Any:
    return llama_cpp.llama_adapter_lora_init(model, path)


def lora_from_file_ptr(model: Any, fp: ctypes.c_void_p) -> Any:
    return llama_cpp.llama_adapter_lora_init_from_file_ptr(model, fp)


def set_lora(ctx: Any, adapter: Any | None, scale: float = 1.0) -> int:
    """Make ``adapter`` the only active LoRA (None: none). 0 on success."""
    if adapter is None:
        return int(llama_cpp.llama_set_adapters_lora(ctx, None, 0, None))
    arr = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
    scales = (ctypes.c_float * 1)(scale)
    return int(llama_cpp.llama_set_adapters_lora(ctx, arr, 1, scales))


def free_lora(adapter: Any) -> None:
    llama_cpp.llama_adapter_lora_free(adapter)


def token_piece(vocab: Any, token: int) -> bytes:
    """The bytes of one token (special tokens render as nothing)."""
    buf = ctypes.create_string_buffer(64)
    n = llama_cpp.llama_token_to_piece(vocab, token, buf, 64, 0, False)
    if n < 0:  # the piece is longer than the buffer: -n is the size it needs
        buf = ctypes.create_string_buffer(-n)
        n = llama_cpp.llama_token_to_piece(vocab, token, buf, -n, 0, False)
    return buf.raw[: max(n, 0)]


def is_end_of_generation(vocab: Any, token: int) -> bool:
    return bool(llama_cpp.llama_vocab_is_eog(vocab, token))


_SPECIAL_TEXT = re.compile(r"<[^<>\s]{1,40}>")


def is_special(vocab: Any, token: int) -> bool:
    """A control token (BOS, turn markers, <unusedN>: rendered as no text), or a user-defined
    one spelled like a marker ("<start_of_image>": rendered as that text)."""
    if llama_cpp.llama_vocab_is_control(vocab, token):
        return True
    attr = int(llama_cpp.llama_vocab_get_attr(vocab, token))
    if not attr & llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED:
        return False
    text = llama_cpp.llama_vocab_get_text(vocab, token) or b""
    return bool(_SPECIAL_TEXT.fullmatch(text.decode("utf-8", "replace")))


# --- the KV cache of a llama_cpp.Llama --------------------------------------------------------
#
# llama-cpp-python tracks what is in the KV cache in ``input_ids[:n_tokens]`` and, in
# ``_requires_eval``, whether the current logits came from a live decode. generate() reuses the
# longest cached prefix of a prompt. These functions keep those three in step with the cache.


def cached_tokens(lm: Llama) -> list[int]:
    return [int(t) for t in lm.input_ids[: lm.n_tokens]]


def cached_prefix(lm: Llama, tokens: Sequence[int]) -> int:
    """How many prompt tokens generate() will take from the cache (its own rule: a fully
    cached prompt replays its last token unless the logits are live)."""
    lcp = common_prefix(cached_tokens(lm), tokens)
    if lcp == len(tokens):
        if lm.n_tokens == len(tokens) and not getattr(lm, "_requires_eval", True):
            return lcp
        return lcp - 1
    return lcp


def clear(lm: Llama) -> None:
    lm.reset()  # type: ignore[no-untyped-call]
    clear_memory(lm.ctx)


def _keep(lm: Llama, n: int) -> None:
    """Cut the cache back to its first ``n`` tokens (or clear it if llama.cpp cannot)."""
    if n > 0 and lm._ctx.kv_cache_seq_rm(-1, n, -1):
        lm.n_tokens = n
    else:
        clear(lm)


def prefill(
    lm: Llama, tokens: list[int], cached: int, n_batch: int, cancelled: Callable[[], bool]
) -> bool:
    """Evaluate the uncached part of a prompt batch by batch, checking ``cancelled`` between
    batches (generate() prefills in one uninterruptible call). False if cancelled."""
    if len(tokens) - cached <= n_batch:
        return not cancelled()
    _keep(lm, cached)
    for i in range(lm.n_tokens, len(tokens), n_batch):
        if cancelled():
            lm._requires_eval = True
            return False
        lm.eval(tokens[i : i + n_batch])
    # The whole prompt is cached with live logits: generate() samples at once.
    return not cancelled()


def prefill_exactly(lm: Llama, tokens: list[int]) -> None:
    """Leave exactly ``tokens`` in the cache, reusing what is already there."""
    _keep(lm, min(common_prefix(cached_tokens(lm), tokens), len(tokens)))
    if lm.n_tokens < len(tokens):
        lm.eval(tokens[lm.n_tokens :])
    # The logits belong to whatever was evaluated last: make generate() replay a token.
    lm._requires_eval = True


def restore_cache(lm: Llama, token_ids: Sequence[int], state: bytes) -> bool:
    """Load a saved sequence state and tell llama-cpp-python which tokens it holds, so the next
    prompt that starts with them is not prefilled again. False (cache cleared) if refused."""
    clear(lm)
    n = len(token_ids)
    if not load_seq_state(lm.ctx, state, n):
        clear(lm)
        return False
    lm.input_ids[:n] = token_ids
    lm.n_tokens = n
    lm._requires_eval = True  # no logits yet: generate() must decode before sampling
    return True
