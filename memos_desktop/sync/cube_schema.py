"""The records of a ``.memcube`` file checked field by field (the manifest, a batch of memories
with their versions and vectors, an activation state, an adapter).

Design rule: what leaves this module is exactly what the format allows: known fields only,
every string valid UTF-8 text of bounded length, every number finite and in range, every list
bounded. The importer may then trust shapes, never the values' meaning (ids may collide,
content hashes are recomputed, times may be anything).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from memos_desktop.store.records import MEMORY_LAYERS, MEMORY_STATUSES, MEMORY_TYPES, Source
from memos_desktop.sync.cubefile import FORMAT_VERSION, CubeFileError

MAX_MEMORIES = 10_000_000
MAX_VERSIONS = 100_000_000
MAX_BLOBS = 10_000
MAX_BATCH = 5_000
MAX_ITEM_VERSIONS = 1_000
MAX_DIM = 8_192
MAX_TEXT = 1 << 20
MAX_SHORT = 1_024
MAX_TAGS = 256
MAX_SOURCES = 256

ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
CUBE_NAME = re.compile(r"^[\w][\w .\-]{0,63}$", re.UNICODE)

ITEM_FIELDS = {
    "id", "text", "key", "type", "layer", "status", "source", "confidence", "importance",
    "pinned", "tags", "sources", "valid_from", "valid_to", "created_at", "updated_at",
    "version", "supersedes", "superseded_by", "context", "vector", "versions",
}  # fmt: skip
VERSION_FIELDS = {
    "id", "version", "text", "key", "type", "layer", "status", "confidence", "importance",
    "tags", "valid_from", "valid_to", "change", "reason", "changed_at", "device_id", "hlc",
}  # fmt: skip


def bad(what: str) -> CubeFileError:
    return CubeFileError(f"the cube file's {what} is invalid", hint="nothing was imported")


def text(v: Any, what: str, hi: int = MAX_SHORT, lo: int = 0) -> str:
    if not isinstance(v, str) or not lo <= len(v) <= hi:
        raise bad(what)
    if not v.isascii():
        try:
            v.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate ("\ud800") in the JSON
            raise bad(what) from exc
    if "\x00" in v:
        raise bad(what)
    return v


def ident(v: Any, what: str) -> str:
    if not isinstance(v, str) or not ID.match(v):
        raise bad(what)
    return v


def opt_ident(v: Any, what: str) -> str | None:
    return None if v is None else ident(v, what)


def number(v: Any, what: str, lo: float = -1e15, hi: float = 1e15) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise bad(what)
    f = float(v)
    if not math.isfinite(f) or not lo <= f <= hi:
        raise bad(what)
    return f


def opt_number(v: Any, what: str) -> float | None:
    return None if v is None else number(v, what)


def integer(v: Any, what: str, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise bad(what)
    return v


def choice(v: Any, what: str, allowed: tuple[str, ...]) -> str:
    if v not in allowed:
        raise bad(what)
    return str(v)


def fields(
    d: Any, what: str, allowed: set[str], required: set[str] | None = None
) -> dict[str, Any]:
    need = allowed if required is None else required
    if not isinstance(d, dict) or not set(d) <= allowed or not need <= set(d):
        raise bad(what)
    return d


def tags(v: Any, what: str) -> list[str]:
    if not isinstance(v, list) or len(v) > MAX_TAGS:
        raise bad(what)
    return [text(t, what, 128) for t in v]


def sources(v: Any) -> list[dict[str, Any]]:
    if not isinstance(v, list) or len(v) > MAX_SOURCES:
        raise bad("memory sources")
    out = []
    allowed = set(Source.__dataclass_fields__)
    for s in v:
        fields(s, "memory source", allowed, set())
        clean: dict[str, Any] = {}
        for k, val in s.items():
            if k == "at":
                clean[k] = opt_number(val, "memory source time")
            elif val is not None:
                clean[k] = text(val, "memory source", 4096)
        out.append(clean)
    return out


@dataclass(frozen=True)
class Manifest:
    cube_id: str
    name: str
    description: str
    owner: str
    embed_model: str
    embed_dim: int
    counts: dict[str, int]
    created_at: float
    device_id: str
    exported_by: str
    app: str


COUNT_LIMITS = {
    "memories": MAX_MEMORIES,
    "versions": MAX_VERSIONS,
    "activations": MAX_BLOBS,
    "adapters": MAX_BLOBS,
}


def manifest(m: Any) -> Manifest:
    keys = {
        "kind", "format_version", "cube", "embedding", "counts", "created_at", "device_id",
        "exported_by", "app",
    }  # fmt: skip
    fields(m, "manifest", keys)
    if m["kind"] != "memcube-manifest" or m["format_version"] != FORMAT_VERSION:
        raise bad("manifest")
    cube = fields(m["cube"], "manifest cube", {"id", "name", "description", "owner"})
    name = text(cube["name"], "cube name", 64, 1)
    if not CUBE_NAME.match(name) or name.strip() != name:
        raise CubeFileError(
            f"the cube file names its cube {name[:64]!r}, which is not a valid cube name",
            hint="cube names are 1-64 letters, digits, spaces, '.', '-' or '_'; "
            "nothing was imported",
        )
    emb = fields(m["embedding"], "manifest embedding", {"model", "dim"})
    counts = fields(m["counts"], "manifest counts", set(COUNT_LIMITS))
    checked = {}
    for k, hi in COUNT_LIMITS.items():
        n = counts[k]
        if isinstance(n, int) and not isinstance(n, bool) and n > hi:
            raise CubeFileError(
                f"the cube file declares {n} {k} (at most {hi} are accepted)",
                hint="nothing was imported",
            )
        checked[k] = integer(n, f"{k} count", 0, hi)
    return Manifest(
        cube_id=ident(cube["id"], "cube id"),
        name=name,
        description=text(cube["description"], "cube description", 4096),
        owner=text(cube["owner"], "cube owner", 128),
        embed_model=text(emb["model"], "embedding model", 256, 1),
        embed_dim=integer(emb["dim"], "embedding dimension", 1, MAX_DIM),
        counts=checked,
        created_at=number(m["created_at"], "creation time"),
        device_id=ident(m["device_id"], "device id"),
        exported_by=text(m["exported_by"], "exporting device", 512),
        app=text(m["app"], "app", 128),
    )


def version(v: Any) -> dict[str, Any]:
    fields(v, "memory version", VERSION_FIELDS)
    return {
        "id": ident(v["id"], "version id"),
        "version": integer(v["version"], "version number", 0, 10**9),
        "text": text(v["text"], "version text", MAX_TEXT),
        "key": text(v["key"], "version key"),
        "type": choice(v["type"], "version type", MEMORY_TYPES),
        "layer": choice(v["layer"], "version layer", MEMORY_LAYERS),
        "status": choice(v["status"], "version status", MEMORY_STATUSES),
        "confidence": number(v["confidence"], "version confidence", 0, 1),
        "importance": number(v["importance"], "version importance", 0, 1),
        "tags": tags(v["tags"], "version tags"),
        "valid_from": opt_number(v["valid_from"], "version validity"),
        "valid_to": opt_number(v["valid_to"], "version validity"),
        "change": text(v["change"], "version change", 64),
        "reason": text(v["reason"], "version reason", 4096),
        "changed_at": number(v["changed_at"], "version time"),
        "device_id": text(v["device_id"], "version device", 64),
        "hlc": text(v["hlc"], "version clock", 128),
    }


def item(d: Any) -> dict[str, Any]:
    fields(d, "memory", ITEM_FIELDS)
    vs = d["versions"]
    if not isinstance(vs, list) or len(vs) > MAX_ITEM_VERSIONS:
        raise bad("memory versions")
    if not isinstance(d["pinned"], bool) or not isinstance(d["vector"], bool):
        raise bad("memory flags")
    if not isinstance(d["text"], str) or not d["text"].strip():
        raise bad("memory text")  # the store keeps text stripped, and never empty
    return {
        "id": ident(d["id"], "memory id"),
        "text": text(d["text"], "memory text", MAX_TEXT, 1),
        "key": text(d["key"], "memory key"),
        "type": choice(d["type"], "memory type", MEMORY_TYPES),
        "layer": choice(d["layer"], "memory layer", MEMORY_LAYERS),
        "status": choice(d["status"], "memory status", MEMORY_STATUSES),
        "source": text(d["source"], "memory source", 64),
        "confidence": number(d["confidence"], "memory confidence", 0, 1),
        "importance": number(d["importance"], "memory importance", 0, 1),
        "pinned": d["pinned"],
        "tags": tags(d["tags"], "memory tags"),
        "sources": sources(d["sources"]),
        "valid_from": opt_number(d["valid_from"], "memory validity"),
        "valid_to": opt_number(d["valid_to"], "memory validity"),
        "created_at": number(d["created_at"], "memory time"),
        "updated_at": number(d["updated_at"], "memory time"),
        "version": integer(d["version"], "memory version", 1, 10**9),
        "supersedes": opt_ident(d["supersedes"], "memory link"),
        "superseded_by": opt_ident(d["superseded_by"], "memory link"),
        "context": text(d["context"], "memory context", MAX_TEXT),
        "vector": d["vector"],
        "versions": [version(v) for v in vs],
    }


def items(meta: Any, tail: bytes, dim: int) -> tuple[list[dict[str, Any]], npt.NDArray[np.float32]]:
    """A batch of memories and the matrix of the vectors of those that have one."""
    fields(meta, "memory batch", {"items"})
    raw = meta["items"]
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_BATCH:
        raise bad("memory batch")
    out = [item(d) for d in raw]
    n = sum(1 for d in out if d["vector"])
    if len(tail) != n * dim * 4:
        raise bad("memory batch's vectors")
    vecs = np.frombuffer(tail, dtype="<f4").reshape(n, dim).astype(np.float32)
    if n and not np.isfinite(vecs).all():
        raise bad("memory batch's vectors")
    return out, vecs


def items_checked_before(
    meta: Any, tail: bytes, dim: int
) -> tuple[list[dict[str, Any]], npt.NDArray[np.float32]]:
    """:func:`items` for a record whose exact bytes :func:`items` accepted before (the
    importer's second pass, matched by digest): the same shapes, without checking again."""
    raw: list[dict[str, Any]] = meta["items"]
    n = sum(1 for d in raw if d["vector"])
    return raw, np.frombuffer(tail, dtype="<f4").reshape(n, dim).astype(np.float32)


def activation(meta: Any, tail: bytes) -> dict[str, Any]:
    keys = {"model_sha256", "adapter_id", "prefix_sha256", "settings_key", "n_tokens"}
    fields(meta, "activation state", keys)
    n = integer(meta["n_tokens"], "activation token count", 1, 1 << 20)
    if len(tail) <= n * 4:
        raise bad("activation state")
    for k in ("model_sha256", "prefix_sha256"):
        if not isinstance(meta[k], str) or not SHA256.match(meta[k]):
            raise bad("activation state hash")
    return {
        "model_sha256": meta["model_sha256"],
        "prefix_sha256": meta["prefix_sha256"],
        "adapter_id": text(meta["adapter_id"], "activation adapter", 128),
        "settings_key": text(meta["settings_key"], "activation settings", 1024),
        "n_tokens": n,
        "token_ids": tail[: n * 4],
        "state": tail[n * 4 :],
    }


def adapter(meta: Any, tail: bytes) -> dict[str, Any]:
    keys = {"name", "base_model_sha256", "format", "metrics", "sha256"}
    fields(meta, "adapter", keys)
    if not isinstance(meta["metrics"], dict) or len(meta["metrics"]) > 64:
        raise bad("adapter metrics")
    metrics = {
        text(k, "adapter metric", 64): number(v, "adapter metric")
        for k, v in meta["metrics"].items()
    }
    for k in ("base_model_sha256", "sha256"):
        if not isinstance(meta[k], str) or not SHA256.match(meta[k]):
            raise bad("adapter hash")
    if not tail:
        raise bad("adapter")
    return {
        "name": text(meta["name"], "adapter name", 128, 1),
        "base_model_sha256": meta["base_model_sha256"],
        "format": choice(meta["format"], "adapter format", ("gguf-lora",)),
        "metrics": metrics,
        "sha256": meta["sha256"],
        "blob": tail,
    }
