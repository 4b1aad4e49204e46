"""Rows of ``memory_items`` <-> MemoryItem, vectors, tags, and the WHERE clause of a filter:
the SQL shapes shared by the memory repository and the search candidates."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from memos_desktop.errors import InvalidInputError
from memos_desktop.store.records import MemoryItem, SearchFilters, Source

Vectors = npt.NDArray[np.float32]

ITEM_COLUMNS = (
    "rowid, id, cube_id, text, key, type, layer, status, source, confidence, importance, pinned, "
    "tags, sources, valid_from, valid_to, created_at, updated_at, last_used_at, use_count, "
    "version, supersedes, superseded_by, content_hash, embed_model, context"
)
VERSION_COLUMNS = (
    "item_id, version, text, key, type, layer, status, confidence, importance, tags, "
    "valid_from, valid_to, change, reason, changed_at, device_id, id, hlc"
)


def row_to_item(r: Sequence[Any]) -> MemoryItem:
    return MemoryItem(
        rowid=r[0],
        id=r[1],
        cube_id=r[2],
        text=r[3],
        key=r[4],
        type=r[5],
        layer=r[6],
        status=r[7],
        source=r[8],
        confidence=r[9],
        importance=r[10],
        pinned=bool(r[11]),
        tags=tuple(json.loads(r[12])),
        sources=tuple(Source.from_json(s) for s in json.loads(r[13])),
        valid_from=r[14],
        valid_to=r[15],
        created_at=r[16],
        updated_at=r[17],
        last_used_at=r[18],
        use_count=r[19],
        version=r[20],
        supersedes=r[21],
        superseded_by=r[22],
        content_hash=r[23],
        embed_model=r[24],
        context=r[25],
    )


def normalize_rows(vectors: Any, dim: int) -> Vectors:
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise InvalidInputError(
            f"embedding has shape {arr.shape}, the cube expects {dim} dimensions",
            hint="embed with the cube's embedding model",
        )
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(arr / norms, dtype=np.float32)


def clean_tags(tags: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for t in tags:
        t = t.strip().lower()
        if t and t not in out:
            out.append(t)
    return tuple(out)


def filter_sql(f: SearchFilters, alias: str) -> tuple[str, list[Any]]:
    """The WHERE clause of ``f`` over ``memory_items`` aliased ``alias``."""
    a = alias
    clauses: list[str] = []
    params: list[Any] = []

    def _in(col: str, values: tuple[str, ...]) -> None:
        if values:
            clauses.append(f"{a}.{col} IN ({','.join('?' * len(values))})")
            params.extend(values)

    _in("cube_id", f.cube_ids)
    _in("type", f.types)
    _in("layer", f.layers)
    _in("status", f.statuses)
    if f.tags:
        tags = clean_tags(f.tags)
        clauses.append(
            f"EXISTS (SELECT 1 FROM memory_tags t WHERE t.item_rowid = {a}.rowid "
            f"AND t.tag IN ({','.join('?' * len(tags))}))"
        )
        params.extend(tags)
    if f.since is not None:
        clauses.append(f"{a}.created_at >= ?")
        params.append(f.since)
    if f.until is not None:
        clauses.append(f"{a}.created_at < ?")
        params.append(f.until)
    if f.valid_at is not None:
        clauses.append(
            f"({a}.valid_from IS NULL OR {a}.valid_from <= ?) "
            f"AND ({a}.valid_to IS NULL OR {a}.valid_to > ?)"
        )
        params.extend([f.valid_at, f.valid_at])
    if f.pinned is not None:
        clauses.append(f"{a}.pinned = ?")
        params.append(int(f.pinned))
    return (" AND ".join(clauses) or "1"), params
