"""Search candidates: FTS5 BM25 and sqlite-vec KNN, with the filters pushed down.

Design rules:
- Filters are pushed down where the index can use them: cube -> the vec0 partition key, type /
  layer / status / created_at range -> vec0 metadata columns, all filters -> the FTS join.
  Filters vec0 cannot express (tags, validity time, pinned) are applied after the KNN, which
  then over-fetches and widens ``k`` until it has enough or has seen everything.
- The store ranks nothing: fusion, boosts and de-duplication are policy and live in
  memory/search.py (issue 9).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from memos_desktop.store.db import Database
from memos_desktop.store.memories import MemoryRepo
from memos_desktop.store.memory_rows import clean_tags, filter_sql
from memos_desktop.store.migrations import vec_table
from memos_desktop.store.records import SearchFilters
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
FTS_OVERFETCH = 4  # BM25 ranks this many times the hits wanted before the filters
Neighbour = tuple[int, float, Any]  # rowid, cosine distance, the stored unit vector


@dataclass
class Candidates:
    """What the two retrievers found: ``fts`` as (rowid, bm25; lower is better), ``dense`` as
    (rowid, cosine distance), and the stored unit vectors of the dense hits."""

    fts: list[tuple[int, float]] = field(default_factory=list)
    dense: list[tuple[int, float]] = field(default_factory=list)
    vectors: dict[int, Any] = field(default_factory=dict)


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


def _postfilter_needed(f: SearchFilters) -> bool:
    return bool(f.tags) or f.valid_at is not None or f.pinned is not None


def postfilter_sql(n: int, f: SearchFilters) -> tuple[str, list[Any]]:
    """The query keeping those of ``n`` rowids (bound first) that pass ``f``.

    The filter is wrapped in unary ``+(...)`` so no index serves it: without statistics the
    planner otherwise answers "rowid IN (160 ids) AND cube_id = ?" by walking the cube's whole
    index (every memory of a one-cube profile: 8-15 ms at 100k) instead of 160 rowid lookups.
    """
    where, params = filter_sql(f, "m")
    return (
        f"SELECT m.rowid FROM memory_items m WHERE m.rowid IN ({','.join('?' * n)}) AND +({where})",
        params,
    )


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

    def idf_mass(self, query: str, max_df: float = 1.0, max_docs: int = 2000) -> float:
        """The summed IDF (FTS5's formula, over the whole profile, as its bm25 counts it) of the
        query terms that BM25 searches: the score a memory matching every term once would
        roughly get, so the best hit's score over it says how much of the query the words found.
        """
        terms = self._prune_common(query_terms(query), max_df, max_docs)
        if not terms:
            return 0.0
        n_docs = int(self.db.scalar("SELECT coalesce(max(rowid), 0) FROM memory_items"))
        cap = max(min(int(max_df * n_docs), max_docs), 1)
        mass = 0.0
        for t in terms:
            df = self._df(t, cap, n_docs)
            # (a cached count may run ahead of max(rowid) while another process writes)
            mass += max(math.log((max(n_docs - df, 0) + 0.5) / (df + 0.5)), 1e-6)
        return mass

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
        match = " OR ".join(quote(t) for t in terms)
        bm25 = f"bm25(memory_fts, 1.0, 0.5, 0.5, {float(context_weight)!r})"
        # Most searches filter out little (their cube, active memories): rank in FTS5 alone
        # and filter the best few (joining every match to memory_items first cost 2x at 100k).
        # Exact: filtering keeps the order, and when too few of the best pass while more
        # matches exist, the filtered join below decides.
        # A selective filter (a type, a tag, a time) would drop most of the best: join first.
        selective = f.pinned is not None or any(
            v is not None and v != ()
            for v in (f.types, f.layers, f.tags, f.since, f.until, f.valid_at)
        )
        if not selective:
            want = limit * FTS_OVERFETCH
            rows = self.db.query(
                f"SELECT rowid, {bm25} AS score FROM memory_fts WHERE memory_fts MATCH ? "
                "ORDER BY score LIMIT ?",
                (match, want),
            )
            ok = self._postfilter([int(r[0]) for r in rows], f)
            hits = [(int(r[0]), float(r[1])) for r in rows if int(r[0]) in ok]
            if len(hits) >= limit or len(rows) < want:
                return hits[:limit]
        where, params = filter_sql(f, "m")
        rows = self.db.query(
            f"SELECT m.rowid, {bm25} AS score "
            "FROM memory_fts "
            "JOIN memory_items m ON m.rowid = memory_fts.rowid "
            f"WHERE memory_fts MATCH ? AND {where} ORDER BY score LIMIT ?",
            (match, *params, limit),
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
        ok: set[int] = set()
        for i in range(0, len(rowids), 500):
            chunk = rowids[i : i + 500]
            sql, params = postfilter_sql(len(chunk), f)
            ok.update(int(r[0]) for r in self.db.query(sql, (*chunk, *params)))
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

    # --- candidates ----------------------------------------------------------------------

    def candidates(
        self,
        query: str,
        vector: Any | None,
        dim: int | None,
        filters: SearchFilters,
        limit: int,
        *,
        lexical: bool = True,
        dense: bool = True,
        fts_max_df: float = 1.0,
        fts_context_weight: float = 0.6,
        fts_max_docs: int = 2000,
    ) -> Candidates:
        """Up to ``limit`` candidates from each retriever that pass every filter: BM25 hits
        (best first) and KNN hits (nearest first) with their stored vectors. Ranking them is
        the memory layer's job (memory/search.py)."""
        fts_hits = (
            self.fts(query, filters, limit, fts_max_df, fts_context_weight, fts_max_docs)
            if lexical
            else []
        )
        vec_hits: list[tuple[int, float]] = []
        vectors: dict[int, Any] = {}
        if vector is not None and dim and dense:
            k = limit
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
                if len(vec_hits) >= limit or len(raw) < k or k >= KNN_MAX:
                    break
                k = min(k * 8, KNN_MAX)
            vec_hits = vec_hits[:limit]
            vectors = {r: v for r, _, v in raw if r in passing}
        return Candidates(fts_hits, vec_hits, vectors)

    def vectors_of(self, rowids: list[int], dim: int) -> dict[int, Any]:
        """The stored unit vectors of ``rowids`` (those that have one at ``dim``). The resident
        index answers from RAM; otherwise each vector is read from its vec0 chunk with
        incremental blob I/O, so only its own pages are decrypted (a lookup through the virtual
        table reads the whole ~1.5 MB chunk per row)."""
        if not rowids:
            return {}
        if self.resident:
            return self.index(dim).vectors_of(rowids)
        table = vec_table(dim)
        if table not in self._tables:
            if not self.db.scalar("SELECT count(*) FROM sqlite_master WHERE name = ?", (table,)):
                return {}
            self._tables.add(table)
        width = dim * 4
        out: dict[int, Any] = {}
        with self.db.lock:
            for i in range(0, len(rowids), 500):
                chunk = rowids[i : i + 500]
                marks = ",".join("?" * len(chunk))
                where = (
                    f"SELECT rowid, chunk_id, chunk_offset FROM {table}_rowids "
                    f"WHERE rowid IN ({marks})"
                )
                for r, cid, off in self.db.query(where, chunk):
                    try:
                        blob = self.db.conn.blob_open(
                            "main", f"{table}_vector_chunks00", "vectors", int(cid), False
                        )
                    except Exception:  # a layout this code does not know: no vector
                        return {}
                    with blob:
                        blob.seek(int(off) * width)
                        data = blob.read(width)
                    if len(data) == width:
                        out[int(r)] = np.frombuffer(data, dtype=np.float32)
        return out
