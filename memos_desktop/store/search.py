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
from dataclasses import replace
from typing import Any

import numpy as np

from memos_desktop.config import SearchSettings
from memos_desktop.store.db import Database
from memos_desktop.store.memories import MemoryRepo
from memos_desktop.store.memory_rows import clean_tags, filter_sql
from memos_desktop.store.migrations import vec_table
from memos_desktop.store.records import SearchFilters, SearchHit
from memos_desktop.store.vector_index import VectorIndex

_TOKEN = re.compile(r"\w+", re.UNICODE)
# A short English stopword list: FTS5 has none, and BM25 over "the"/"what" only adds noise.
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for
    from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just me more most my myself no nor not now of off on once only
    or other our ours ourselves out over own same she should so some such than that the
    their theirs them themselves then there these they this those through to too under
    until up very was we were what when where which while who whom why will with would you
    your yours yourself yourselves
    """.split()
)
KNN_MAX = 4096  # sqlite-vec's limit on k
VEC_IN_MAX = 10_000  # largest rowid set passed to a vec0 KNN as "rowid IN (...)"
Neighbour = tuple[int, float, Any]  # rowid, cosine distance, the stored unit vector


# The search parameters are the [search] settings themselves (one definition, in config.py).
SearchParams = SearchSettings


def query_terms(text: str) -> list[str]:
    terms: list[str] = []
    for tok in _TOKEN.findall(text.casefold()):
        if tok in STOPWORDS or tok in terms:
            continue
        terms.append(tok)
    return terms


def quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def fts_query(text: str) -> str | None:
    """Turn free text into an FTS5 OR-query of quoted terms (no syntax errors possible)."""
    terms = query_terms(text)
    return " OR ".join(quote(t) for t in terms) if terms else None


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


class Searcher:
    """``resident=True`` keeps a :class:`VectorIndex` per dimension in RAM (long-lived processes:
    TUI, daemon); otherwise KNN runs in sqlite-vec (one-shot CLI commands)."""

    def __init__(self, db: Database, memories: MemoryRepo, *, resident: bool = False) -> None:
        self.db = db
        self.memories = memories
        self.resident = resident
        self._indexes: dict[int, VectorIndex] = {}
        self._tables: set[str] = set()
        # term -> (df, corpus size when counted); reused while the corpus grew < 10%.
        self._df_cache: dict[str, tuple[int, int]] = {}

    def index(self, dim: int) -> VectorIndex:
        idx = self._indexes.get(dim)
        if idx is None:
            idx = self._indexes[dim] = VectorIndex(self.db, dim)
        return idx

    # --- the two retrievers ----------------------------------------------------------------

    def _prune_common(self, terms: list[str], max_df: float, max_docs: int) -> list[str]:
        if len(terms) <= 2:
            return terms
        n_docs = int(self.db.scalar("SELECT coalesce(max(rowid), 0) FROM memory_items"))
        cap = min(int(max_df * n_docs), max_docs)
        if cap < 200:
            return terms
        df = {t: self._df(t, cap, n_docs) for t in terms}
        keep = [t for t in terms if df[t] <= cap]
        if len(keep) < 2:
            keep = sorted(terms, key=lambda t: df[t])[:2]
        return keep

    def _df(self, term: str, cap: int, n_docs: int) -> int:
        hit = self._df_cache.get(term)
        if hit is not None and abs(n_docs - hit[1]) <= 0.1 * hit[1]:
            return hit[0]
        # Counting stops at cap + 1: a common term costs a bounded doclist walk, no scoring.
        df = int(
            self.db.scalar(
                "SELECT count(*) FROM (SELECT 1 FROM memory_fts WHERE memory_fts MATCH ? LIMIT ?)",
                (quote(term), cap + 1),
            )
        )
        if len(self._df_cache) > 50_000:
            self._df_cache.clear()
        self._df_cache[term] = (df, n_docs)
        return df

    def fts(
        self,
        query: str,
        f: SearchFilters,
        limit: int,
        max_df: float = 1.0,
        context_weight: float = 0.6,
        max_docs: int = 2000,
    ) -> list[tuple[int, float]]:
        terms = self._prune_common(query_terms(query), max_df, max_docs)
        if not terms:
            return []
        where, params = filter_sql(f, "m")
        rows = self.db.query(
            f"SELECT m.rowid, bm25(memory_fts, 1.0, 0.5, 0.5, {float(context_weight)!r}) AS score "
            "FROM memory_fts "
            "JOIN memory_items m ON m.rowid = memory_fts.rowid "
            f"WHERE memory_fts MATCH ? AND {where} ORDER BY score LIMIT ?",
            (" OR ".join(quote(t) for t in terms), *params, limit),
        )
        return [(int(r[0]), float(r[1])) for r in rows]

    def _tagged(self, tags: tuple[str, ...]) -> Any:
        tags = clean_tags(tags)
        rows = self.db.query(
            f"SELECT item_rowid FROM memory_tags WHERE tag IN ({','.join('?' * len(tags))})", tags
        )
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def _postfilter(self, rowids: list[int], f: SearchFilters) -> set[int]:
        """The subset of ``rowids`` that passes every filter (one light SQL query per 500)."""
        where, params = filter_sql(f, "m")
        ok: set[int] = set()
        for i in range(0, len(rowids), 500):
            chunk = rowids[i : i + 500]
            ok.update(
                int(r[0])
                for r in self.db.query(
                    f"SELECT m.rowid FROM memory_items m WHERE m.rowid IN "
                    f"({','.join('?' * len(chunk))}) AND {where}",
                    (*chunk, *params),
                )
            )
        return ok

    def knn(
        self, vector: Any, dim: int, f: SearchFilters, limit: int, allowed: Any | None = None
    ) -> list[Neighbour]:
        """Nearest rowids by cosine distance (with their vectors), with the filters vec0 can
        take pushed down."""
        if self.resident:
            return self.index(dim).knn(vector, f, limit, allowed)
        table = vec_table(dim)
        if table not in self._tables:
            if not self.db.scalar("SELECT count(*) FROM sqlite_master WHERE name = ?", (table,)):
                return []
            self._tables.add(table)
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        if q.shape[0] != dim:
            return []
        clauses = ["embedding MATCH ?", "k = ?"]
        extra: list[Any] = []
        if allowed is not None:
            if len(allowed) == 0:
                return []
            ids = [int(r) for r in allowed]
            # SQLite turns a one-element "rowid IN (?)" into "rowid = ?", which vec0 (0.1.9)
            # then answers with nothing in a KNN query: repeat the element to keep it an IN.
            ids = ids * 2 if len(ids) == 1 else ids
            clauses.append(f"rowid IN ({','.join('?' * len(ids))})")
            extra.extend(ids)
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
        out: list[Neighbour] = []
        for cube in cubes:
            cl = list(clauses)
            params = list(extra)
            if cube is not None:
                cl.append("cube_id = ?")
                params.append(cube)
            sql = (
                f"SELECT rowid, distance, embedding FROM {table} WHERE {' AND '.join(cl)} "
                "ORDER BY distance"
            )
            out.extend(
                (int(r[0]), float(r[1]), np.frombuffer(r[2], dtype=np.float32))
                for r in self.db.query(sql, (q.tobytes(), min(limit, KNN_MAX), *params))
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
        params: SearchParams | None = None,
        now: float | None = None,
    ) -> list[SearchHit]:
        params = params or SearchParams()
        now = time.time() if now is None else now
        n_cand = max(top_k * params.candidate_factor, 20)
        fts_hits = (
            self.fts(
                query,
                filters,
                n_cand,
                params.fts_max_df,
                params.fts_context_weight,
                params.fts_max_docs,
            )
            if params.fts_weight > 0
            else []
        )
        vec_hits: list[tuple[int, float]] = []
        vectors: dict[int, Any] = {}
        if vector is not None and dim and params.vec_weight > 0:
            k = n_cand
            # The resident index takes the tag filter as a rowid mask (one indexed query);
            # what neither KNN path can filter is checked after, widening k until enough pass.
            allowed = None
            rest = filters
            if filters.tags:
                tagged = self._tagged(filters.tags)
                if self.resident or len(tagged) <= VEC_IN_MAX:
                    allowed, rest = tagged, replace(filters, tags=())
            while True:
                raw = self.knn(vector, dim, filters, k, allowed)
                passing = (
                    self._postfilter([r for r, _, _ in raw], filters)
                    if _postfilter_needed(rest)
                    else {r for r, _, _ in raw}
                )
                vec_hits = [(r, d) for r, d, _ in raw if r in passing]
                if len(vec_hits) >= n_cand or len(raw) < k or k >= KNN_MAX:
                    break
                k = min(k * 8, KNN_MAX)
            vec_hits = vec_hits[:n_cand]
            vectors = {r: v for r, _, v in raw if r in passing}
        scores: dict[int, float] = {}
        fts_rank = _tied_ranks(fts_hits)
        vec_rank = _tied_ranks(vec_hits)
        bm25 = dict(fts_hits)
        dist = dict(vec_hits)
        for r, i in fts_rank.items():
            scores[r] = scores.get(r, 0.0) + params.fts_weight / (params.rrf_k + i + 1)
        for r, i in vec_rank.items():
            scores[r] = scores.get(r, 0.0) + params.vec_weight / (params.rrf_k + i + 1)

        # Boosts need only two numbers per candidate: fetch those, and load whole items (tags,
        # sources: JSON) only for the few that can make the cut.
        half_life = max(params.recency_half_life_days, 1e-6) * 86400.0
        final: list[tuple[float, int, dict[str, float]]] = []
        for r, created, importance in self.memories.score_fields(list(scores)):
            recency = math.pow(0.5, max(0.0, now - created) / half_life)
            imp = (importance - 0.5) * 2.0
            boost = 1.0 + params.recency_weight * recency + params.importance_weight * imp
            final.append(
                (
                    scores[r] * boost,
                    r,
                    {"rrf": scores[r], "recency": recency, "importance": imp, "boost": boost},
                )
            )
        final.sort(key=lambda t: (-t[0], t[1]))
        final = final[: top_k * 3]
        items = self.memories.get_many([r for _, r, _ in final])
        hits = [
            SearchHit(
                item=items[r],
                score=score,
                fts_rank=fts_rank.get(r),
                vec_rank=vec_rank.get(r),
                bm25=bm25.get(r),
                distance=dist.get(r),
                components=comp,
            )
            for score, r, comp in final
            if r in items
        ]
        hits.sort(key=lambda h: (-h.score, h.item.rowid))
        return dedupe(hits, vectors, params.dedupe_similarity, top_k)


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
