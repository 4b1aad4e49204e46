"""The SQL of cube export and import: pages of a cube's memories with their versions and
vectors, and the writes an import makes, all inside the caller's one transaction.

Design rules:
- Reads page by rowid (keyset), so an export of any size holds one page in memory.
- Writes take the connection of a transaction the caller holds (``Database.write()``) and log
  every row they add or change in the change log, as the memory repository does, so an
  imported memory syncs like one typed in.
- Derived rows are kept in step here: tags, the vec0 row and its metadata columns (FTS5 follows
  by trigger).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

from memos_desktop.store.changelog import ChangeLog
from memos_desktop.store.db import Database
from memos_desktop.store.memory_rows import ITEM_COLUMNS, VERSION_COLUMNS
from memos_desktop.store.migrations import vec_table

EXPORTED_STATUSES = ("active", "archived")  # forgotten memories stay behind
_CHUNK = 500


def _q(n: int) -> str:
    return ",".join("?" * n)


def _table_exists(db: Database, name: str) -> bool:
    return bool(db.scalar("SELECT count(*) FROM sqlite_master WHERE name = ?", (name,)))


# --- export ---------------------------------------------------------------------------------


@contextlib.contextmanager
def read_snapshot(db: Database) -> Iterator[None]:
    """One read transaction: every query inside sees the same committed state (WAL), while
    other processes keep writing. Inside a write transaction already, that one is the
    snapshot."""
    with db.lock:
        if db.conn.in_transaction:
            yield
            return
        db.conn.execute("BEGIN DEFERRED")
        try:
            yield
        finally:
            db.conn.execute("COMMIT")  # nothing was written: this only ends the snapshot


def counts(db: Database, cube_id: str) -> dict[str, int]:
    st = _q(len(EXPORTED_STATUSES))
    return {
        "memories": int(
            db.scalar(
                f"SELECT count(*) FROM memory_items WHERE cube_id = ? AND status IN ({st})",
                (cube_id, *EXPORTED_STATUSES),
            )
        ),
        "versions": int(
            db.scalar(
                "SELECT count(*) FROM memory_versions v JOIN memory_items m ON m.id = v.item_id "
                f"WHERE m.cube_id = ? AND m.status IN ({st})",
                (cube_id, *EXPORTED_STATUSES),
            )
        ),
        "activations": int(
            db.scalar("SELECT count(*) FROM activation_states WHERE cube_id = ?", (cube_id,))
        ),
        "adapters": int(
            db.scalar(
                "SELECT count(*) FROM adapters WHERE cube_id = ? AND status != 'training'",
                (cube_id,),
            )
        ),
    }


def item_pages(db: Database, cube_id: str, page: int = 1000) -> Iterator[list[tuple[Any, ...]]]:
    """Pages of the cube's exported memories as raw rows in ``ITEM_COLUMNS`` order (an export
    turns them straight into its JSON: no MemoryItem in between)."""
    last = 0
    st = _q(len(EXPORTED_STATUSES))
    while True:
        # Unary + keeps SQLite on the rowid (primary key) range: with the (cube_id, status)
        # index it sorted the whole cube for every page (quadratic: 100k memories, 100 pages).
        rows = db.query(
            f"SELECT {ITEM_COLUMNS} FROM memory_items WHERE +cube_id = ? AND +status IN ({st}) "
            "AND rowid > ? ORDER BY rowid LIMIT ?",
            (cube_id, *EXPORTED_STATUSES, last, page),
        )
        if not rows:
            return
        yield rows
        last = int(rows[-1][0])


def versions_of(db: Database, item_ids: Sequence[str]) -> dict[str, list[tuple[Any, ...]]]:
    """item id -> its version rows (``VERSION_COLUMNS`` order), oldest first."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for i in range(0, len(item_ids), _CHUNK):
        chunk = list(item_ids[i : i + _CHUNK])
        for r in db.query(
            f"SELECT {VERSION_COLUMNS} FROM memory_versions WHERE item_id IN ({_q(len(chunk))}) "
            "ORDER BY item_id, version, hlc",
            chunk,
        ):
            out.setdefault(str(r[0]), []).append(r)
    return out


class VectorReader:
    """The stored vectors of pages of rowids, for an export. Reads vec0's shadow tables
    directly (the rowid -> chunk map, then each chunk's blob once: fetching row by row through
    the virtual table re-reads a chunk per vector, seconds per 100k, as ``vector_index``
    measured), checks one vector per page against the virtual table, and falls back to it if
    the layout is not as expected."""

    def __init__(self, db: Database, dim: int) -> None:
        self.db = db
        self.table = vec_table(dim)
        self.width = dim * 4
        self.exists = _table_exists(db, self.table)
        self.direct = self.exists and _table_exists(db, f"{self.table}_vector_chunks00")
        self._chunk: tuple[int, bytes] | None = None

    def _virtual(self, rowids: Sequence[int]) -> dict[int, bytes]:
        return {
            int(r[0]): bytes(r[1])
            for r in self.db.query(
                f"SELECT rowid, embedding FROM {self.table} WHERE rowid IN ({_q(len(rowids))})",
                list(rowids),
            )
        }

    def _blob(self, chunk_id: int) -> bytes:
        if self._chunk is None or self._chunk[0] != chunk_id:
            r = self.db.query_one(
                f"SELECT vectors FROM {self.table}_vector_chunks00 WHERE rowid = ?", (chunk_id,)
            )
            self._chunk = (chunk_id, bytes(r[0]) if r else b"")
        return self._chunk[1]

    def read(self, rowids: Sequence[int]) -> dict[int, bytes]:
        if not rowids or not self.exists:
            return {}
        if not self.direct:
            return self._virtual(rowids)
        try:
            out: dict[int, bytes] = {}
            for r, cid, off in self.db.query(
                f"SELECT rowid, chunk_id, chunk_offset FROM {self.table}_rowids "
                f"WHERE rowid IN ({_q(len(rowids))}) ORDER BY rowid",
                list(rowids),
            ):
                if cid is None or off is None:
                    continue
                vec = self._blob(int(cid))[int(off) * self.width : (int(off) + 1) * self.width]
                if len(vec) == self.width:
                    out[int(r)] = vec
            if out:
                first = next(iter(out))
                if self._virtual([first]).get(first) != out[first]:
                    raise ValueError("vec0 shadow layout differs")
            return out
        except Exception:  # a future sqlite-vec may lay chunks out differently
            self.direct = False
            return self._virtual(rowids)


def activation_rows(db: Database, cube_id: str) -> Iterator[tuple[Any, ...]]:
    ids = [r[0] for r in db.query("SELECT id FROM activation_states WHERE cube_id = ?", (cube_id,))]
    for sid in ids:  # one blob in memory at a time
        r = db.query_one(
            "SELECT model_sha256, adapter_id, prefix_sha256, settings_key, n_tokens, token_ids, "
            "state FROM activation_states WHERE id = ?",
            (sid,),
        )
        if r is not None:
            yield r


def adapter_rows(db: Database, cube_id: str) -> Iterator[tuple[Any, ...]]:
    ids = [
        r[0]
        for r in db.query(
            "SELECT id FROM adapters WHERE cube_id = ? AND status != 'training'", (cube_id,)
        )
    ]
    for aid in ids:
        r = db.query_one(
            "SELECT name, base_model_sha256, format, metrics, sha256, blob FROM adapters "
            "WHERE id = ?",
            (aid,),
        )
        if r is not None:
            yield r


# --- import ---------------------------------------------------------------------------------


def existing_items(c: Any, ids: Sequence[str]) -> dict[str, tuple[int, str, str]]:
    """id -> (rowid, cube_id, content_hash) of the items that exist (any cube, any status)."""
    out: dict[str, tuple[int, str, str]] = {}
    for i in range(0, len(ids), _CHUNK):
        chunk = list(ids[i : i + _CHUNK])
        for r in c.execute(
            f"SELECT id, rowid, cube_id, content_hash FROM memory_items WHERE id IN "
            f"({_q(len(chunk))})",
            chunk,
        ):
            out[str(r[0])] = (int(r[1]), str(r[2]), str(r[3]))
    return out


def existing_versions(c: Any, version_ids: Sequence[str]) -> set[str]:
    out: set[str] = set()
    for i in range(0, len(version_ids), _CHUNK):
        chunk = list(version_ids[i : i + _CHUNK])
        out.update(
            str(r[0])
            for r in c.execute(
                f"SELECT id FROM memory_versions WHERE id IN ({_q(len(chunk))})", chunk
            )
        )
    return out


def version_ids_of(c: Any, item_ids: Sequence[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for i in range(0, len(item_ids), _CHUNK):
        chunk = list(item_ids[i : i + _CHUNK])
        for r in c.execute(
            f"SELECT item_id, id FROM memory_versions WHERE item_id IN ({_q(len(chunk))})", chunk
        ):
            out.setdefault(str(r[0]), set()).add(str(r[1]))
    return out


def live_hashes(c: Any, cube_id: str, hashes: Sequence[str]) -> set[str]:
    out: set[str] = set()
    for i in range(0, len(hashes), _CHUNK):
        chunk = list(hashes[i : i + _CHUNK])
        out.update(
            str(r[0])
            for r in c.execute(
                "SELECT content_hash FROM memory_items WHERE cube_id = ? AND status != 'deleted' "
                f"AND content_hash IN ({_q(len(chunk))})",
                (cube_id, *chunk),
            )
        )
    return out


def next_rowid(c: Any) -> int:
    return int(c.execute("SELECT coalesce(max(rowid), 0) FROM memory_items").fetchall()[0][0]) + 1


_ITEM_INSERT = (
    "INSERT INTO memory_items (rowid, id, cube_id, text, key, type, layer, status, source, "
    "confidence, importance, pinned, tags, sources, valid_from, valid_to, created_at, "
    "updated_at, version, supersedes, superseded_by, content_hash, embed_model, context) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_ITEM_UPDATE = (
    "UPDATE memory_items SET text = ?, key = ?, type = ?, layer = ?, status = ?, source = ?, "
    "confidence = ?, importance = ?, pinned = ?, tags = ?, sources = ?, valid_from = ?, "
    "valid_to = ?, created_at = ?, updated_at = ?, version = ?, supersedes = ?, "
    "superseded_by = ?, content_hash = ?, embed_model = ?, context = ? WHERE rowid = ?"
)
_VERSION_INSERT = f"INSERT INTO memory_versions ({VERSION_COLUMNS}) VALUES ({_q(18)})"


def _item_values(d: dict[str, Any], content_hash: str, embed_model: str) -> tuple[Any, ...]:
    return (
        d["text"],
        d["key"],
        d["type"],
        d["layer"],
        d["status"],
        d["source"],
        d["confidence"],
        d["importance"],
        int(d["pinned"]),
        json.dumps(d["tags"]),
        json.dumps(d["sources"]),
        d["valid_from"],
        d["valid_to"],
        d["created_at"],
        d["updated_at"],
        d["version"],
        d["supersedes"],
        d["superseded_by"],
        content_hash,
        embed_model,
        d["context"],
    )


NewRow = tuple[int, dict[str, Any], str, str, bytes | None]  # rowid, memory, hash, model, vector


class ImportWriter:
    """The writes of one import, on the connection of the caller's transaction. New memories
    and versions are written a batch at a time (one statement each, one change-log call)."""

    def __init__(self, c: Any, changes: ChangeLog, cube_id: str, dim: int) -> None:
        self.c = c
        self.changes = changes
        self.cube_id = cube_id
        self.table = vec_table(dim)

    def add_many(self, rows: Sequence[NewRow]) -> None:
        if not rows:
            return
        self.c.executemany(
            _ITEM_INSERT,
            [(rowid, d["id"], self.cube_id, *_item_values(d, h, m)) for rowid, d, h, m, _ in rows],
        )
        self._derived([(rowid, d, vec) for rowid, d, _, _, vec in rows])
        self.changes.log_many(
            self.c, "memory", [d["id"] for _, d, _, _, _ in rows], "create", ("*",)
        )

    def update(self, rowid: int, d: dict[str, Any], h: str, model: str, vec: bytes | None) -> None:
        self.c.execute(_ITEM_UPDATE, (*_item_values(d, h, model), rowid))
        self.c.execute("DELETE FROM memory_tags WHERE item_rowid = ?", (rowid,))
        self.c.execute(f"DELETE FROM {self.table} WHERE rowid = ?", (rowid,))
        self._derived([(rowid, d, vec)])
        self.changes.log(self.c, "memory", d["id"], "update", ("*",))

    def _derived(self, rows: Sequence[tuple[int, dict[str, Any], bytes | None]]) -> None:
        self.c.executemany(
            "INSERT OR IGNORE INTO memory_tags (item_rowid, tag) VALUES (?, ?)",
            [
                (rowid, t)
                for rowid, d, _ in rows
                for t in sorted({t.strip().lower() for t in d["tags"] if t.strip()})
            ],
        )
        self.c.executemany(
            f"INSERT INTO {self.table} (rowid, cube_id, embedding, type, layer, status, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (rowid, self.cube_id, vec, d["type"], d["layer"], d["status"], d["created_at"])
                for rowid, d, vec in rows
                if vec is not None
            ],
        )

    def versions(self, items: Sequence[tuple[str, Sequence[dict[str, Any]]]]) -> int:
        """Insert the versions of ``(item id, versions)`` not stored yet (by version id);
        returns how many."""
        have = existing_versions(self.c, [v["id"] for _, vs in items for v in vs])
        new = [(item_id, v) for item_id, vs in items for v in vs if v["id"] not in have]
        self.c.executemany(
            _VERSION_INSERT,
            [
                (
                    item_id,
                    v["version"],
                    v["text"],
                    v["key"],
                    v["type"],
                    v["layer"],
                    v["status"],
                    v["confidence"],
                    v["importance"],
                    json.dumps(v["tags"]),
                    v["valid_from"],
                    v["valid_to"],
                    v["change"],
                    v["reason"],
                    v["changed_at"],
                    v["device_id"],
                    v["id"],
                    v["hlc"],
                )
                for item_id, v in new
            ],
        )
        self.changes.log_many(self.c, "memory_version", [v["id"] for _, v in new], "create", ("*",))
        return len(new)


def missing_vectors(db: Database, cube_id: str, model: str, limit: int) -> list[tuple[int, str]]:
    """(rowid, text) of the cube's memories not embedded with ``model`` (the text only, as
    ``memory.ingest.embed_text`` embeds)."""
    return [
        (int(r[0]), str(r[1]))
        for r in db.query(
            "SELECT rowid, text FROM memory_items WHERE cube_id = ? AND embed_model != ? "
            "ORDER BY rowid LIMIT ?",
            (cube_id, model, limit),
        )
    ]


def count_missing_vectors(db: Database, cube_id: str, model: str) -> int:
    return int(
        db.scalar(
            "SELECT count(*) FROM memory_items WHERE cube_id = ? AND embed_model != ?",
            (cube_id, model),
        )
    )


def set_vectors(
    c: Any,
    changes: ChangeLog,
    cube_id: str,
    dim: int,
    model: str,
    rows: Sequence[tuple[int, bytes]],
) -> None:
    """Store the vectors of ``rows`` (rowid, float32 bytes) and mark them embedded by ``model``
    (logged as an update of ``embed_model``: the resident vector index follows the log)."""
    table = vec_table(dim)
    for rowid, vec in rows:
        meta = c.execute(
            "SELECT type, layer, status, created_at, id FROM memory_items WHERE rowid = ?",
            (rowid,),
        ).fetchall()
        if not meta:
            continue
        changes.log(c, "memory", str(meta[0][4]), "update", ("embed_model",))
        c.execute(f"DELETE FROM {table} WHERE rowid = ?", (rowid,))
        c.execute(
            f"INSERT INTO {table} (rowid, cube_id, embedding, type, layer, status, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (rowid, cube_id, vec, *meta[0][:4]),
        )
        c.execute("UPDATE memory_items SET embed_model = ? WHERE rowid = ?", (model, rowid))
