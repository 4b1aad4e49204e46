"""Hybrid search policy: the store's BM25 and KNN candidates, fused by weighted reciprocal rank,
multiplied by recency and importance boosts, de-duplicated.

Design rules:
- The store finds candidates (store/search.py: FTS5, KNN, filters pushed down); everything that
  decides an order lives here, in one place.
- Fusion is weighted RRF (``w / (rrf_k + rank)``) whose BM25 weight follows the query's
  lexical evidence (issue 14): the best BM25 score over the query's IDF mass, i.e. how much of
  the query the words actually found. Names and rare words that match -> BM25 counts fully
  (``fts_weight``); a request that shares only common or no words with what bears on it
  ("recommend a restaurant" / "I'm vegetarian") -> meaning leads (``fts_weight_min``).
- Then multiplicative factors: recency and importance boosts (near-ties), the memory type's
  weight (raw episodes below facts), time in the question (memory/timeq.py: what falls in
  "last week" / "in May 2025" is boosted) and validity (a present-tense question demotes
  states that have ended; a past-tense one favours them). Every hit carries its score
  components so front ends can show them.
- A preference channel: preferences and instructions bear on requests whatever their words
  (after MemOS's preference memory), so the ``preference_slots`` nearest of them always get a
  place in the results (replacing the weakest), when they pass the floor.
- A relevance floor, relative: a candidate's cosine similarity to the query must reach
  ``relevance_floor`` times the best candidate's, so what is far weaker than the best match
  does not fill the list because the store is small. Relative because absolute MiniLM cosines
  do not separate: "I am vegan" scores 0.23 for "Where do I live?" but 0.06 for "recommend a
  restaurant", where it matters. A keyword lookup of one or two words keeps every word match.
- Near-identical hits (same content hash, or cosine similarity >= ``dedupe_similarity``) are
  collapsed: the better-scored one is kept.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

import numpy as np

from memos_desktop.config import SearchSettings
from memos_desktop.memory import timeq
from memos_desktop.memory.fusion import dedupe, rrf, tied_ranks
from memos_desktop.memory.lexicon import same_relation
from memos_desktop.store.memories import MemoryRepo
from memos_desktop.store.records import TYPE_WEIGHT, SearchFilters, SearchHit
from memos_desktop.store.search import Searcher, query_terms

# Queries of at most this many content words are keyword lookups: a word match always counts.
KEYWORD_TERMS = 2

# The search parameters are the [search] settings themselves (one definition, in config.py).
SearchParams = SearchSettings


# What the preference channel looks in.
PREFERENCE_TYPES = ("preference", "instruction")
DAY = 86400.0


def retriever_alone(params: SearchParams, retriever: str) -> SearchParams:
    """Settings under which the search returns one retriever's own order ("bm25" or "dense"):
    no fusion, floor, time, type weights, preference channel or boosts. The baselines of every
    evaluation table."""
    if retriever not in ("bm25", "dense"):
        raise ValueError(f"unknown retriever {retriever!r}")
    return replace(
        params,
        fts_weight=0.0 if retriever == "dense" else params.fts_weight,
        vec_weight=0.0 if retriever == "bm25" else params.vec_weight,
        fts_weight_min=0.0,
        relevance_floor=0.0,
        time_weight=0.0,
        ended_weight=1.0,
        ended_past_boost=0.0,
        preference_slots=0,
        recency_weight=0.0,
        importance_weight=0.0,
        type_weights=False,
    )


def lexical_evidence(best_bm25: float | None, idf_mass: float) -> float:
    """0..1: the best BM25 score (FTS5's, negative) over the query's IDF mass."""
    if best_bm25 is None or idf_mass <= 0:
        return 0.0
    return max(0.0, min(1.0, -best_bm25 / idf_mass))


def below_floor(
    scores: dict[int, float],
    word_matched: dict[int, int],
    similarity: dict[int, float],
    relevance_floor: float,
    *,
    keyword: bool,
) -> list[int]:
    """Candidates whose cosine similarity is under ``relevance_floor`` times the best one's
    (in a keyword lookup a word match always counts; a candidate without a vector is kept)."""
    best = max((similarity[r] for r in scores if r in similarity), default=0.0)
    if best <= 0.0 or relevance_floor <= 0.0:
        return []
    floor = relevance_floor * best
    return [
        r
        for r in scores
        if not (keyword and r in word_matched) and r in similarity and similarity[r] < floor
    ]


def time_factor(
    tq: timeq.TimeQuery,
    created: float,
    valid_from: float | None,
    valid_to: float | None,
    now: float,
    params: SearchParams,
) -> float:
    """The time in the question against a memory's time: inside the window -> boosted; an ended
    state -> demoted for a present-tense question, favoured for a past-tense one."""
    f = 1.0
    if tq.window is not None and params.time_weight > 0:
        a, z = tq.window
        start = valid_from if valid_from is not None else created
        end = valid_to if valid_to is not None else now
        if a <= start < z or (valid_from is not None and start < z and end > a):
            f *= 1.0 + params.time_weight
    if valid_to is not None and valid_to <= now:
        f *= 1.0 + params.ended_past_boost if tq.tense == "past" else params.ended_weight
    return f


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
        tq = timeq.parse(query, now)
        if tq.tense == "past" and filters.statuses == ("active",):
            # "where did I live before?": a fact a correction replaced is archived, not gone
            filters = replace(filters, statuses=("active", "archived"))
        has_vec = vector is not None and bool(dim)
        # The word search also looks for a relation's other names ("my dad" for "my father").
        words = " ".join([query, *same_relation(query)])
        cand = self.searcher.candidates(
            words,
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
        evidence = 1.0
        if has_vec and cand.fts and params.fts_weight_min < params.fts_weight:
            mass = self.searcher.idf_mass(query, params.fts_max_df, params.fts_max_docs)
            evidence = lexical_evidence(cand.fts[0][1], mass)
        w_fts = params.fts_weight_min + (params.fts_weight - params.fts_weight_min) * evidence
        scores = rrf([(w_fts, fts_rank), (params.vec_weight, vec_rank)], params.rrf_k)

        similarity = {r: 1.0 - d for r, d in cand.dense}
        channel: list[int] = []
        if has_vec:
            q = np.asarray(vector, dtype=np.float32).reshape(-1)
            lexical_only = [r for r in fts_rank if r not in similarity]
            for r, v in self.searcher.vectors_of(lexical_only, dim or 0).items():
                similarity[r] = float(np.dot(v, q))
                cand.vectors.setdefault(r, v)
            if params.preference_slots > 0 and params.vec_weight > 0:
                for r, d in self.preference_channel(vector, dim or 0, filters, params, cand.dense):
                    similarity.setdefault(r, 1.0 - d)
                    channel.append(r)
            keyword = len(query_terms(query)) <= KEYWORD_TERMS
            cut = set(
                below_floor(
                    {**dict.fromkeys(channel, 0.0), **scores},
                    fts_rank,
                    similarity,
                    params.relevance_floor,
                    keyword=keyword,
                )
            )
            scores = {r: v for r, v in scores.items() if r not in cut}
            channel = [r for r in channel if r not in cut]
            for r in channel:
                scores.setdefault(r, 0.0)

        # The factors need a few numbers per candidate: fetch those, and load whole items (tags,
        # sources: JSON) only for the few that can make the cut.
        half_life = max(params.recency_half_life_days, 1e-6) * DAY
        final: list[tuple[float, int, dict[str, float]]] = []
        for r, created, importance, typ, vfrom, vto in self.memories.score_fields(list(scores)):
            recency = math.pow(0.5, max(0.0, now - created) / half_life)
            imp = (importance - 0.5) * 2.0
            boost = 1.0 + params.recency_weight * recency + params.importance_weight * imp
            tw = TYPE_WEIGHT.get(typ, 1.0) if params.type_weights else 1.0
            tf = time_factor(tq, created, vfrom, vto, now, params)
            comp = {
                "rrf": scores[r],
                "recency": recency,
                "importance": imp,
                "boost": boost,
                "type_weight": tw,
                "time": tf,
                "lexical_evidence": evidence,
            }
            if r in similarity:
                comp["similarity"] = similarity[r]
            final.append((scores[r] * boost * tw * tf, r, comp))
        final.sort(key=lambda t: (-t[0], t[1]))
        keep = final[: top_k * 3]
        kept = {r for _, r, _ in keep}
        keep += [t for t in final if t[1] in channel and t[1] not in kept]
        items = self.memories.get_many([r for _, r, _ in keep])
        hits = [
            SearchHit(
                item=items[r],
                score=score,
                fts_rank=fts_rank.get(r),
                vec_rank=vec_rank.get(r),
                bm25=bm25.get(r),
                distance=dist.get(r, 1.0 - similarity[r] if r in similarity else None),
                components=comp,
            )
            for score, r, comp in keep
            if r in items
        ]
        hits.sort(key=lambda h: (-h.score, h.item.rowid))
        out = dedupe(hits, cand.vectors, params.dedupe_similarity, len(hits))
        return with_channel(out, set(channel), top_k)

    def preference_channel(
        self,
        vector: Any,
        dim: int,
        filters: SearchFilters,
        params: SearchParams,
        dense: list[tuple[int, float]] | None = None,
    ) -> list[tuple[int, float]]:
        """The preferences and instructions nearest the request (rowid, cosine distance),
        through the same filters as the search.

        ``dense`` is the main KNN's exact, filtered, nearest-first list. Every preference in it
        is nearer than any memory outside it, so when it holds ``preference_slots`` of them
        those are the answer and no second scan runs (on the one-shot sqlite-vec path that
        scan costs as much as the first). Only a list with too few of them needs the scan."""
        types = tuple(t for t in PREFERENCE_TYPES if not filters.types or t in filters.types)
        if not types:
            return []
        slots = params.preference_slots
        if dense:
            kinds = {
                int(r): str(t)
                for r, _, _, t, _, _ in self.memories.score_fields([r for r, _ in dense])
            }
            found = [(r, d) for r, d in dense if kinds.get(r) in types]
            if len(found) >= slots:
                return found[:slots]
        f = replace(filters, types=types)
        return self.searcher.candidates("", vector, dim, f, slots, lexical=False).dense


def with_channel(hits: list[SearchHit], channel: set[int], top_k: int) -> list[SearchHit]:
    """The top ``top_k`` hits, where every channel hit (a preference that bears on the request)
    has a place: it replaces the weakest non-channel hit if it did not make the cut. Order by
    score is kept."""
    top = hits[:top_k]
    missing = [h for h in hits[top_k:] if h.item.rowid in channel]
    for h in missing:
        weakest = next(
            (i for i in range(len(top) - 1, -1, -1) if top[i].item.rowid not in channel), None
        )
        if weakest is None:
            break
        top[weakest] = h
    top.sort(key=lambda h: (-h.score, h.item.rowid))
    return top
