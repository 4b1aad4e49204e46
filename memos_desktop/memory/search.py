"""Hybrid search policy: the store's BM25 and KNN candidates, fused by weighted reciprocal rank,
multiplied by recency and importance boosts, de-duplicated.

Design rules:
- The store finds candidates (store/search.py: FTS5, KNN, filters pushed down); everything that
  decides an order lives here, in one place.
- Fusion is weighted RRF (``w / (rrf_k + rank)``), then multiplied by a recency boost
  (exponential half-life) and an importance boost, so relevance stays first and the boosts
  break near-ties. Every hit carries its score components so front ends can show them.
- A relevance floor, so unrelated memories do not fill the list just because the store is
  small or shares a common word: every candidate with a vector must be at least
  ``min_similarity`` cosine-similar to the query, and one found by meaning alone (no query word
  in it) at least ``min_similarity_dense_only``. Chosen on LoCoMo conversations 1-5 (MiniLM):
  0.2 kept 99.6% of the evidence turns in the top 10 and cut half of the hits from someone
  else's conversation; reported on 6-10 in BENCHMARKS.md.
- Near-identical hits (same content hash, or cosine similarity >= ``dedupe_similarity``) are
  collapsed: the better-scored one is kept.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from memos_desktop.config import SearchSettings
from memos_desktop.memory.fusion import dedupe, rrf, tied_ranks
from memos_desktop.store.memories import MemoryRepo
from memos_desktop.store.records import SearchFilters, SearchHit
from memos_desktop.store.search import Searcher, query_terms

# Queries of at most this many content words are keyword lookups: a word match always counts.
KEYWORD_TERMS = 2

# The search parameters are the [search] settings themselves (one definition, in config.py).
SearchParams = SearchSettings


def below_floor(
    scores: dict[int, float],
    word_matched: dict[int, int],
    similarity: dict[int, float],
    params: SearchParams,
    *,
    keyword: bool,
) -> list[int]:
    """Candidates under the relevance floor (cosine similarity to the query): in a keyword
    lookup a word match always counts; otherwise a word-matched candidate needs
    ``min_similarity`` and one found by meaning alone ``min_similarity_dense_only``.
    Candidates without a vector (not embedded yet) are never cut."""
    out = []
    for r in scores:
        matched = r in word_matched
        sim = similarity.get(r)
        if (keyword and matched) or sim is None:
            continue
        floor = params.min_similarity
        if not matched:
            floor = max(floor, params.min_similarity_dense_only)
        if sim < floor:
            out.append(r)
    return out


class HybridSearch:
    def __init__(self, searcher: Searcher, memories: MemoryRepo) -> None:
        self.searcher = searcher
        self.memories = memories

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
        cand = self.searcher.candidates(
            query,
            vector,
            dim,
            filters,
            max(top_k * params.candidate_factor, 20),
            lexical=params.fts_weight > 0,
            dense=params.vec_weight > 0,
            fts_max_df=params.fts_max_df,
            fts_context_weight=params.fts_context_weight,
            fts_max_docs=params.fts_max_docs,
        )
        fts_rank = tied_ranks(cand.fts)
        vec_rank = tied_ranks(cand.dense)
        bm25 = dict(cand.fts)
        dist = dict(cand.dense)
        scores = rrf([(params.fts_weight, fts_rank), (params.vec_weight, vec_rank)], params.rrf_k)
        if vector is not None and dim and params.min_similarity > -1.0:
            similarity = {r: 1.0 - d for r, d in cand.dense}
            # A keyword lookup ("Gina", "peanut allergy") finds every memory with the word;
            # in a question, one shared word is often chance, so its hits need the floor too.
            keyword = len(query_terms(query)) <= KEYWORD_TERMS
            lexical_only = [] if keyword else [r for r in fts_rank if r not in similarity]
            q = np.asarray(vector, dtype=np.float32).reshape(-1)
            for r, v in self.searcher.vectors_of(lexical_only, dim).items():
                similarity[r] = float(np.dot(v, q))
                cand.vectors.setdefault(r, v)
            for r in below_floor(scores, fts_rank, similarity, params, keyword=keyword):
                del scores[r]

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
        return dedupe(hits, cand.vectors, params.dedupe_similarity, top_k)
