"""Memory items: add (with content-hash de-duplication), read, update with version history,
soft delete / restore, hard purge.

Design rules:
- Every write of an item also writes its full new state to ``memory_versions`` (so history shows
  why a memory changed and any version can be restored), keeps the vec0 metadata columns in step,
  and appends rows to the sync change log in the same transaction, one for the item and one for
  the version (field names only: the values are read from the row at export, so no text is
  duplicated).
- A version's key is its own random id, not (item, version): two devices that both edit one
  memory write two versions with the same ordinal and different ids, and both survive a merge.
  ``version`` is the display ordinal; ``hlc`` (the stamp of the version's change row) orders
  versions with the same ordinal.
- Nothing is hard-deleted except by :meth:`MemoryRepo.purge`, which removes the text from the
  table, the FTS index, the history and the vectors, then checkpoints the WAL; with
  ``secure_delete`` on, freed pages are zeroed.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from memos_desktop.errors import InvalidInputError
from memos_desktop.store.changelog import changelog_for
from memos_desktop.store.db import Database
from memos_desktop.store.hlc import Timestamp
from memos_desktop.store.memory_reads import MemoryReads
from memos_desktop.store.memory_rows import (
    ITEM_COLUMNS,
    VERSION_COLUMNS,
    clean_tags,
    normalize_rows,
    row_to_item,
)
from memos_desktop.store.migrations import (
    MEMORY_LAYERS,
    MEMORY_STATUSES,
    MEMORY_TYPES,
    ensure_vec_table,
    vec_table,
)
from memos_desktop.store.records import (
    Cube,
    MemoryItem,
    NewMemory,
    content_hash,
)

_EDITABLE = {
    "text",
    "key",
    "type",
    "layer",
    "confidence",
    "importance",
    "pinned",
    "tags",
    "valid_from",
    "valid_to",
    "source",
}


def _validate(n: NewMemory | dict[str, Any]) -> None:
    get = n.get if isinstance(n, dict) else lambda k, d=None: getattr(n, k, d)
    if "text" in (n if isinstance(n, dict) else {"text": 1}):
        text = get("text")
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError("a memory needs some text", hint="give the text to remember")
    for name, allowed in (("type", MEMORY_TYPES), ("layer", MEMORY_LAYERS)):
        v = get(name)
        if v is not None and v not in allowed:
            raise InvalidInputError(
                f"unknown memory {name} {v!r}", hint=f"use one of: {', '.join(allowed)}"
            )
    for name in ("confidence", "importance"):
        v = get(name)
        if v is not None and not 0.0 <= float(v) <= 1.0:
            raise InvalidInputError(f"{name} must be between 0 and 1, got {v}")


def new_version_id() -> str:
    """A version's key: 128 random bits as hex, the same shape as migration v5 gives the
    versions it converts (and drawn apart from the item ids, which a test may make
    deterministic)."""
    return secrets.token_hex(16)


_INSERT_VERSION = (
    f"INSERT INTO memory_versions ({VERSION_COLUMNS}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True)
class AddResult:
    item: MemoryItem
    created: bool  # False: an identical memory already existed (content-hash de-duplication)


class MemoryRepo(MemoryReads):
    def __init__(self, db: Database) -> None:
        self.db = db
        self.changes = changelog_for(db)

    # --- helpers ---------------------------------------------------------------------------

    def _log(self, c: Any, entity_id: str, op: str, fields: Iterable[str] = ()) -> None:
        self.changes.log(c, "memory", entity_id, op, fields)

    @staticmethod
    def _version_row(
        item: MemoryItem, change: str, reason: str, at: float, version_id: str, ts: Timestamp
    ) -> tuple[Any, ...]:
        return (
            item.id,
            item.version,
            item.text,
            item.key,
            item.type,
            item.layer,
            item.status,
            item.confidence,
            item.importance,
            json.dumps(list(item.tags)),
            item.valid_from,
            item.valid_to,
            change,
            reason,
            at,
            ts.device_id,
            version_id,
            str(ts),
        )

    def _snapshot(self, c: Any, item: MemoryItem, change: str, reason: str, at: float) -> None:
        version_id = new_version_id()
        ts = self.changes.log(c, "memory_version", version_id, "create", ("*",))
        c.execute(_INSERT_VERSION, self._version_row(item, change, reason, at, version_id, ts))

    def _cube_dim(self, cube_id: str) -> int | None:
        dim = self.db.scalar("SELECT embed_dim FROM cubes WHERE id = ?", (cube_id,))
        return int(dim) if dim is not None else None

    def _has_vector(self, c: Any, table: str, rowid: int) -> bool:
        exists = c.execute(
            "SELECT count(*) FROM sqlite_master WHERE name = ?", (table,)
        ).fetchall()[0][0]
        if not exists:
            return False
        return bool(
            c.execute(f"SELECT count(*) FROM {table} WHERE rowid = ?", (rowid,)).fetchall()[0][0]
        )

    # --- writes ----------------------------------------------------------------------------

    def add_many(
        self,
        cube: Cube,
        items: Sequence[NewMemory],
        embeddings: Any | None = None,
        *,
        dedupe: bool = True,
        embed_model: str | None = None,
    ) -> list[AddResult]:
        """Add items in one transaction. ``embeddings``: (n, cube.embed_dim) or None."""
        for n in items:
            _validate(n)
        vecs = normalize_rows(embeddings, cube.embed_dim) if embeddings is not None else None
        if vecs is not None and len(vecs) != len(items):
            raise InvalidInputError(f"{len(items)} items but {len(vecs)} embeddings")
        model = (
            embed_model
            if embed_model is not None
            else (cube.embed_model if vecs is not None else "")
        )
        now = time.time()
        results: list[AddResult] = []
        hashes = [content_hash(n.text) for n in items]
        with self.db.write() as c:
            table = ensure_vec_table(c, cube.embed_dim) if vecs is not None else ""
            existing = self.known_hashes(cube.id, hashes) if dedupe else {}
            next_rowid = int(self.db.scalar("SELECT coalesce(max(rowid), 0) FROM memory_items")) + 1
            item_rows: list[tuple[Any, ...]] = []
            tag_rows_pending: list[tuple[int, str]] = []
            vec_rows: list[tuple[Any, ...]] = []
            version_rows: list[MemoryItem] = []
            new_items: list[tuple[int, MemoryItem]] = []
            seen: dict[str, int] = {}
            for idx, (n, h) in enumerate(zip(items, hashes, strict=True)):
                if dedupe and (h in existing or h in seen):
                    results.append(AddResult(item=None, created=False))  # type: ignore[arg-type]
                    continue
                seen[h] = idx
                created = n.created_at if n.created_at is not None else now
                item = MemoryItem(
                    rowid=next_rowid,
                    id=uuid.uuid4().hex,
                    cube_id=cube.id,
                    text=n.text.strip(),
                    key=n.key,
                    type=n.type,
                    layer=n.layer,
                    status="active",
                    source=n.source,
                    confidence=float(n.confidence),
                    importance=float(n.importance),
                    pinned=n.pinned,
                    tags=clean_tags(n.tags),
                    sources=tuple(n.sources),
                    valid_from=n.valid_from,
                    valid_to=n.valid_to,
                    created_at=created,
                    updated_at=now,
                    last_used_at=None,
                    use_count=0,
                    version=1,
                    supersedes=n.supersedes,
                    superseded_by=None,
                    content_hash=h,
                    embed_model=model if vecs is not None else "",
                    context=n.context.strip(),
                )
                next_rowid += 1
                item_rows.append(
                    (
                        item.rowid,
                        item.id,
                        item.cube_id,
                        item.text,
                        item.key,
                        item.type,
                        item.layer,
                        item.status,
                        item.source,
                        item.confidence,
                        item.importance,
                        int(item.pinned),
                        json.dumps(list(item.tags)),
                        json.dumps([s.to_json() for s in item.sources]),
                        item.valid_from,
                        item.valid_to,
                        item.created_at,
                        item.updated_at,
                        item.content_hash,
                        item.embed_model,
                        item.supersedes,
                        item.context,
                    )
                )
                new_items.append((idx, item))
                results.append(AddResult(item=item, created=True))
            if item_rows:
                c.executemany(
                    "INSERT INTO memory_items (rowid, id, cube_id, text, key, type, layer, status, "
                    "source, confidence, importance, pinned, tags, sources, valid_from, "
                    "valid_to, created_at, updated_at, content_hash, embed_model, supersedes, "
                    "context) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    item_rows,
                )
                for idx, item in new_items:
                    rowid = item.rowid
                    tag_rows_pending.extend((rowid, t) for t in item.tags)
                    if vecs is not None:
                        vec_rows.append(
                            (
                                rowid,
                                cube.id,
                                vecs[idx].tobytes(),
                                item.type,
                                item.layer,
                                item.status,
                                item.created_at,
                            )
                        )
                    version_rows.append(item)
                if tag_rows_pending:
                    c.executemany(
                        "INSERT OR IGNORE INTO memory_tags (item_rowid, tag) VALUES (?, ?)",
                        tag_rows_pending,
                    )
                if vec_rows:
                    c.executemany(
                        f"INSERT INTO {table} (rowid, cube_id, embedding, type, layer, status, "
                        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        vec_rows,
                    )
                # Each new item: its version's change row, then its own (as update() does).
                vids = [new_version_id() for _ in version_rows]
                stamps = self.changes.log_rows(
                    c,
                    [
                        change
                        for item, vid in zip(version_rows, vids, strict=True)
                        for change in (
                            ("memory_version", vid, "create", ("*",)),
                            ("memory", item.id, "create", ("*",)),
                        )
                    ],
                )
                c.executemany(
                    _INSERT_VERSION,
                    [
                        self._version_row(item, "create", "", now, vid, stamps[2 * k])
                        for k, (item, vid) in enumerate(zip(version_rows, vids, strict=True))
                    ],
                )
            # Duplicates: report the existing item.
            for idx, (r, h) in enumerate(zip(results, hashes, strict=True)):
                if not r.created:
                    dup = existing.get(h)
                    if dup is None:
                        dup = results[seen[h]].item.rowid
                    row = c.execute(
                        f"SELECT {ITEM_COLUMNS} FROM memory_items WHERE rowid = ?", (dup,)
                    ).fetchall()[0]
                    results[idx] = AddResult(item=row_to_item(row), created=False)
        return results

    def add(
        self, cube: Cube, item: NewMemory, embedding: Any | None = None, *, dedupe: bool = True
    ) -> AddResult:
        return self.add_many(
            cube, [item], None if embedding is None else [embedding], dedupe=dedupe
        )[0]

    def update(
        self,
        item_id: str,
        *,
        embedding: Any | None = None,
        change: str = "update",
        reason: str = "",
        **fields: Any,
    ) -> MemoryItem:
        """Write a new version of an item. Changing the text needs the new embedding (or the
        item leaves the vector index until it is re-embedded)."""
        unknown = set(fields) - _EDITABLE
        if unknown:
            raise InvalidInputError(f"cannot edit {', '.join(sorted(unknown))}")
        _validate(fields)
        now = time.time()
        with self.db.write() as c:
            old = self.get(item_id)
            changes = {k: v for k, v in fields.items() if v is not None}
            if "tags" in changes:
                changes["tags"] = clean_tags(changes["tags"])
            if "text" in changes:
                changes["text"] = changes["text"].strip()
            if "pinned" in changes:
                changes["pinned"] = bool(changes["pinned"])
            changes = {k: v for k, v in changes.items() if getattr(old, k) != v}
            if not changes and embedding is None:
                return old
            new = replace(old, **changes, version=old.version + 1, updated_at=now)
            if "text" in changes:
                new = replace(new, content_hash=content_hash(new.text))
            dim = self._cube_dim(old.cube_id) or 0
            table = vec_table(dim)
            text_changed = "text" in changes
            if embedding is not None:
                vec = normalize_rows(embedding, dim)[0]
                ensure_vec_table(c, dim)
                c.execute(f"DELETE FROM {table} WHERE rowid = ?", (old.rowid,))
                c.execute(
                    f"INSERT INTO {table} (rowid, cube_id, embedding, type, layer, status, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        old.rowid,
                        old.cube_id,
                        vec.tobytes(),
                        new.type,
                        new.layer,
                        new.status,
                        new.created_at,
                    ),
                )
                new = replace(new, embed_model=new.embed_model or "")
            elif text_changed:
                # The old vector no longer describes the text: drop it rather than mislead.
                if self._has_vector(c, table, old.rowid):
                    c.execute(f"DELETE FROM {table} WHERE rowid = ?", (old.rowid,))
                new = replace(new, embed_model="")
            c.execute(
                "UPDATE memory_items SET text=?, key=?, type=?, layer=?, source=?, confidence=?, "
                "importance=?, pinned=?, tags=?, valid_from=?, valid_to=?, updated_at=?, "
                "version=?, content_hash=?, embed_model=? WHERE rowid=?",
                (
                    new.text,
                    new.key,
                    new.type,
                    new.layer,
                    new.source,
                    new.confidence,
                    new.importance,
                    int(new.pinned),
                    json.dumps(list(new.tags)),
                    new.valid_from,
                    new.valid_to,
                    new.updated_at,
                    new.version,
                    new.content_hash,
                    new.embed_model,
                    old.rowid,
                ),
            )
            if "tags" in changes:
                c.execute("DELETE FROM memory_tags WHERE item_rowid = ?", (old.rowid,))
                c.executemany(
                    "INSERT INTO memory_tags (item_rowid, tag) VALUES (?, ?)",
                    [(old.rowid, t) for t in new.tags],
                )
            if (
                embedding is None
                and ({"type", "layer"} & set(changes))
                and self._has_vector(c, table, old.rowid)
            ):
                c.execute(
                    f"UPDATE {table} SET type = ?, layer = ? WHERE rowid = ?",
                    (new.type, new.layer, old.rowid),
                )
            self._snapshot(c, new, change, reason, now)
            logged = set(changes)
            if embedding is not None or new.embed_model != old.embed_model:
                logged.add("embedding")
            self._log(c, new.id, "update", logged)
            return new

    def set_status(
        self,
        item_id: str,
        status: str,
        *,
        change: str,
        reason: str = "",
        valid_to: float | None = None,
        superseded_by: str | None = None,
    ) -> MemoryItem:
        if status not in MEMORY_STATUSES:
            raise InvalidInputError(f"unknown status {status!r}")
        now = time.time()
        with self.db.write() as c:
            old = self.get(item_id)
            new = replace(
                old,
                status=status,  # type: ignore[arg-type]
                version=old.version + 1,
                updated_at=now,
                valid_to=valid_to if valid_to is not None else old.valid_to,
                superseded_by=superseded_by if superseded_by is not None else old.superseded_by,
            )
            c.execute(
                "UPDATE memory_items SET status=?, version=?, updated_at=?, valid_to=?, "
                "superseded_by=? WHERE rowid=?",
                (new.status, new.version, now, new.valid_to, new.superseded_by, old.rowid),
            )
            table = vec_table(self._cube_dim(old.cube_id) or 0)
            if self._has_vector(c, table, old.rowid):
                c.execute(f"UPDATE {table} SET status = ? WHERE rowid = ?", (status, old.rowid))
            self._snapshot(c, new, change, reason, now)
            self._log(c, new.id, "update", ("status", "valid_to", "superseded_by"))
            return new

    def forget(self, item_id: str, reason: str = "") -> MemoryItem:
        return self.set_status(item_id, "deleted", change="delete", reason=reason)

    def restore(self, item_id: str, reason: str = "") -> MemoryItem:
        return self.set_status(item_id, "active", change="restore", reason=reason)

    def supersede(
        self, old_id: str, new_id: str, *, at: float | None = None, reason: str = ""
    ) -> MemoryItem:
        """Archive ``old_id`` as replaced by ``new_id`` (valid_to = ``at``, default now)."""
        with self.db.write() as c:
            new = self.get(new_id)
            old = self.set_status(
                old_id,
                "archived",
                change="supersede",
                reason=reason,
                valid_to=at if at is not None else time.time(),
                superseded_by=new.id,
            )
            c.execute("UPDATE memory_items SET supersedes = ? WHERE id = ?", (old.id, new.id))
            self._log(c, new.id, "update", ("supersedes",))
            return old

    def purge(self, item_ids: Iterable[str]) -> int:
        """Hard-delete items: text, FTS entries, history, tags and vectors. Irreversible."""
        n = 0
        with self.db.write() as c:
            for item_id in item_ids:
                item = self.get(item_id)
                table = vec_table(self._cube_dim(item.cube_id) or 0)
                if self._has_vector(c, table, item.rowid):
                    c.execute(f"DELETE FROM {table} WHERE rowid = ?", (item.rowid,))
                versions = [
                    str(r[0])
                    for r in c.execute(
                        "SELECT id FROM memory_versions WHERE item_id = ?", (item.id,)
                    )
                ]
                c.execute("DELETE FROM memory_versions WHERE item_id = ?", (item.id,))
                c.execute("DELETE FROM memory_items WHERE rowid = ?", (item.rowid,))
                self.changes.log_many(c, "memory_version", versions, "purge")
                self._log(c, item.id, "purge")
                n += 1
            if n:
                c.execute("INSERT INTO memory_fts(memory_fts) VALUES ('optimize')")
        self.db.checkpoint()
        return n

    def mark_used(self, item_ids: Sequence[str], at: float | None = None) -> None:
        """Count a use (device-local ranking signals: not in the change log)."""
        if not item_ids:
            return
        at = at or time.time()
        with self.db.write() as c:
            c.executemany(
                "UPDATE memory_items SET last_used_at = ?, use_count = use_count + 1 WHERE id = ?",
                [(at, i) for i in item_ids],
            )
