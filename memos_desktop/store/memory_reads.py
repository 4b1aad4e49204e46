"""The read side of the memory repository: by id or prefix, by rowid, by content hash,
filtered lists and counts, version history and stored vectors."""

from __future__ import annotations

import builtins
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from memos_desktop.errors import InvalidInputError, ItemNotFoundError
from memos_desktop.store.db import Database
from memos_desktop.store.memory_rows import (
    ITEM_COLUMNS,
    VERSION_COLUMNS,
    Vectors,
    filter_sql,
    row_to_item,
)
from memos_desktop.store.migrations import vec_table
from memos_desktop.store.records import MemoryItem, MemoryVersion, SearchFilters, content_hash


class MemoryReads:
    db: Database

    # --- reads -----------------------------------------------------------------------------

    def get(self, item_id: str) -> MemoryItem:
        """By full id, or by a unique prefix of at least 6 characters (as the CLI shows ids)."""
        rows = self.db.query(f"SELECT {ITEM_COLUMNS} FROM memory_items WHERE id = ?", (item_id,))
        if not rows and len(item_id) >= 6:
            rows = self.db.query(
                f"SELECT {ITEM_COLUMNS} FROM memory_items WHERE id >= ? AND id < ? LIMIT 2",
                (item_id, item_id + "\uffff"),
            )
            if len(rows) > 1:
                raise InvalidInputError(
                    f"the id prefix {item_id!r} matches several memories",
                    hint="give more characters of the id",
                )
        if not rows:
            raise ItemNotFoundError(
                f"no memory with id {item_id!r}", hint="`memos-desktop list` shows the ids"
            )
        return row_to_item(rows[0])

    def get_many(self, rowids: Sequence[int]) -> dict[int, MemoryItem]:
        out: dict[int, MemoryItem] = {}
        for i in range(0, len(rowids), 500):
            chunk = list(rowids[i : i + 500])
            q = ",".join("?" * len(chunk))
            for r in self.db.query(
                f"SELECT {ITEM_COLUMNS} FROM memory_items WHERE rowid IN ({q})", chunk
            ):
                out[r[0]] = row_to_item(r)
        return out

    def score_fields(self, rowids: Sequence[int]) -> list[tuple[Any, ...]]:
        """(rowid, created_at, importance, type, valid_from, valid_to) for ranking, without
        parsing whole items."""
        out: list[tuple[Any, ...]] = []
        for i in range(0, len(rowids), 500):
            chunk = list(rowids[i : i + 500])
            out += self.db.query(
                "SELECT rowid, created_at, importance, type, valid_from, valid_to "
                "FROM memory_items WHERE rowid IN "
                f"({','.join('?' * len(chunk))})",
                chunk,
            )
        return out

    def known_hashes(self, cube_id: str, hashes: Sequence[str]) -> dict[str, int]:
        """content hash -> rowid of the non-deleted items of the cube that have it."""
        found: dict[str, int] = {}
        for i in range(0, len(hashes), 500):
            chunk = list(hashes[i : i + 500])
            for h, rowid in self.db.query(
                "SELECT content_hash, rowid FROM memory_items WHERE cube_id = ? "
                f"AND status != 'deleted' AND content_hash IN ({','.join('?' * len(chunk))})",
                (cube_id, *chunk),
            ):
                found.setdefault(str(h), int(rowid))
        return found

    def by_hash(self, cube_id: str, text: str) -> MemoryItem | None:
        r = self.db.query_one(
            f"SELECT {ITEM_COLUMNS} FROM memory_items WHERE cube_id = ? AND content_hash = ? "
            "AND status != 'deleted' LIMIT 1",
            (cube_id, content_hash(text)),
        )
        return row_to_item(r) if r else None

    def by_keys(self, cube_id: str, keys: Sequence[str], limit: int = 50) -> list[MemoryItem]:
        """Active items of a cube whose key is one of ``keys`` (the reader's attribute slots,
        e.g. ``self:residence``), newest first."""
        keys = [k for k in dict.fromkeys(keys) if k]
        if not keys:
            return []
        return [
            row_to_item(r)
            for r in self.db.query(
                f"SELECT {ITEM_COLUMNS} FROM memory_items WHERE cube_id = ? AND status = 'active' "
                f"AND key IN ({','.join('?' * len(keys))}) ORDER BY created_at DESC LIMIT ?",
                (cube_id, *keys, limit),
            )
        ]

    def said_with(self, item: MemoryItem) -> builtins.list[MemoryItem]:
        """The memories (any status, ``item`` too) made from the message ``item`` was read
        from: its raw episode and the other memories the reader found in it. They share its
        time, which the (cube, status, created_at) index finds; the message id tells them
        from others of the same moment."""
        msgs = {s.message_id for s in item.sources if s.message_id and s.role != "assistant"}
        if not msgs:
            return [item]
        rows = self.db.query(
            f"SELECT {ITEM_COLUMNS} FROM memory_items WHERE cube_id = ? "
            "AND status IN ('active', 'archived', 'deleted') AND created_at = ?",
            (item.cube_id, item.created_at),
        )
        out = [row_to_item(r) for r in rows]
        return [i for i in out if msgs & {s.message_id for s in i.sources}] or [item]

    def citing(self, cube_id: str, message_id: str) -> builtins.list[MemoryItem]:
        """The cube's memories (not deleted) that name ``message_id`` among their sources."""
        cols = ", ".join("m." + c.strip() for c in ITEM_COLUMNS.split(","))
        return [
            row_to_item(r)
            for r in self.db.query(
                f"SELECT {cols} FROM memory_items m WHERE m.cube_id = ? "
                "AND m.status != 'deleted' AND EXISTS (SELECT 1 FROM json_each(m.sources) "
                "WHERE json_extract(value, '$.message_id') = ?)",
                (cube_id, message_id),
            )
        ]

    def list(
        self,
        filters: SearchFilters = SearchFilters(),
        *,
        limit: int = 50,
        offset: int = 0,
        order: str = "created_at DESC",
    ) -> list[MemoryItem]:
        if order not in {
            "created_at DESC",
            "created_at ASC",
            "updated_at DESC",
            "importance DESC",
            "last_used_at DESC",
        }:
            raise InvalidInputError(f"cannot order by {order!r}")
        where, params = filter_sql(filters, "m")
        return [
            row_to_item(r)
            for r in self.db.query(
                f"SELECT {', '.join('m.' + c.strip() for c in ITEM_COLUMNS.split(','))} "
                f"FROM memory_items m WHERE {where} ORDER BY m.{order} LIMIT ? OFFSET ?",
                (*params, limit, offset),
            )
        ]

    def count(self, filters: SearchFilters = SearchFilters()) -> int:
        where, params = filter_sql(filters, "m")
        return int(self.db.scalar(f"SELECT count(*) FROM memory_items m WHERE {where}", params))

    def history(self, item_id: str) -> builtins.list[MemoryVersion]:
        item = self.get(item_id)
        return [
            MemoryVersion(
                item_id=r[0],
                version=r[1],
                text=r[2],
                key=r[3],
                type=r[4],
                layer=r[5],
                status=r[6],
                confidence=r[7],
                importance=r[8],
                tags=tuple(json.loads(r[9])),
                valid_from=r[10],
                valid_to=r[11],
                change=r[12],
                reason=r[13],
                changed_at=r[14],
                device_id=r[15],
                id=r[16],
                hlc=r[17],
            )
            for r in self.db.query(
                f"SELECT {VERSION_COLUMNS} FROM memory_versions WHERE item_id = ? "
                "ORDER BY version, hlc, id",
                (item.id,),
            )
        ]

    def vectors(self, cube_dim: int, rowids: Sequence[int]) -> dict[int, Vectors]:
        if not rowids:
            return {}
        table = vec_table(cube_dim)
        q = ",".join("?" * len(rowids))
        try:
            rows = self.db.query(
                f"SELECT rowid, embedding FROM {table} WHERE rowid IN ({q})", list(rowids)
            )
        except Exception:
            return {}
        return {r[0]: np.frombuffer(r[1], dtype=np.float32) for r in rows}
