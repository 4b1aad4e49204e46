"""Rank fusion and de-duplication: the one reciprocal-rank fusion the memory layer uses (hybrid
search fuses BM25 with KNN, fine mode fuses the rewritten queries' lists), and the collapse of
near-identical hits.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from memos_desktop.store.records import SearchHit

K = TypeVar("K", bound=Hashable)
_TOKEN = re.compile(r"\w+", re.UNICODE)


def tied_ranks(scored: Iterable[tuple[K, float]]) -> dict[K, int]:
    """0-based ranks of a best-first list, where equal scores share a rank (ties stay ties
    after fusion)."""
    ranks: dict[K, int] = {}
    prev: float | None = None
    rank = 0
    for i, (key, score) in enumerate(scored):
        if prev is None or score != prev:
            rank = i
        ranks[key] = rank
        prev = score
    return ranks


def order_ranks(keys: Iterable[K]) -> dict[K, int]:
    """0-based ranks of a best-first list of distinct keys (the first occurrence counts)."""
    ranks: dict[K, int] = {}
    for key in keys:
        ranks.setdefault(key, len(ranks))
    return ranks


def rrf(lists: Sequence[tuple[float, Mapping[K, int]]], k: float) -> dict[K, float]:
    """Weighted reciprocal rank fusion: ``sum(w / (k + rank + 1))`` over the lists (each a
    weight and a key -> 0-based rank map), in first-seen order."""
    scores: dict[K, float] = {}
    for weight, ranks in lists:
        for key, rank in ranks.items():
            scores[key] = scores.get(key, 0.0) + weight / (k + rank + 1)
    return scores


def _token_set(text: str) -> frozenset[str]:
    return frozenset(_TOKEN.findall(text.casefold()))


def dedupe(
    hits: list[SearchHit], vectors: dict[int, Any], threshold: float, top_k: int
) -> list[SearchHit]:
    """Collapse near-identical hits, keeping the better-scored one: same content hash, or
    similarity >= ``threshold`` (cosine when both have vectors, else word-set Jaccard)."""
    kept: list[tuple[SearchHit, Any, frozenset[str]]] = []
    hashes: set[str] = set()
    for h in hits:
        if h.item.content_hash in hashes:
            continue
        v = vectors.get(h.item.rowid)
        toks = _token_set(h.item.text)
        if threshold <= 1.0 and any(
            _similarity(v, toks, kv, kt) >= threshold for _, kv, kt in kept
        ):
            continue
        kept.append((h, v, toks))
        hashes.add(h.item.content_hash)
        if len(kept) >= top_k:
            break
    return [h for h, _, _ in kept]


def _similarity(v: Any, toks: frozenset[str], kv: Any, kt: frozenset[str]) -> float:
    if v is not None and kv is not None:
        return float(np.dot(v, kv))
    if not toks or not kt:
        return 0.0
    return len(toks & kt) / len(toks | kt)
