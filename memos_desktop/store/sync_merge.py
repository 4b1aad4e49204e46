"""Device sync: check the entries of a changeset and merge them into the store.

Design rules:
- :func:`check_entries` runs before anything is written and refuses the whole file at the
  first thing out of shape (types, lengths, enumerations, stamps, vector sizes); the merge
  then runs in one transaction, so a file is applied entirely or not at all.
- The merge is the join of :mod:`memos_desktop.store.sync_state`: greatest HLC per field, text
  edits unioned, versions unioned by id, a tombstone for ever. Applying an entry twice, or two
  entries in either order, gives the same store.
- What the merge changes is logged in ``changes`` under the remote stamps (the device that
  made the change), so the local clock observes them (a local edit after a sync is stamped
  after what it saw) and the resident vector index catches up. They are not re-exported:
  a device exports its own rows only.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
import uuid
from typing import Any

from memos_desktop.errors import SyncError
from memos_desktop.store.changelog import changelog_for
from memos_desktop.store.db import Database
from memos_desktop.store.migrations import (
    MEMORY_LAYERS,
    MEMORY_STATUSES,
    MEMORY_TYPES,
    ensure_vec_table,
    vec_table,
)
from memos_desktop.store.records import content_hash
from memos_desktop.store.sync_state import (
    COLUMNS,
    FIELDS,
    VERSION_KEYS,
    absorb,
    tombstone,
    top_seq,
)

HLC_RE = re.compile(r"^\d{13}:\d{6}:[A-Za-z0-9]{0,64}$")
ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_TEXT = 1 << 20
MAX_LIST = 1000
MAX_DIM = 8192


def _bad(what: str) -> SyncError:
    return SyncError(
        f"a sync changeset is malformed ({what}); nothing from it was applied",
        hint="the file was damaged or written by an incompatible version; the device that "
        "wrote it can write a fresh one (`memos-desktop sync now` there)",
    )


def _hlc(v: Any, empty: bool = False) -> str:
    if not isinstance(v, str) or not (HLC_RE.match(v) or (empty and v == "")):
        raise _bad("a clock stamp")
    return v


def _str(v: Any, what: str, limit: int = 4096, *, none: bool = False) -> None:
    if v is None and none:
        return
    if not isinstance(v, str) or len(v) > limit:
        raise _bad(what)
    try:
        v.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _bad(what) from exc


def _num(
    v: Any, what: str, lo: float | None = None, hi: float | None = None, none: bool = False
) -> None:
    if v is None and none:
        return
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise _bad(what)
    if isinstance(v, int) and not -(1 << 63) <= v < (1 << 63):
        raise _bad(what)  # SQLite stores 64-bit integers only
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise _bad(what)


def _str_list(v: Any, what: str) -> None:
    if not isinstance(v, list) or len(v) > MAX_LIST:
        raise _bad(what)
    for t in v:
        _str(t, what, 256)


def _check_value(field: str, v: Any) -> None:
    if field == "text":
        _str(v, "text", MAX_TEXT)
        if not v.strip():
            raise _bad("empty text")
    elif field in ("key", "source", "context"):
        _str(v, field, MAX_TEXT)
    elif field == "type":
        if v not in MEMORY_TYPES:
            raise _bad("type")
    elif field == "layer":
        if v not in MEMORY_LAYERS:
            raise _bad("layer")
    elif field == "status":
        if v not in MEMORY_STATUSES:
            raise _bad("status")
    elif field in ("confidence", "importance"):
        _num(v, field, 0.0, 1.0)
    elif field == "pinned":
        if not isinstance(v, bool):
            raise _bad("pinned")
    elif field == "tags":
        _str_list(v, "tags")
    elif field == "sources":
        if not isinstance(v, list) or len(v) > MAX_LIST:
            raise _bad("sources")
        for s in v:
            if not isinstance(s, dict) or len(s) > 8:
                raise _bad("sources")
            for k, x in s.items():
                if k not in ("kind", "conversation_id", "message_id", "role", "at", "ref"):
                    raise _bad("sources")
                if k == "at":
                    _num(x, "sources", none=True)
                else:
                    _str(x, "sources", none=True)
    elif field in ("valid_from", "valid_to"):
        _num(v, field, none=True)
    elif field == "created_at":
        _num(v, field)
    elif field in ("supersedes", "superseded_by"):
        _str(v, field, 64, none=True)
    elif field == "embedding":
        if v is None:
            return
        if not isinstance(v, dict) or set(v) != {"model", "dim", "vec"}:
            raise _bad("embedding")
        _str(v["model"], "embedding model", 512)
        dim = v["dim"]
        if isinstance(dim, bool) or not isinstance(dim, int) or not 0 < dim <= MAX_DIM:
            raise _bad("embedding dimension")
        _str(v["vec"], "embedding", MAX_DIM * 8)
        try:
            raw = base64.b64decode(v["vec"], validate=True)
        except ValueError as exc:
            raise _bad("embedding") from exc
        if len(raw) != 4 * dim:
            raise _bad("embedding size")


def _check_version(v: Any, mid: str) -> None:
    if not isinstance(v, dict) or set(v) != set(VERSION_KEYS):
        raise _bad("a version")
    if v["item_id"] != mid or not isinstance(v["id"], str) or not ID_RE.match(v["id"]):
        raise _bad("a version id")
    _hlc(v["hlc"], empty=True)
    _num(v["version"], "a version number", 0, 1 << 40)
    if isinstance(v["version"], float):
        raise _bad("a version number")
    for f in ("text", "key", "type", "layer", "status", "confidence", "importance", "tags"):
        _check_value(f, v[f])
    for f in ("valid_from", "valid_to"):
        _check_value(f, v[f])
    _num(v["changed_at"], "a version time")
    for f in ("change", "reason", "device_id"):
        _str(v[f], f"a version's {f}", MAX_TEXT)


def check_entries(payload: Any) -> list[dict[str, Any]]:
    """The entries of a decrypted changeset payload, or :class:`SyncError`."""
    if not isinstance(payload, dict) or set(payload) != {"entries"}:
        raise _bad("the payload")
    entries = payload["entries"]
    if not isinstance(entries, list):
        raise _bad("the entry list")
    for e in entries:
        if not isinstance(e, dict) or not isinstance(e.get("id"), str) or not ID_RE.match(e["id"]):
            raise _bad("an entry id")
        if "purged" in e:
            if set(e) != {"id", "purged"}:
                raise _bad("a tombstone")
            _hlc(e["purged"])
            continue
        if set(e) != {"id", "cube", "fields", "edits", "versions"}:
            raise _bad("an entry")
        cube = e["cube"]
        if not isinstance(cube, dict) or set(cube) != {"user", "name", "model", "dim"}:
            raise _bad("a cube")
        for k in ("user", "name"):
            _str(cube[k], "a cube name", 200)
            if not cube[k].strip():
                raise _bad("a cube name")
        _str(cube["model"], "a cube model", 512)
        d = cube["dim"]
        if isinstance(d, bool) or not isinstance(d, int) or not 0 < d <= MAX_DIM:
            raise _bad("a cube dimension")
        fields = e["fields"]
        if not isinstance(fields, dict) or set(fields) != set(FIELDS):
            raise _bad("the fields")
        for f, pair in fields.items():
            if not isinstance(pair, list) or len(pair) != 2:
                raise _bad(f"field {f}")
            _hlc(pair[0])
            _check_value(f, pair[1])
        edits = e["edits"]
        if not isinstance(edits, list) or len(edits) > 100_000:
            raise _bad("the text edits")
        for pair in edits:
            if not isinstance(pair, list) or len(pair) != 2:
                raise _bad("a text edit")
            _hlc(pair[0])
            _hlc(pair[1], empty=True)
        versions = e["versions"]
        if not isinstance(versions, list) or len(versions) > 100_000:
            raise _bad("the versions")
        for v in versions:
            _check_version(v, e["id"])
    return entries


# --- the merge ----------------------------------------------------------------------------


def _cube_id(
    c: Any, db: Database, cube: dict[str, Any], seen: dict[tuple[str, str], tuple[str, int]]
) -> tuple[str, int]:
    """The local cube a remote memory belongs in: same owner name and cube name (made if
    missing, with the sender's embedding model). ``seen``: those found in this file."""
    key = (cube["user"], cube["name"])
    if key not in seen:
        seen[key] = _find_cube(c, db, cube)
    return seen[key]


def _find_cube(c: Any, db: Database, cube: dict[str, Any]) -> tuple[str, int]:
    log = changelog_for(db)
    r = c.execute("SELECT id FROM users WHERE name = ?", (cube["user"],)).fetchall()
    if r:
        uid = str(r[0][0])
    else:
        uid = uuid.uuid4().hex
        c.execute(
            "INSERT INTO users (id, name, display_name, created_at) VALUES (?, ?, ?, ?)",
            (uid, cube["user"], cube["user"], time.time()),
        )
        log.log(c, "user", uid, "create", ("*",))
    r = c.execute(
        "SELECT id, embed_dim FROM cubes WHERE owner_id = ? AND name = ?", (uid, cube["name"])
    ).fetchall()
    if r:
        return str(r[0][0]), int(r[0][1])
    cid = uuid.uuid4().hex
    now = time.time()
    c.execute(
        "INSERT INTO cubes (id, name, owner_id, embed_model, embed_dim, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (cid, cube["name"], uid, cube["model"], cube["dim"], now, now),
    )
    log.log(c, "cube", cid, "create", ("*",))
    return cid, int(cube["dim"])


def _has_table(c: Any, name: str) -> bool:
    return bool(
        c.execute("SELECT count(*) FROM sqlite_master WHERE name = ?", (name,)).fetchall()[0][0]
    )


def _purge(c: Any, mid: str, hlc: str) -> None:
    r = c.execute(
        "SELECT m.rowid, cb.embed_dim FROM memory_items m JOIN cubes cb ON cb.id = m.cube_id "
        "WHERE m.id = ?",
        (mid,),
    ).fetchall()
    if r:
        rowid, dim = int(r[0][0]), int(r[0][1])
        table = vec_table(dim)
        if _has_table(c, table):
            c.execute(f"DELETE FROM {table} WHERE rowid = ?", (rowid,))
        c.execute("DELETE FROM memory_items WHERE rowid = ?", (rowid,))
    c.execute("DELETE FROM memory_versions WHERE item_id = ?", (mid,))
    tombstone(c, mid, hlc)


def _db_value(field: str, v: Any) -> Any:
    if field == "pinned":
        return int(v)
    if field in ("tags", "sources"):
        return json.dumps(v)
    return v


def _set_vector(c: Any, rowid: int, cube_id: str, dim: int, emb: Any, meta: tuple[Any, ...]) -> str:
    """Write (or drop) the vector of a memory; returns its embed_model."""
    table = vec_table(dim)
    if _has_table(c, table):
        c.execute(f"DELETE FROM {table} WHERE rowid = ?", (rowid,))
    if emb is None or int(emb["dim"]) != dim:
        return ""  # no vector, or one of another model's size: it waits for re-embedding
    ensure_vec_table(c, dim)
    c.execute(
        f"INSERT INTO {table} (rowid, cube_id, embedding, type, layer, status, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (rowid, cube_id, base64.b64decode(emb["vec"]), *meta),
    )
    return str(emb["model"])


def _apply_one(
    c: Any,
    db: Database,
    e: dict[str, Any],
    now: float,
    cubes: dict[tuple[str, str], tuple[str, int]],
) -> list[tuple[str, str, list[str]]]:
    """Merge one entry; returns the change rows to log ``(hlc, op, fields)``."""
    mid = e["id"]
    tomb = c.execute("SELECT hlc FROM sync_tombstones WHERE memory_id = ?", (mid,)).fetchall()
    if "purged" in e:
        if tomb and str(tomb[0][0]) >= e["purged"]:
            return []
        _purge(c, mid, e["purged"])
        return [] if tomb else [(e["purged"], "purge", [])]
    if tomb:
        return []  # purged here: nothing written elsewhere brings it back
    c.executemany(
        "INSERT OR IGNORE INTO sync_text_edits (memory_id, hlc, base) VALUES (?, ?, ?)",
        [(mid, h, b) for h, b in e["edits"]],
    )
    local = {
        str(f): str(h)
        for f, h in c.execute(
            "SELECT field, hlc FROM sync_fields WHERE memory_id = ?", (mid,)
        ).fetchall()
    }
    row = c.execute(
        "SELECT m.rowid, m.cube_id, cb.embed_dim, m.type, m.layer, m.status, m.created_at "
        "FROM memory_items m JOIN cubes cb ON cb.id = m.cube_id WHERE m.id = ?",
        (mid,),
    ).fetchall()
    fields = e["fields"]
    won = {f: v for f, (h, v) in fields.items() if row == [] or h > local.get(f, "")}
    logged: list[tuple[str, str, list[str]]] = []
    if not row:
        cube_id, dim = _cube_id(c, db, e["cube"], cubes)
        rowid = int(
            c.execute("SELECT coalesce(max(rowid), 0) + 1 FROM memory_items").fetchall()[0][0]
        )
        vals = {f: _db_value(f, won[f]) for f in COLUMNS}
        c.execute(
            f"INSERT INTO memory_items (rowid, id, cube_id, {', '.join(COLUMNS)}, updated_at, "
            f"content_hash, embed_model, version) VALUES "
            f"({', '.join('?' * (len(COLUMNS) + 7))})",
            (rowid, mid, cube_id, *vals.values(), now, content_hash(won["text"]), "", 1),
        )
        if won["tags"]:
            c.executemany(
                "INSERT OR IGNORE INTO memory_tags (item_rowid, tag) VALUES (?, ?)",
                [(rowid, t) for t in won["tags"]],
            )
        model = _set_vector(
            c,
            rowid,
            cube_id,
            dim,
            won["embedding"],
            (won["type"], won["layer"], won["status"], won["created_at"]),
        )
        if model:
            c.execute("UPDATE memory_items SET embed_model = ? WHERE rowid = ?", (model, rowid))
        op = "create"
    elif won:
        rowid, cube_id, dim = int(row[0][0]), str(row[0][1]), int(row[0][2])
        cols = [f for f in won if f in COLUMNS]
        sets = [f"{f} = ?" for f in cols] + ["updated_at = ?"]
        params = [_db_value(f, won[f]) for f in cols] + [now]
        if "text" in won:
            sets.append("content_hash = ?")
            params.append(content_hash(won["text"]))
        c.execute(f"UPDATE memory_items SET {', '.join(sets)} WHERE rowid = ?", (*params, rowid))
        if "tags" in won:
            c.execute("DELETE FROM memory_tags WHERE item_rowid = ?", (rowid,))
            c.executemany(
                "INSERT OR IGNORE INTO memory_tags (item_rowid, tag) VALUES (?, ?)",
                [(rowid, t) for t in won["tags"]],
            )
        cur = c.execute(
            "SELECT type, layer, status, created_at FROM memory_items WHERE rowid = ?", (rowid,)
        ).fetchall()[0]
        if "embedding" in won:
            model = _set_vector(c, rowid, cube_id, dim, won["embedding"], tuple(cur))
            c.execute("UPDATE memory_items SET embed_model = ? WHERE rowid = ?", (model, rowid))
        elif {"type", "layer", "status"} & set(won) and _has_table(c, vec_table(dim)):
            c.execute(
                f"UPDATE {vec_table(dim)} SET type = ?, layer = ?, status = ? WHERE rowid = ?",
                (cur[0], cur[1], cur[2], rowid),
            )
        op = "update"
    else:
        rowid = int(row[0][0])
        op = ""
    c.executemany(
        "INSERT INTO sync_fields (memory_id, field, hlc) VALUES (?, ?, ?) "
        "ON CONFLICT (memory_id, field) DO UPDATE SET hlc = excluded.hlc",
        [(mid, f, fields[f][0]) for f in won],
    )
    if op:
        by_hlc: dict[str, list[str]] = {}
        for f in won:
            by_hlc.setdefault(fields[f][0], []).append(f)
        logged += [(h, op, sorted(fs)) for h, fs in sorted(by_hlc.items())]
    if e["versions"]:
        c.executemany(
            f"INSERT OR IGNORE INTO memory_versions ({', '.join(VERSION_KEYS)}) VALUES "
            f"({', '.join('?' * len(VERSION_KEYS))})",
            [
                tuple(json.dumps(v[k]) if k == "tags" else v[k] for k in VERSION_KEYS)
                for v in e["versions"]
            ],
        )
        c.execute(
            "UPDATE memory_items SET version = max(version, (SELECT coalesce(max(version), 1) "
            "FROM memory_versions WHERE item_id = ?)) WHERE rowid = ?",
            (mid, rowid),
        )
    return logged


def apply_entries(db: Database, device_id: str, entries: list[dict[str, Any]], mark: Any) -> int:
    """Merge checked entries in one transaction (this device's own writes absorbed first);
    ``mark(c)`` records the file as applied in the same transaction. Returns how many
    memories changed."""
    now = time.time()
    changed = 0
    purged = False
    with db.write() as c:
        absorb(c, device_id)
        rows: list[tuple[str, str, str, str, str, str, float]] = []
        cubes: dict[tuple[str, str], tuple[str, int]] = {}
        for e in entries:
            logged = _apply_one(c, db, e, now, cubes)
            changed += bool(logged)
            for hlc, op, fs in logged:
                rows.append((hlc, hlc.split(":", 2)[2], "memory", e["id"], op, json.dumps(fs), now))
        if rows:
            c.executemany(
                "INSERT INTO changes (hlc, device_id, entity, entity_id, op, fields, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            if purged := any(r[4] == "purge" for r in rows):
                c.execute("INSERT INTO memory_fts(memory_fts) VALUES ('optimize')")
        # absorb() must not read these rows as local ones (they carry other device ids).
        top = top_seq(c)
        c.execute(
            "INSERT INTO sync_config (key, value) VALUES ('absorbed_seq', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(top),),
        )
        mark(c)
    if purged:
        db.checkpoint()  # the purged text out of the WAL too (as MemoryRepo.purge does)
    return changed
