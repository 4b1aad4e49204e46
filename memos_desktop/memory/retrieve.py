"""Fine-mode retrieval: the LLM rewrites the question into a few short search queries (names,
key words, the likely wording of the answer), each is searched, and the lists are fused with
the original query's by reciprocal rank (memory/fusion.py, the same RRF hybrid search uses).

Design rule: fine mode can only add candidates. The original query's list always takes part,
with the larger weight, and any failure of the model (error, invalid or empty output) leaves
exactly the fast-mode result.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from memos_desktop.engines.base import ChatEngine, ChatMessage, SamplingParams
from memos_desktop.memory.fusion import order_ranks, rrf
from memos_desktop.store.records import SearchHit
from memos_desktop.store.search import query_terms

log = logging.getLogger(__name__)

REWRITE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "queries": {
            "type": "array",
            "items": {"type": "string", "minLength": 2, "maxLength": 80},
            "maxItems": 3,
        }
    },
    "required": ["queries"],
}

REWRITE_PROMPT = """Rewrite the question below into at most three short search queries for a
personal memory store: the names, places, things and key words a stored note answering it would
contain. Return JSON: {{"queries": ["...", "..."]}}.

Question: {question}"""

ORIGINAL_WEIGHT = 1.0
REWRITE_WEIGHT = 0.5
RRF_K = 10.0


def rewrite(engine: ChatEngine, question: str) -> list[str]:
    try:
        out = engine.complete_json(
            [ChatMessage("user", REWRITE_PROMPT.format(question=question))],
            REWRITE_SCHEMA,
            SamplingParams.greedy(max_tokens=96),
        )
    except Exception as exc:  # small models fail often: fine mode then equals fast mode
        log.info("query rewrite failed: %s", type(exc).__name__)
        return []
    queries = out.get("queries") if isinstance(out, dict) else None
    if not isinstance(queries, list):
        return []
    return usable_rewrites(question, queries)


def usable_rewrites(question: str, queries: Sequence[object]) -> list[str]:
    """The rewrites worth a search: strings with at least one word that is not a stopword
    ("..." or "the what" carry nothing), whose words differ from the question's and from the
    rewrites kept before them; at most three."""
    seen = {tuple(sorted(query_terms(question)))}
    kept: list[str] = []
    for q in queries:
        if not isinstance(q, str):
            continue
        terms = tuple(sorted(query_terms(q)))
        if not any(any(ch.isalpha() for ch in t) for t in terms) or terms in seen:
            continue
        seen.add(terms)
        kept.append(q.strip())
    return kept[:3]


def fine_search(
    question: str,
    search: Callable[[str, int], Sequence[SearchHit]],
    engine: ChatEngine,
    top_k: int,
) -> tuple[list[SearchHit], list[str]]:
    """Fused hits and the rewritten queries that were used."""
    base = list(search(question, top_k * 2))
    queries = rewrite(engine, question)
    if not queries:
        return base[:top_k], []
    lists = [(ORIGINAL_WEIGHT, base)] + [
        (REWRITE_WEIGHT, list(search(q, top_k * 2))) for q in queries
    ]
    best: dict[str, SearchHit] = {}
    for _, hits in lists:
        for h in hits:
            best.setdefault(h.item.id, h)
    score = rrf([(w, order_ranks(h.item.id for h in hits)) for w, hits in lists], RRF_K)
    order = sorted(score, key=lambda i: -score[i])[:top_k]
    # The score shown is the one the list is ordered by: the fused one (the hybrid score of the
    # original query stays in the components).
    return [
        replace(
            best[i],
            score=score[i],
            components={**best[i].components, "hybrid": best[i].score, "fine_rrf": score[i]},
        )
        for i in order
    ], queries
