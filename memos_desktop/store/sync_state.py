"""Device sync, the store's half: this device's sync settings, its paired peers, which
changeset files it applied, and the merge state of every memory (schema v7).

Design rules:
- The merge state is a join-semilattice, so applying the same states in any order, any number
  of times, ends in the same place: per memory field the value with the greatest HLC wins
  (``sync_fields`` keeps the HLC of each field's current value); text edits are a grow-only set
  of ``(hlc, base)`` pairs (``base``: the HLC of the text the edit replaced), and two edits with
  one base are a fork: both sides edited the text; a purge is a tombstone that beats every
  other write, for ever.
- Local writes reach the merge state by *absorbing* this device's rows of the change log
  (field names and stamps, in order) at the start of every sync transaction, before anything
  remote is applied, so a local edit is never judged against a state it did not see.
- An entry (the unit a changeset or snapshot carries) is a memory's full state with the HLC of
  every field, its text edits and the versions it names, or a tombstone. A full state makes
  every entry apply on its own, whatever arrived before it.
- No text outside the encrypted database: these tables hold ids, field names and stamps.
  The values are read from ``memory_items`` when an entry is built.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable
from typing import Any

from memos_desktop.store.db import Database
from memos_desktop.store.memory_rows import VERSION_COLUMNS
from memos_desktop.store.migrations import vec_table

# The memory fields that sync, each a memory_items column except "embedding" (the vector and
# the model that made it). Usage counters, rowid, version ordinal and content hash stay local.
FIELDS: tuple[str, ...] = (
    "text",
    "key",
    "type",
    "layer",
    "status",
    "source",
    "confidence",
    "importance",
    "pinned",
    "tags",
    "sources",
    "valid_from",
    "valid_to",
    "supersedes",
    "superseded_by",
    "context",
    "created_at",
    "embedding",
)
COLUMNS: tuple[str, ...] = tuple(f for f in FIELDS if f != "embedding")
VERSION_KEYS: tuple[str, ...] = tuple(k.strip() for k in VERSION_COLUMNS.split(","))
ZERO_HLC = "0000000000000:000000:"


# --- settings and peers -------------------------------------------------------------------


def get_config(db: Database, key: str) -> str | None:
    v = db.scalar("SELECT value FROM sync_config WHERE key = ?", (key,))
    return None if v is None else str(v)


def set_config(c: Any, key: str, value: str | None) -> None:
    if value is None:
        c.execute("DELETE FROM sync_config WHERE key = ?", (key,))
    else:
        c.execute(
            "INSERT INTO sync_config (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


def int_config(db: Database, key: str) -> int:
    v = get_config(db, key)
    return int(v) if v else 0


def peers(db: Database) -> list[tuple[str, str, float, int, float | None]]:
    """``(device_id, identity, paired_at, applied_upto, last_seen)`` of every paired device."""
    return [
        (str(r[0]), str(r[1]), float(r[2]), int(r[3]), r[4])
        for r in db.query(
            "SELECT device_id, identity, paired_at, applied_upto, last_seen FROM sync_peers "
            "ORDER BY device_id"
        )
    ]


def add_peer(db: Database, device_id: str, identity: str) -> None:
    with db.write() as c:
        c.execute(
            "INSERT INTO sync_peers (device_id, identity, paired_at) VALUES (?, ?, ?) "
            "ON CONFLICT (device_id) DO UPDATE SET identity = excluded.identity",
            (device_id, identity, time.time()),
        )


def is_applied(db: Database, device_id: str, seq: int) -> bool:
    upto = db.scalar("SELECT applied_upto FROM sync_peers WHERE device_id = ?", (device_id,))
    if upto is not None and seq <= int(upto):
        return True
    return bool(
        db.scalar(
            "SELECT count(*) FROM sync_applied WHERE device_id = ? AND seq = ?", (device_id, seq)
        )
    )


def applied_upto(db: Database, device_id: str) -> int:
    return int(
        db.scalar("SELECT applied_upto FROM sync_peers WHERE device_id = ?", (device_id,)) or 0
    )


def mark_applied(c: Any, device_id: str, seq: int, kind: str, covers: dict[str, int]) -> None:
    """Record a file as applied (in the transaction that applied it). A snapshot moves the
    watermark of every peer it covers: its state includes their changesets up to there."""
    now = time.time()
    c.execute(
        "INSERT OR IGNORE INTO sync_applied (device_id, seq, kind, applied_at) VALUES (?, ?, ?, ?)",
        (device_id, seq, kind, now),
    )
    c.execute("UPDATE sync_peers SET last_seen = ? WHERE device_id = ?", (now, device_id))
    for dev, upto in covers.items():
        c.execute(
            "UPDATE sync_peers SET applied_upto = max(applied_upto, ?) WHERE device_id = ?",
            (upto, dev),
        )
    for (dev,) in c.execute("SELECT device_id FROM sync_peers").fetchall():
        upto = int(
            c.execute("SELECT applied_upto FROM sync_peers WHERE device_id = ?", (dev,)).fetchall()[
                0
            ][0]
        )
        while c.execute(
            "SELECT count(*) FROM sync_applied WHERE device_id = ? AND seq = ?", (dev, upto + 1)
        ).fetchall()[0][0]:
            upto += 1
        c.execute("UPDATE sync_peers SET applied_upto = ? WHERE device_id = ?", (upto, dev))
        c.execute("DELETE FROM sync_applied WHERE device_id = ? AND seq <= ?", (dev, upto))


def coverage(db: Database) -> dict[str, int]:
    """Per peer, the changeset watermark this device's state includes."""
    return {
        str(r[0]): int(r[1]) for r in db.query("SELECT device_id, applied_upto FROM sync_peers")
    }


# --- absorbing local writes ---------------------------------------------------------------


def field_hlc(c: Any, memory_id: str, field: str) -> str:
    r = c.execute(
        "SELECT hlc FROM sync_fields WHERE memory_id = ? AND field = ?", (memory_id, field)
    ).fetchall()
    return str(r[0][0]) if r else ""


def tombstone(c: Any, memory_id: str, hlc: str) -> None:
    c.execute(
        "INSERT INTO sync_tombstones (memory_id, hlc) VALUES (?, ?) "
        "ON CONFLICT (memory_id) DO UPDATE SET hlc = max(hlc, excluded.hlc)",
        (memory_id, hlc),
    )
    c.execute("DELETE FROM sync_fields WHERE memory_id = ?", (memory_id,))
    c.execute("DELETE FROM sync_text_edits WHERE memory_id = ?", (memory_id,))


def top_seq(c: Any) -> int:
    """The newest change-log seq (read in the caller's transaction)."""
    return int(c.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchall()[0][0])


def absorb(c: Any, device_id: str) -> int:
    """Fold this device's change-log rows since the last absorb into the merge state (inside
    the caller's write transaction). Returns how many rows it read."""
    since = int(
        (c.execute("SELECT value FROM sync_config WHERE key = 'absorbed_seq'").fetchall() or [[0]])[
            0
        ][0]
    )
    top = top_seq(c)
    rows = c.execute(
        "SELECT hlc, entity_id, op, fields FROM changes WHERE seq > ? AND seq <= ? "
        "AND device_id = ? AND entity = 'memory' ORDER BY seq",
        (since, top, device_id),
    ).fetchall()
    raised: list[tuple[str, str, str]] = []
    text_hlc: dict[str, str] = {}  # this batch's text stamps (not yet in sync_fields)

    def flush() -> None:
        c.executemany(
            "INSERT INTO sync_fields (memory_id, field, hlc) VALUES (?, ?, ?) "
            "ON CONFLICT (memory_id, field) DO UPDATE SET hlc = excluded.hlc "
            "WHERE excluded.hlc > sync_fields.hlc",
            raised,
        )
        raised.clear()

    for hlc, mid, op, fields in rows:
        if op == "purge":
            flush()
            tombstone(c, mid, hlc)
            text_hlc.pop(mid, None)
            continue
        names = set(json.loads(fields))
        if op == "create" or "*" in names:
            names = set(FIELDS)
            base = ""
        else:
            names &= set(FIELDS)
            base = text_hlc[mid] if mid in text_hlc else field_hlc(c, mid, "text")
        if "text" in names:
            c.execute(
                "INSERT OR IGNORE INTO sync_text_edits (memory_id, hlc, base) VALUES (?, ?, ?)",
                (mid, hlc, base),
            )
            text_hlc[mid] = hlc
        raised += [(mid, f, hlc) for f in names]
    flush()
    set_config(c, "absorbed_seq", str(top))
    return len(rows)


def local_changes(db: Database, device_id: str, since: int) -> tuple[int, set[str], set[str]]:
    """This device's memory changes after change seq ``since``: ``(top seq, memory ids,
    version ids)``."""
    top = int(db.scalar("SELECT coalesce(max(seq), 0) FROM changes"))
    mids: set[str] = set()
    vids: set[str] = set()
    for entity, eid in db.query(
        "SELECT entity, entity_id FROM changes WHERE seq > ? AND seq <= ? AND device_id = ? "
        "AND entity IN ('memory', 'memory_version')",
        (since, top, device_id),
    ):
        (mids if entity == "memory" else vids).add(str(eid))
    return top, mids, vids


def pending_count(db: Database, device_id: str) -> int:
    since = int_config(db, "exported_seq")
    return int(
        db.scalar(
            "SELECT count(*) FROM changes WHERE seq > ? AND device_id = ? "
            "AND entity IN ('memory', 'memory_version')",
            (since, device_id),
        )
    )


# --- building entries ---------------------------------------------------------------------


def _chunks(ids: list[str], n: int = 500) -> Iterable[list[str]]:
    for k in range(0, len(ids), n):
        yield ids[k : k + n]


def _vector(c: Any, dim: int, rowid: int) -> bytes | None:
    table = vec_table(dim)
    if not c.execute("SELECT count(*) FROM sqlite_master WHERE name = ?", (table,)).fetchall()[0][
        0
    ]:
        return None
    r = c.execute(f"SELECT embedding FROM {table} WHERE rowid = ?", (rowid,)).fetchall()
    return bytes(r[0][0]) if r else None


def _version_json(r: tuple[Any, ...]) -> dict[str, Any]:
    d = dict(zip(VERSION_KEYS, r, strict=True))
    d["tags"] = json.loads(d["tags"])
    return d


def build_entries(
    c: Any, memory_ids: Iterable[str], version_ids: Iterable[str] | None
) -> list[dict[str, Any]]:
    """Entries for these memories: a tombstone, or the full state with field HLCs, text edits
    and versions (those in ``version_ids``; ``None``: all of them). Read in the caller's
    transaction, so values and stamps agree. Memories neither live nor tombstoned are left
    out (a write rolled back, or a row of a cube this device deleted)."""
    wanted = set(memory_ids)
    by_item: dict[str, list[dict[str, Any]]] = {}
    if version_ids is not None:
        vids = sorted(set(version_ids))
        for chunk in _chunks(vids):
            for r in c.execute(
                f"SELECT {VERSION_COLUMNS} FROM memory_versions WHERE id IN "
                f"({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall():
                v = _version_json(r)
                by_item.setdefault(v["item_id"], []).append(v)
        wanted |= set(by_item)
    out: list[dict[str, Any]] = []
    cols = ", ".join(f"m.{k}" for k in COLUMNS)
    for chunk in _chunks(sorted(wanted)):
        marks = ",".join("?" * len(chunk))
        tombs = {
            str(r[0]): str(r[1])
            for r in c.execute(
                f"SELECT memory_id, hlc FROM sync_tombstones WHERE memory_id IN ({marks})", chunk
            ).fetchall()
        }
        for mid, hlc in sorted(tombs.items()):
            out.append({"id": mid, "purged": hlc})
        rows = c.execute(
            f"SELECT m.id, m.rowid, m.embed_model, u.name, cb.name, cb.embed_model, "
            f"cb.embed_dim, {cols} FROM memory_items m JOIN cubes cb ON cb.id = m.cube_id "
            f"JOIN users u ON u.id = cb.owner_id WHERE m.id IN ({marks}) ORDER BY m.id",
            chunk,
        ).fetchall()
        clocks: dict[str, dict[str, str]] = {}
        for mid, f, h in c.execute(
            f"SELECT memory_id, field, hlc FROM sync_fields WHERE memory_id IN ({marks})", chunk
        ).fetchall():
            clocks.setdefault(str(mid), {})[str(f)] = str(h)
        edits: dict[str, list[list[str]]] = {}
        for mid, h, b in c.execute(
            f"SELECT memory_id, hlc, base FROM sync_text_edits WHERE memory_id IN ({marks}) "
            "ORDER BY hlc",
            chunk,
        ).fetchall():
            edits.setdefault(str(mid), []).append([str(h), str(b)])
        if version_ids is None:
            for r in c.execute(
                f"SELECT {VERSION_COLUMNS} FROM memory_versions WHERE item_id IN ({marks}) "
                "ORDER BY item_id, version, hlc",
                chunk,
            ).fetchall():
                v = _version_json(r)
                by_item.setdefault(v["item_id"], []).append(v)
        for r in rows:
            mid, rowid, embed_model, user, cube, cube_model, dim = r[:7]
            values = dict(zip(COLUMNS, r[7:], strict=True))
            values["pinned"] = bool(values["pinned"])
            values["tags"] = json.loads(values["tags"])
            values["sources"] = json.loads(values["sources"])
            vec = _vector(c, int(dim), int(rowid)) if embed_model else None
            values["embedding"] = (
                None
                if vec is None
                else {
                    "model": embed_model,
                    "dim": int(dim),
                    "vec": base64.b64encode(vec).decode("ascii"),
                }
            )
            clock = clocks.get(mid, {})
            zero = ZERO_HLC  # a memory written before its changes were logged
            out.append(
                {
                    "id": mid,
                    "cube": {"user": user, "name": cube, "model": cube_model, "dim": int(dim)},
                    "fields": {f: [clock.get(f, zero), values[f]] for f in FIELDS},
                    "edits": edits.get(mid, []),
                    "versions": by_item.get(mid, []),
                }
            )
    return out


def all_memory_ids(c: Any) -> list[str]:
    ids = [str(r[0]) for r in c.execute("SELECT id FROM memory_items").fetchall()]
    ids += [str(r[0]) for r in c.execute("SELECT memory_id FROM sync_tombstones").fetchall()]
    return ids


# --- what `sync status` shows -------------------------------------------------------------


def conflicts(db: Database) -> list[tuple[str, str, list[str]]]:
    """Open text conflicts: ``(memory id, current text, the HLCs of the rival edits)``. Open
    while the winning edit has a sibling (an edit of the same base): the text was rewritten on
    two devices, neither seeing the other. An edit on top of the winner closes it."""
    out = []
    for mid, win, text in db.query(
        "SELECT f.memory_id, f.hlc, m.text FROM sync_fields f JOIN memory_items m "
        "ON m.id = f.memory_id WHERE f.field = 'text' AND EXISTS ("
        "SELECT 1 FROM sync_text_edits w JOIN sync_text_edits s "
        "ON s.memory_id = w.memory_id AND s.base = w.base AND s.hlc != w.hlc "
        "WHERE w.memory_id = f.memory_id AND w.hlc = f.hlc) ORDER BY f.memory_id"
    ):
        rivals = [
            str(r[0])
            for r in db.query(
                "SELECT s.hlc FROM sync_text_edits w JOIN sync_text_edits s "
                "ON s.memory_id = w.memory_id AND s.base = w.base "
                "WHERE w.memory_id = ? AND w.hlc = ? ORDER BY s.hlc",
                (mid, win),
            )
        ]
        out.append((str(mid), str(text), rivals))
    return out


def state_dump(db: Database) -> dict[str, Any]:
    """Everything the merge decides, in a canonical form: two devices in the same state have
    equal dumps (tests compare them; ``sync status`` prints its hash)."""
    with db.write() as c:
        entries = build_entries(c, all_memory_ids(c), None)
    for e in entries:
        e.get("versions", []).sort(key=lambda v: v["id"])
    return {
        "entries": sorted(entries, key=lambda e: e["id"]),
        "conflicts": [(m, r) for m, _, r in conflicts(db)],
    }
