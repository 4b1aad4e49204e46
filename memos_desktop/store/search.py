"""Hybrid search: FTS5 BM25 + sqlite-vec KNN, fused by weighted reciprocal rank fusion.

Design rules:
- Filters are pushed down where the index can use them: cube -> the vec0 partition key, type /
  layer / status / created_at range -> vec0 metadata columns, all filters -> the FTS join.
  Filters vec0 cannot express (tags, validity time, pinned) are applied after the KNN, which
  then over-fetches and widens ``k`` until it has enough or has seen everything.
- Fusion is weighted RRF (``w / (rrf_k + rank)``), then multiplied by a recency boost
  (exponential half-life) and an importance boost, so relevance stays first and the boosts
  break near-ties. Every hit carries its score components so front ends can show them.
- Near-identical hits (same content hash, or cosine similarity >= ``dedupe_similarity``) are
  collapsed: the better-scored one is kept.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from memos_desktop.store.db import Database
from memos_desktop.store.memories import MemoryRepo, filter_sql
from memos_desktop.store.migrations import vec_table
from memos_desktop.store.models import MemoryItem, SearchFilters, SearchHit
from memos_desktop.store.vector_index import VectorIndex

_TOKEN = re.compile(r"\w+", re.UNICODE)
# A short English stopword list: FTS5 has none, and BM25 over "the"/"what" only adds noise.
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves""".split()
)
KNN_MAX = 4096  # sqlite-vec's limit on k


@dataclass(frozen=True)
class SearchParams:
    rrf_k: float = 60.0
    fts_weight: float = 1.0
    vec_weight: float = 1.0
    recency_weight: float = 0.15
    recency_half_life_days: float = 90.0
    importance_weight: float = 0.15
    dedupe_similarity: float = 0.97
    candidate_factor: int = 4

    @staticmethod
    def from_settings(s: Any) -> SearchParams:
        return SearchParams(**{k: getattr(s, k) for k in SearchParams.__dataclass_fields__})


def fts_query(text: str) -> str | None:
    """Turn free text into an FTS5 OR-query of quoted terms (no syntax errors possible)."""
    terms: list[str] = []
    for tok in _TOKEN.findall(text.casefold()):
        if tok in STOPWORDS or tok in terms:
            continue
        terms.append(tok)
    if not terms:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def _tied_ranks(hits: list[tuple[int, float]]) -> dict[int, int]:
    """0-based ranks where equal scores share a rank, so ties stay ties after fusion."""
    ranks: dict[int, int] = {}
    prev: float | None = None
    rank = 0
    for i, (r, score) in enumerate(hits):
        if prev is None or score != prev:
            rank = i
        ranks[r] = rank
        prev = score
    return ranks


def _postfilter_needed(f: SearchFilters) -> bool:
    return bool(f.tags) or f.valid_at is not None or f.pinned is not None


def matches(item: MemoryItem, f: SearchFilters) -> bool:
    if f.cube_ids and item.cube_id not in f.cube_ids:
        return False
    if f.types and item.type not in f.types:
        return False
    if f.layers and item.layer not in f.layers:
        return False
    if f.statuses and item.status not in f.statuses:
        return False
    if f.tags and not set(t.lower() for t in f.tags) & set(item.tags):
        return False
    if f.since is not None and item.created_at < f.since:
        return False
    if f.until is not None and item.created_at >= f.until:
        return False
    if f.valid_at is not None and (
        (item.valid_from is not None and item.valid_from > f.valid_at)
        or (item.valid_to is not None and item.valid_to <= f.valid_at)
    ):
        return False
    return f.pinned is None or item.pinned == f.pinned


class Searcher:
    """``resident=True`` keeps a :class:`VectorIndex` per dimension in RAM (long-lived processes:
    TUI, daemon); otherwise KNN runs in sqlite-vec (one-shot CLI commands)."""

    def __init__(self, db: Database, memories: MemoryRepo, *, resident: bool = False) -> None:
        self.db = db
        self.memories = memories
        self.resident = resident
        self._indexes: dict[int, VectorIndex] = {}

    def index(self, dim: int) -> VectorIndex:
        idx = self._indexes.get(dim)
        if idx is None:
            idx = self._indexes[dim] = VectorIndex(self.db, dim)
        return idx

    # --- the two retrievers ----------------------------------------------------------------

    def fts(self, query: str, f: SearchFilters, limit: int) -> list[tuple[int, float]]:
        match = fts_query(query)
        if match is None:
            return []
        where, params = filter_sql(f, "m")
        rows = self.db.query(
            "SELECT m.rowid, bm25(memory_fts, 1.0, 0.5, 0.5) AS score FROM memory_fts "
            "JOIN memory_items m ON m.rowid = memory_fts.rowid "
            f"WHERE memory_fts MATCH ? AND {where} ORDER BY score LIMIT ?",
            (match, *params, limit),
        )
        return [(int(r[0]), float(r[1])) for r in rows]

    def knn(
        self, vector: Any, dim: int, f: SearchFilters, limit: int
    ) -> list[tuple[int, float]]:
        """Nearest rowids by cosine distance, with the filters vec0 can take pushed down."""
        if self.resident:
            return self.index(dim).knn(vector, f, limit)
        table = vec_table(dim)
        if not self.db.scalar("SELECT count(*) FROM sqlite_master WHERE name = ?", (table,)):
            return []
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        if q.shape[0] != dim:
            return []
        clauses = ["embedding MATCH ?", "k = ?"]
        base: list[Any] = [q.tobytes()]
        extra: list[Any] = []
        for col, values in (("type", f.types), ("layer", f.layers), ("status", f.statuses)):
            if values:
                clauses.append(f"{col} IN ({','.join('?' * len(values))})")
                extra.extend(values)
        if f.since is not None:
            clauses.append("created_at >= ?")
            extra.append(float(f.since))
        if f.until is not None:
            clauses.append("created_at < ?")
            extra.append(float(f.until))
        cubes: tuple[str | None, ...] = f.cube_ids or (None,)
        out: list[tuple[int, float]] = []
        for cube in cubes:
            cl = list(clauses)
            params = list(extra)
            if cube is not None:
                cl.append("cube_id = ?")
                params.append(cube)
            sql = f"SELECT rowid, distance FROM {table} WHERE {' AND '.join(cl)} ORDER BY distance"
            out.extend(
                (int(r[0]), float(r[1]))
                for r in self.db.query(sql, (*base, min(limit, KNN_MAX), *params))
            )
        out.sort(key=lambda t: t[1])
        return out[:limit]

    # --- fusion ----------------------------------------------------------------------------

    def search(
        self,
        query: str,
        vector: Any | None,
        dim: int | None,
        filters: SearchFilters = SearchFilters(),
        *,
        top_k: int = 10,
        params: SearchParams = SearchParams(),
        now: float | None = None,
    ) -> list[SearchHit]:
        now = time.time() if now is None else now
        n_cand = max(top_k * params.candidate_factor, 20)
        fts_hits = self.fts(query, filters, n_cand) if params.fts_weight > 0 else []
        vec_hits: list[tuple[int, float]] = []
        items: dict[int, MemoryItem] = {}
        if vector is not None and dim and params.vec_weight > 0:
            k = n_cand
            while True:
                raw = self.knn(vector, dim, filters, k)
                fetched = self.memories.get_many([r for r, _ in raw if r not in items])
                items.update(fetched)
                vec_hits = [(r, d) for r, d in raw if r in items and matches(items[r], filters)]
                if (
                    not _postfilter_needed(filters)
                    or len(vec_hits) >= n_cand
                    or len(raw) < k
                    or k >= KNN_MAX
                ):
                    break
                k = min(k * 8, KNN_MAX)
            vec_hits = vec_hits[:n_cand]
        missing = [r for r, _ in fts_hits if r not in items]
        if missing:
            items.update(self.memories.get_many(missing))

        scores: dict[int, float] = {}
        fts_rank = _tied_ranks(fts_hits)
        vec_rank = _tied_ranks(vec_hits)
        bm25 = dict(fts_hits)
        dist = dict(vec_hits)
        for r, i in fts_rank.items():
            scores[r] = scores.get(r, 0.0) + params.fts_weight / (params.rrf_k + i + 1)
        for r, i in vec_rank.items():
            scores[r] = scores.get(r, 0.0) + params.vec_weight / (params.rrf_k + i + 1)

        half_life = max(params.recency_half_life_days, 1e-6) * 86400.0
        hits: list[SearchHit] = []
        for r, base in scores.items():
            item = items.get(r)
            if item is None or not matches(item, filters):
                continue
            age = max(0.0, now - item.created_at)
            recency = math.pow(0.5, age / half_life)
            importance = (item.importance - 0.5) * 2.0
            boost = 1.0 + params.recency_weight * recency + params.importance_weight * importance
            hits.append(
                SearchHit(
                    item=item,
                    score=base * boost,
                    fts_rank=fts_rank.get(r),
                    vec_rank=vec_rank.get(r),
                    bm25=bm25.get(r),
                    distance=dist.get(r),
                    components={"rrf": base, "recency": recency, "importance": importance,
                                "boost": boost},
                )
            )
        hits.sort(key=lambda h: (-h.score, h.item.rowid))
        return self._dedupe(hits, dim, params.dedupe_similarity, top_k)

    def _dedupe(
        self, hits: list[SearchHit], dim: int | None, threshold: float, top_k: int
    ) -> list[SearchHit]:
        if not hits:
            return hits
        window = hits[: top_k * 3]
        vecs = self.memories.vectors(dim, [h.item.rowid for h in window]) if dim else {}
        kept: list[SearchHit] = []
        kept_hashes: set[str] = set()
        kept_vecs: list[Any] = []
        for h in window:
            if h.item.content_hash in kept_hashes:
                continue
            v = vecs.get(h.item.rowid)
            if v is not None and kept_vecs and threshold < 1.0:
                sims = np.stack(kept_vecs) @ v
                if float(sims.max()) >= threshold:
                    continue
            kept.append(h)
            kept_hashes.add(h.item.content_hash)
            if v is not None:
                kept_vecs.append(v)
            if len(kept) >= top_k:
                break
        return kept
