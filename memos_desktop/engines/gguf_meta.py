"""A small, strict reader of GGUF headers (metadata and tensor table, never the weights).

Design rule: an adapter file is untrusted input (it may come from a synced cube), and llama.cpp
trusts the files it loads: a LoRA with an unexpected tensor type crashes the process. So every
adapter is checked here first, in pure Python with bounds checks, and refused with an
:class:`EngineError` before llama.cpp sees it. It is also much faster than ``gguf.GGUFReader`` on
a model with a 262k-token vocabulary, because big arrays are skipped, not materialised.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memos_desktop.errors import EngineError

# Metadata key we write into every adapter we make, naming the exact base model file (sha256).
BASE_SHA_KEY = "memos.base_model_sha256"

# ggml types a LoRA adapter may use (llama.cpp reads these; others are refused).
GGML_F32, GGML_F16, GGML_Q8_0, GGML_BF16 = 0, 1, 8, 30
_ADAPTER_TYPES = {GGML_F32: (4, 1), GGML_F16: (2, 1), GGML_BF16: (2, 1), GGML_Q8_0: (34, 32)}

_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
_MAX_KEPT_ARRAY = 64  # longer arrays (vocabularies) are skipped, recorded as their length only


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # ggml order: ne[0] first (the row length)
    ggml_type: int
    offset: int  # from the start of the data section


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    metadata: dict[str, Any]
    tensors: tuple[TensorInfo, ...]
    data_offset: int
    file_size: int

    def get_str(self, key: str) -> str:
        value = self.metadata.get(key)
        return value if isinstance(value, str) else ""


class _Cursor:
    def __init__(self, buf: mmap.mmap | bytes) -> None:
        self.buf = buf
        self.pos = 0

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise ValueError("truncated")
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        n = self.unpack("<Q")
        if n > 1 << 24 or self.pos + n > len(self.buf):
            raise ValueError("bad string length")
        raw = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return raw.decode("utf-8", "replace")

    def value(self, vtype: int) -> Any:
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            itype = self.unpack("<I")
            count = self.unpack("<Q")
            if count > 1 << 26:
                raise ValueError("bad array length")
            if count > _MAX_KEPT_ARRAY:
                if itype in _SCALARS:
                    skip = struct.calcsize(_SCALARS[itype]) * count
                    if self.pos + skip > len(self.buf):
                        raise ValueError("truncated")
                    self.pos += skip
                else:
                    for _ in range(count):
                        self.value(itype)
                return count
            return [self.value(itype) for _ in range(count)]
        raise ValueError(f"unknown value type {vtype}")


def read_header(source: str | Path | bytes, name: str = "") -> GGUFHeader:
    """Parse the header of a GGUF file (a path, or its bytes). Raises EngineError if it is not a
    well-formed GGUF."""
    label = name or (Path(source).name if not isinstance(source, bytes) else "the file")
    try:
        if isinstance(source, bytes):
            if len(source) < 24:
                raise ValueError("too short")
            return _parse(_Cursor(source), len(source))
        with open(source, "rb") as f:
            size = f.seek(0, 2)
            if size < 24:
                raise ValueError("too short")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                return _parse(_Cursor(mm), size)
    except (ValueError, struct.error, OSError) as exc:
        raise EngineError(
            f"{label} is not a valid GGUF file ({exc})",
            hint="the file is damaged: delete it and fetch or rebuild it",
        ) from exc


def _parse(c: _Cursor, size: int) -> GGUFHeader:
    if bytes(c.buf[:4]) != b"GGUF":
        raise ValueError("no GGUF magic")
    c.pos = 4
    version = c.unpack("<I")
    if version not in (2, 3):
        raise ValueError(f"unsupported GGUF version {version}")
    n_tensors, n_kv = c.unpack("<Q"), c.unpack("<Q")
    if n_tensors > 1 << 20 or n_kv > 1 << 20:
        raise ValueError("implausible counts")
    meta: dict[str, Any] = {}
    for _ in range(n_kv):
        key = c.string()
        meta[key] = c.value(c.unpack("<I"))
    tensors = []
    for _ in range(n_tensors):
        name = c.string()
        n_dims = c.unpack("<I")
        if not 1 <= n_dims <= 4:
            raise ValueError(f"tensor {name} has {n_dims} dimensions")
        shape = tuple(int(c.unpack("<Q")) for _ in range(n_dims))
        tensors.append(TensorInfo(name, shape, c.unpack("<I"), c.unpack("<Q")))
    align = int(meta.get("general.alignment", 32)) or 32
    data_offset = (c.pos + align - 1) // align * align
    return GGUFHeader(version, meta, tuple(tensors), data_offset, size)


def check_lora_adapter(
    source: str | Path | bytes, *, architecture: str, name: str = ""
) -> GGUFHeader:
    """Refuse, with a clear EngineError, any file that is not a sane GGUF LoRA adapter for a base
    model of ``architecture``: wrong kind, other architecture, unsupported tensor types, unpaired
    tensors or tensor data outside the file."""
    label = name or (Path(source).name if not isinstance(source, bytes) else "the adapter")
    h = read_header(source, label)
    fix = "retrain the adapter for this model, or roll back to the previous one"
    if h.get_str("general.type") != "adapter" or h.get_str("adapter.type") != "lora":
        raise EngineError(f"{label} is not a LoRA adapter", hint=fix)
    arch = h.get_str("general.architecture")
    if arch != architecture:
        raise EngineError(
            f"{label} is an adapter for a {arch or 'unknown'} model, not {architecture}",
            hint=fix,
        )
    names = {t.name for t in h.tensors}
    for t in h.tensors:
        if t.ggml_type not in _ADAPTER_TYPES:
            raise EngineError(
                f"{label}: tensor {t.name} has unsupported type {t.ggml_type}", hint=fix
            )
        if not (t.name.endswith(".lora_a") or t.name.endswith(".lora_b")) or len(t.shape) != 2:
            raise EngineError(f"{label}: unexpected tensor {t.name}", hint=fix)
        other = t.name[:-1] + ("b" if t.name.endswith("a") else "a")
        if other not in names:
            raise EngineError(f"{label}: tensor {t.name} has no {other}", hint=fix)
        block_bytes, block_elems = _ADAPTER_TYPES[t.ggml_type]
        n = t.shape[0] * t.shape[1]
        end = h.data_offset + t.offset + n // block_elems * block_bytes
        if t.shape[0] % block_elems or end > h.file_size:
            raise EngineError(f"{label} is truncated or damaged (tensor {t.name})", hint=fix)
    if not h.tensors:
        raise EngineError(f"{label} holds no LoRA tensors", hint=fix)
    return h
