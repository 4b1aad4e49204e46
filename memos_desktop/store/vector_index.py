"""A resident, in-process copy of one vec0 table, for fast KNN in long-lived processes.

Why: sqlite-vec's vec0 is a brute-force scan that re-reads every vector chunk through the
encrypted page cache on every query: 100k x 384 float32 measured ~42-70 ms per KNN on this
2-core machine, over the 20 ms target. A float32 matrix in RAM scores the same 100k rows with
one BLAS matrix-vector product in ~9 ms, exactly (no quantisation, so no recall loss), and
large stores in two steps (below).

Design rules:
- vec0 in the encrypted DB stays the source of truth; this index is a cache that lives only in
  process memory (never written to disk) and is rebuilt from the DB.
- It is kept current from the sync change log, which every write appends to: before each query
  it reads the changes after the last ``seq`` it saw (one indexed query when nothing changed),
  so writes by this process and by other processes (the daemon, a second CLI) are both seen.
  Only ``memory`` rows matter (a cube delete logs a purge for each memory it removes); the
  log's other entities (messages, conversations, versions, adapters, ...) are skipped, so a
  chat turn does not reload the index.
- One-shot processes (a CLI command) do not build it: loading 100k vectors costs about a second,
  more than the one query they run. The TUI and the daemon do.
- Large stores are searched in two steps (issue 14: p50 <= 20 ms at 100k). Scoring every float32
  row reads the whole matrix per query (100k x 384 x 4 = 154 MB: ~15 ms of memory bandwidth here
  before anything else runs). Each row also keeps a 384-bit sign code of its centred vector
  (48 bytes, 5 MB at 100k); when more than ``EXACT_MAX`` rows pass the filters, the Hamming
  distance of those codes picks a pool of ``max(RESCORE_MIN, RESCORE_FACTOR * k)`` rows and
  only the pool is scored exactly in float32 (at 10k rows the pool is a fifth of them, and the
  search 20% faster than the exact scan). Up to ``EXACT_MAX`` rows the scan stays exact. The
  two-step path's recall against the exact scan is measured in bench/store.py and
  bench/knn_recall.py.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from memos_desktop.store.db import Database
from memos_desktop.store.migrations import MEMORY_LAYERS, MEMORY_STATUSES, MEMORY_TYPES, vec_table
from memos_desktop.store.records import SearchFilters

log = logging.getLogger(__name__)
_TYPE = {t: i for i, t in enumerate(MEMORY_TYPES)}
_LAYER = {t: i for i, t in enumerate(MEMORY_LAYERS)}
_STATUS = {t: i for i, t in enumerate(MEMORY_STATUSES)}

EXACT_MAX = 5_000  # at most this many rows to score: exact float32 scan
RESCORE_MIN = 2_000  # above it: the Hamming pool scored exactly, at least this big...
RESCORE_FACTOR = 50  # ...and at least this many times k


class VectorIndex:
    def __init__(self, db: Database, dim: int) -> None:
        self.db = db
        self.dim = dim
        self.table = vec_table(dim)
        self.lock = threading.Lock()
        self._seq = -1
        self._txn_mark: int | None = None
        self._n = 0
        self._cube_codes: dict[str, int] = {}
        self.words = (dim + 63) // 64
        self.centre = np.zeros(dim, dtype=np.float32)
        self._centred_at = 0
        self._alloc(0)

    def _alloc(self, cap: int) -> None:
        self.mat: npt.NDArray[np.float32] = np.zeros((cap, self.dim), dtype=np.float32)
        # word-major (words, cap): each word's column is contiguous, so the Hamming distance
        # is ``words`` vectorised passes (5x faster than a row-wise popcount sum at 100k)
        self.codes = np.zeros((self.words, cap), dtype=np.uint64)
        self.rowids = np.zeros(cap, dtype=np.int64)
        self.valid = np.zeros(cap, dtype=bool)
        self.cube = np.zeros(cap, dtype=np.int32)
        self.type = np.zeros(cap, dtype=np.int8)
        self.layer = np.zeros(cap, dtype=np.int8)
        self.status = np.zeros(cap, dtype=np.int8)
        self.created = np.zeros(cap, dtype=np.float64)
        self.pos: dict[int, int] = {}
        self._n = 0

    def _grow(self, need: int) -> None:
        cap = len(self.rowids)
        if need <= cap:
            return
        new = max(need, cap * 2, 1024)
        for name in ("mat", "rowids", "valid", "cube", "type", "layer", "status", "created"):
            old = getattr(self, name)
            arr = np.zeros((new, *old.shape[1:]), dtype=old.dtype)
            arr[: self._n] = old[: self._n]
            setattr(self, name, arr)
        codes = np.zeros((self.words, new), dtype=np.uint64)
        codes[:, : self._n] = self.codes[:, : self._n]
        self.codes = codes

    def _code(self, cube_id: str) -> int:
        return self._cube_codes.setdefault(cube_id, len(self._cube_codes))

    def _encode(self, rows: Any) -> Any:
        """Sign bits of ``rows - centre``, packed into ``words`` uint64 per row: (m, words)."""
        bits = np.packbits(np.asarray(rows, dtype=np.float32) > self.centre, axis=1)
        pad = self.words * 8 - bits.shape[1]
        if pad:
            bits = np.pad(bits, ((0, 0), (0, pad)))
        return np.ascontiguousarray(bits).view(np.uint64)

    def _recentre(self) -> None:
        """Centre the sign codes on the mean vector (sentence embeddings share a large common
        component: uncentred signs would be nearly the same for every row). Redone when the
        index has doubled since, so codes track the data; codes of rows added in between use
        the centre of their time, which only blurs them a little."""
        n = self._n
        if n < EXACT_MAX or (self._centred_at and n < 2 * self._centred_at):
            return
        total = np.zeros(self.dim, dtype=np.float64)
        for i in range(0, n, 20_000):
            part = self.mat[i : min(n, i + 20_000)][self.valid[i : min(n, i + 20_000)]]
            total += part.sum(axis=0, dtype=np.float64)
        self.centre = (total / max(1, int(self.valid[:n].sum()))).astype(np.float32)
        for i in range(0, n, 20_000):
            self.codes[:, i : min(n, i + 20_000)] = self._encode(self.mat[i : min(n, i + 20_000)]).T
        self._centred_at = n

    def __len__(self) -> int:
        return int(self.valid[: self._n].sum())

    # --- loading and refreshing --------------------------------------------------------------

    def _table_exists(self) -> bool:
        return bool(
            self.db.scalar("SELECT count(*) FROM sqlite_master WHERE name = ?", (self.table,))
        )

    def _load_rows(self, rowids: list[int] | None) -> None:
        """(Re)load vectors + metadata for ``rowids`` (None: everything)."""
        if not self._table_exists():
            return
        if rowids is None:
            meta = self.db.query(
                "SELECT m.rowid, m.cube_id, m.type, m.layer, m.status, m.created_at "
                "FROM memory_items m JOIN cubes c ON c.id = m.cube_id WHERE c.embed_dim = ?",
                (self.dim,),
            )
            vecs = self._all_vectors()
        else:
            meta, vecs = [], []
            for i in range(0, len(rowids), 500):
                chunk = rowids[i : i + 500]
                q = ",".join("?" * len(chunk))
                meta += self.db.query(
                    "SELECT rowid, cube_id, type, layer, status, created_at FROM memory_items "
                    f"WHERE rowid IN ({q})",
                    chunk,
                )
                vecs += self.db.query(
                    f"SELECT rowid, embedding FROM {self.table} WHERE rowid IN ({q})", chunk
                )
            for r in rowids:  # gone (purged) or lost their vector: drop
                p = self.pos.get(r)
                if p is not None:
                    self.valid[p] = False
        by_row = {int(r[0]): r for r in meta}
        rows = [(int(r), bytes(v)) for r, v in vecs if int(r) in by_row]
        self._grow(self._n + len(rows))
        placed: list[int] = []
        for rowid, blob in rows:
            m = by_row[rowid]
            p = self.pos.get(rowid)
            if p is None:
                p = self._n
                self._n += 1
                self.pos[rowid] = p
                self.rowids[p] = rowid
            self.mat[p] = np.frombuffer(blob, dtype=np.float32)
            self.cube[p] = self._code(str(m[1]))
            self.type[p] = _TYPE.get(str(m[2]), -1)
            self.layer[p] = _LAYER.get(str(m[3]), -1)
            self.status[p] = _STATUS.get(str(m[4]), -1)
            self.created[p] = float(m[5])
            self.valid[p] = True
            placed.append(p)
        for i in range(0, len(placed), 20_000):
            at = np.asarray(placed[i : i + 20_000], dtype=np.int64)
            self.codes[:, at] = self._encode(self.mat[at]).T

    def _all_vectors(self) -> list[tuple[int, bytes]]:
        """Every (rowid, vector). Reads vec0's chunk shadow tables directly (100k vectors:
        0.15 s instead of 4-14 s for a row-by-row scan of the virtual table); checks a sample
        against the virtual table and falls back to the scan if the layout is not as expected."""
        try:
            chunks = {
                int(cid): bytes(blob)
                for cid, blob in self.db.query(
                    f"SELECT rowid, vectors FROM {self.table}_vector_chunks00"
                )
            }
            width = self.dim * 4
            out = [
                (int(r), chunks[int(cid)][int(off) * width : (int(off) + 1) * width])
                for r, cid, off in self.db.query(
                    f"SELECT rowid, chunk_id, chunk_offset FROM {self.table}_rowids"
                )
            ]
            sample = out[:: max(1, len(out) // 16)][:16]
            for r, blob in sample:
                real = self.db.query_one(
                    f"SELECT embedding FROM {self.table} WHERE rowid = ?", (r,)
                )
                if real is None or bytes(real[0]) != blob or len(blob) != width:
                    raise ValueError("vec0 shadow layout differs")
            return out
        except Exception as exc:  # a future sqlite-vec may lay chunks out differently
            log.warning("falling back to a row scan of %s: %s", self.table, exc)
            return [
                (int(r), bytes(v))
                for r, v in self.db.query(f"SELECT rowid, embedding FROM {self.table}")
            ]

    def refresh(self) -> None:
        """Catch up with the change log (cheap when nothing changed)."""
        with self.lock:
            # Rows read inside a write transaction (a unit of work searching its own writes)
            # are uncommitted; if a rollback happened since, they are gone and their rowids and
            # change seqs will be reused: reload from the DB.
            if self._txn_mark is not None and self.db.rollbacks != self._txn_mark:
                self._seq = -1
            self._txn_mark = self.db.rollbacks if self.db.in_transaction else None
            top = self.db.scalar("SELECT coalesce(max(seq), 0) FROM changes")
            top = int(top)
            if top == self._seq:
                return
            if self._seq < 0:
                self._alloc(0)
                self._centred_at = 0
                self._load_rows(None)
                self._recentre()
                self._seq = top
                return
            ids = list(
                {
                    str(r[0])
                    for r in self.db.query(
                        "SELECT entity_id FROM changes WHERE seq > ? AND seq <= ? "
                        "AND entity = 'memory'",
                        (self._seq, top),
                    )
                }
            )
            # Many changes (a bulk import, another process's batch): a full reload from the
            # chunk tables is faster than fetching each vector through the virtual table.
            if len(ids) > max(2000, self._n // 10):
                self._alloc(0)
                self._centred_at = 0
                self._load_rows(None)
            elif ids:
                rowids: list[int] = []
                for k in range(0, len(ids), 500):
                    chunk = ids[k : k + 500]
                    rowids += [
                        int(r[0])
                        for r in self.db.query(
                            "SELECT rowid FROM memory_items WHERE id IN "
                            f"({','.join('?' * len(chunk))})",
                            chunk,
                        )
                    ]
                # purged items no longer resolve to a rowid: rebuild validity for them
                if len(rowids) < len(ids):
                    live = set(int(r[0]) for r in self.db.query("SELECT rowid FROM memory_items"))
                    for r, p in self.pos.items():
                        if r not in live:
                            self.valid[p] = False
                self._load_rows(rowids)
            self._recentre()
            self._seq = top

    # --- query -----------------------------------------------------------------------------

    def vectors_of(self, rowids: list[int]) -> dict[int, Any]:
        """The resident vectors of ``rowids`` (those the index holds)."""
        self.refresh()
        with self.lock:
            out: dict[int, Any] = {}
            for r in rowids:
                p = self.pos.get(r)
                if p is not None and self.valid[p]:
                    out[r] = self.mat[p].copy()
            return out

    def _nearest_codes(self, q: Any, idx: Any, n: int, pool: int) -> Any:
        """Positions in ``idx`` of (at least) the ``pool`` rows whose codes are nearest ``q``'s,
        ascending: every row under the Hamming distance at which the count reaches ``pool``,
        and the rows at that distance (one counting pass instead of a partition sort)."""
        qc = self._encode(q[None, :])[0]
        some = idx.size * 3 < n
        buf = np.empty(idx.size if some else n, dtype=np.uint64)
        ham = np.zeros(buf.size, dtype=np.uint16)
        part = np.empty(buf.size, dtype=np.uint8)
        for w in range(self.words):
            col = self.codes[w, idx] if some else self.codes[w, :n]
            np.bitwise_xor(col, qc[w], out=buf)
            np.bitwise_count(buf, out=part)
            ham += part
        if not some:
            ham = ham[idx]
        counts = np.cumsum(np.bincount(ham, minlength=self.words * 64 + 1))
        cut = int(np.searchsorted(counts, pool))
        return np.flatnonzero(ham <= cut)

    def knn(
        self, vector: Any, f: SearchFilters, k: int, allowed: Any | None = None
    ) -> list[tuple[int, float, Any]]:
        """Cosine KNN with the filters the index holds (cube, type, layer, status, time),
        restricted to the rowids in ``allowed`` when given (e.g. the items with a tag). Exact
        up to ``EXACT_MAX`` passing rows; above, exact scores of the nearest codes' pool."""
        self.refresh()
        with self.lock:
            n = self._n
            if n == 0:
                return []
            q = np.asarray(vector, dtype=np.float32).reshape(-1)
            norm = float(np.linalg.norm(q))
            if q.shape[0] != self.dim or norm == 0:
                return []
            q = q / norm
            mask = self.valid[:n].copy()
            if f.cube_ids:
                codes = [self._cube_codes[c] for c in f.cube_ids if c in self._cube_codes]
                if len(codes) == 1:
                    mask &= self.cube[:n] == codes[0]
                else:
                    mask &= np.isin(self.cube[:n], codes)
            for arr, values, table in (
                (self.type, f.types, _TYPE),
                (self.layer, f.layers, _LAYER),
                (self.status, f.statuses, _STATUS),
            ):
                if values:
                    mask &= np.isin(arr[:n], [table[v] for v in values if v in table])
            if allowed is not None:
                mask &= np.isin(self.rowids[:n], allowed)
            if f.since is not None:
                mask &= self.created[:n] >= f.since
            if f.until is not None:
                mask &= self.created[:n] < f.until
            idx = np.flatnonzero(mask)
            if idx.size == 0:
                return []
            k = min(k, idx.size)
            pool = max(RESCORE_MIN, RESCORE_FACTOR * k)
            if idx.size > EXACT_MAX and pool < idx.size and self._centred_at:
                # Two steps: the nearest codes by Hamming distance, then exact scores of those.
                idx = idx[self._nearest_codes(q, idx, n, pool)]
                s = self.mat[idx] @ q
            elif idx.size * 3 < n:
                # A selective filter (one cube of many, a type) scores only its rows.
                s = self.mat[idx] @ q
            else:
                s = (self.mat[:n] @ q)[idx]
            top = np.argpartition(-s, k - 1)[:k] if k < idx.size else np.arange(idx.size)
            top = top[np.argsort(-s[top], kind="stable")]
            return [
                (int(self.rowids[idx[t]]), float(1.0 - s[t]), self.mat[idx[t]].copy()) for t in top
            ]
