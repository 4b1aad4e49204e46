"""Model and adapter files: checks, cached sha256, and reading bytes through an in-memory FILE*.

Design rules:
- A model file's sha256 identifies it everywhere (KV states, adapters). It is computed once per
  (path, size, mtime) and remembered in a small JSON file in the cache dir, so starting the app
  does not re-hash a 300 MB file every time.
- Decrypted adapter bytes never touch the disk: llama.cpp reads them from a ``fmemopen`` FILE*.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from memos_desktop.errors import EngineError, ModelNotFoundError

_SHA_MEMO: dict[tuple[str, int, int], str] = {}
_SHA_LOCK = threading.Lock()


def default_sha_cache() -> Path:
    from memos_desktop.config import resolve_paths

    return resolve_paths().cache_dir / "model-sha256.json"


def model_sha256(path: Path, cache_file: Path | None = None) -> str:
    """sha256 of a model file, computed once per (path, size, mtime) and remembered in memory and
    in ``cache_file`` (JSON), so starting the app does not re-hash a 300 MB file every time."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _SHA_LOCK:
        if key in _SHA_MEMO:
            return _SHA_MEMO[key]
        table: dict[str, Any] = {}
        if cache_file is not None:
            with contextlib.suppress(OSError, ValueError):
                table = json.loads(cache_file.read_text(encoding="utf-8"))
            rec = table.get(key[0])
            if (
                isinstance(rec, dict)
                and rec.get("size") == st.st_size
                and rec.get("mtime_ns") == st.st_mtime_ns
            ):
                _SHA_MEMO[key] = str(rec["sha256"])
                return _SHA_MEMO[key]
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        digest = h.hexdigest()
        _SHA_MEMO[key] = digest
        if cache_file is not None:
            table[key[0]] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
            with contextlib.suppress(OSError):
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache_file.with_name(cache_file.name + f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps(table, indent=1), encoding="utf-8")
                os.replace(tmp, cache_file)
        return digest


def check_gguf(path: Path, what: str) -> None:
    if not path.is_file():
        raise ModelNotFoundError(
            f"no {what} file at {path}",
            hint="`memos-desktop models list` shows the installed models; "
            "`memos-desktop models pull <id>` fetches one",
        )
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise EngineError(
            f"{path} is not a GGUF {what} file (damaged, or another format)",
            hint="delete it and fetch it again with `memos-desktop models pull <id>`",
        )


@contextlib.contextmanager
def memory_file(data: bytes) -> Iterator[ctypes.c_void_p]:
    """A read-only ``FILE*`` over ``data`` in memory (no file on disk, so no plaintext leak)."""
    libc = ctypes.CDLL(None)
    fmemopen = getattr(libc, "fmemopen", None)
    if fmemopen is None:
        raise EngineError(
            "this platform cannot load an adapter from memory (no fmemopen)",
            hint="report this; adapters load from memory on Linux and macOS",
        )
    fmemopen.restype = ctypes.c_void_p
    fmemopen.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    buf = ctypes.create_string_buffer(data, len(data))
    fp = fmemopen(buf, len(data), b"rb")
    if not fp:
        raise EngineError("could not open the adapter in memory", hint="check free memory")
    try:
        yield ctypes.c_void_p(fp)
    finally:
        libc.fclose(fp)
        ctypes.memset(buf, 0, len(data))  # do not leave decrypted weights lying in freed memory
