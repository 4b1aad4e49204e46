"""mlx-lm prompt caches <-> bytes: safetensors arrays + JSON metadata, never pickle.

The MLX engine's activation memory; the bytes go to the encrypted store, never to disk here.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from memos_desktop.errors import EngineError


def cache_to_bytes(cache: list[Any]) -> bytes:
    """An mlx-lm prompt cache as safetensors bytes (arrays) + JSON metadata (classes, scalars).

    Mirrors mlx-lm's own ``save_prompt_cache`` but in memory, so the state never touches the
    disk unencrypted. A KVCache's preallocated buffer is cut to its filled part first.
    """
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.models.cache import KVCache
    from safetensors.numpy import save

    states: list[Any] = []
    for c in cache:
        keys: Any = getattr(c, "keys", None)
        if isinstance(c, KVCache) and keys is not None:
            off = c.offset
            values: Any = c.values
            states.append((keys[..., :off, :], values[..., :off, :], off))
        else:
            states.append(c.state)
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    scalars: dict[str, Any] = {}
    bf16: list[str] = []
    flat: Any = tree_flatten(states)
    for key, value in flat:
        if isinstance(value, mx.array):
            if value.dtype == mx.bfloat16:  # numpy has no bfloat16: keep the bits
                value = value.view(mx.uint16)
                bf16.append(key)
            arrays[key] = np.array(value)
        elif value is None or isinstance(value, (bool, int, float, str)):
            scalars[key] = value
        else:
            raise EngineError(
                f"cannot serialise a {type(value).__name__} in the prompt cache",
                hint="report this: the model's cache type is not supported",
            )
    meta = {
        "format": "memos-mlx-prompt-cache/1",
        "classes": json.dumps([type(c).__name__ for c in cache]),
        "scalars": json.dumps(scalars),
        "bf16": json.dumps(bf16),
    }
    data: bytes = save(arrays, metadata=meta)
    return data


def cache_from_bytes(data: bytes) -> list[Any]:
    import mlx.core as mx
    from mlx.utils import tree_unflatten
    from mlx_lm.models import cache as cache_mod
    from safetensors.numpy import load

    header_len = int.from_bytes(data[:8], "little")
    meta = json.loads(data[8 : 8 + header_len]).get("__metadata__", {})
    if meta.get("format") != "memos-mlx-prompt-cache/1":
        raise ValueError("not a memos MLX prompt cache")
    classes = json.loads(meta["classes"])
    scalars: dict[str, Any] = json.loads(meta["scalars"])
    bf16 = set(json.loads(meta["bf16"]))
    items: list[tuple[str, Any]] = []
    for key, arr in load(data).items():
        a = mx.array(arr)
        items.append((key, a.view(mx.bfloat16) if key in bf16 else a))
    items.extend(scalars.items())
    # Keys are "layer.index"; order them numerically so tree_unflatten rebuilds the lists.
    items.sort(key=lambda kv: [int(p) for p in kv[0].split(".")])
    states = tree_unflatten(items)
    if len(states) != len(classes):
        raise ValueError("prompt cache metadata does not match its arrays")
    allowed = {
        "KVCache",
        "RotatingKVCache",
        "QuantizedKVCache",
        "ArraysCache",
        "ChunkedKVCache",
        "ConcatenateKVCache",
    }
    out = []
    for name, state in zip(classes, states, strict=True):
        if name not in allowed:  # untrusted input: only known classes, never arbitrary names
            raise ValueError(f"unknown cache class {name!r}")
        out.append(getattr(cache_mod, name).from_state(tuple(state)))
    return out


def cache_len(cache: list[Any]) -> int:
    c = cache[0]
    return int(getattr(c, "offset", 0) or c.size())
