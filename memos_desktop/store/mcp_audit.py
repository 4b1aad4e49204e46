"""The MCP server's grants and audit log, in the encrypted database (migration 8).

Design rules:
- Both tables live inside the sqlite3mc-encrypted database, like every memory: the audit log
  holds what other apps asked for (search words, the text they added), so it is never written
  to a plain file. The policy (who may do what) is ``api/mcp_ops.py``; this module only stores.
- Device-local: no change-log rows, so grants and the log never travel with sync.
- A call that may change memory is recorded before it runs (``begin``: outcome ``started``)
  and finished after (``finish``), so even a call that crashes the server leaves its row; a
  read, which changes nothing, is one ``begin`` with its outcome, before its result leaves.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from memos_desktop.store.db import Database

ALL_CUBES = "*"
ACCESS = ("read", "write")
OUTCOMES = ("started", "ok", "refused", "error")


@dataclass(frozen=True)
class GrantRow:
    client: str
    cube_id: str  # a cube's id, or ALL_CUBES
    access: str  # "read" or "write"
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    client: str
    transport: str
    tool: str
    cube_id: str
    item_id: str
    args: dict[str, Any]
    outcome: str
    detail: str
    finished_at: float | None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


_AUDIT_COLS = (
    "id, at, client, transport, tool, cube_id, item_id, args, outcome, detail, finished_at"
)


def _entry(row: tuple[Any, ...]) -> AuditEntry:
    return AuditEntry(
        id=int(row[0]),
        at=float(row[1]),
        client=str(row[2]),
        transport=str(row[3]),
        tool=str(row[4]),
        cube_id=str(row[5]),
        item_id=str(row[6]),
        args=json.loads(row[7]),
        outcome=str(row[8]),
        detail=str(row[9]),
        finished_at=None if row[10] is None else float(row[10]),
    )


class McpRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- grants -------------------------------------------------------------------------------

    def grants(self, client: str | None = None) -> list[GrantRow]:
        sql = "SELECT client, cube_id, access, created_at, updated_at FROM mcp_grants"
        rows = (
            self.db.query(f"{sql} WHERE client = ? ORDER BY cube_id", (client,))
            if client is not None
            else self.db.query(f"{sql} ORDER BY client, cube_id")
        )
        return [GrantRow(str(r[0]), str(r[1]), str(r[2]), float(r[3]), float(r[4])) for r in rows]

    def set_grant(self, client: str, cube_id: str, access: str) -> None:
        if access not in ACCESS:
            raise ValueError(f"access must be one of {ACCESS}, got {access!r}")
        now = time.time()
        with self.db.write() as c:
            c.execute(
                "INSERT INTO mcp_grants (client, cube_id, access, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (client, cube_id) "
                "DO UPDATE SET access = excluded.access, updated_at = excluded.updated_at",
                (client, cube_id, access, now, now),
            )

    def revoke(self, client: str, cube_ids: tuple[str, ...] = ()) -> int:
        """Remove the client's grants on ``cube_ids`` (all of its grants when empty)."""
        with self.db.write() as c:
            if cube_ids:
                marks = ", ".join("?" * len(cube_ids))
                c.execute(
                    f"DELETE FROM mcp_grants WHERE client = ? AND cube_id IN ({marks})",
                    (client, *cube_ids),
                )
            else:
                c.execute("DELETE FROM mcp_grants WHERE client = ?", (client,))
            return int(c.changes())

    # --- the audit log ------------------------------------------------------------------------

    def begin(
        self,
        client: str,
        transport: str,
        tool: str,
        args: dict[str, Any],
        *,
        cube_id: str = "",
        item_id: str = "",
        outcome: str = "started",
        detail: str = "",
    ) -> int:
        """Record a call (``started``, or at once with its outcome) and return its row id."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
        now = time.time()
        with self.db.write() as c:
            c.execute(
                "INSERT INTO mcp_audit (at, client, transport, tool, cube_id, item_id, args, "
                "outcome, detail, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    now,
                    client,
                    transport,
                    tool,
                    cube_id,
                    item_id,
                    json.dumps(args, ensure_ascii=False, sort_keys=True),
                    outcome,
                    detail,
                    None if outcome == "started" else now,
                ),
            )
            return int(c.last_insert_rowid())

    def finish(
        self, entry_id: int, outcome: str, detail: str = "", *, cube_id: str = "", item_id: str = ""
    ) -> None:
        if outcome not in OUTCOMES or outcome == "started":
            raise ValueError(f"a call finishes ok, refused or error, not {outcome!r}")
        with self.db.write() as c:
            c.execute(
                "UPDATE mcp_audit SET outcome = ?, detail = ?, finished_at = ?, "
                "cube_id = CASE WHEN ? = '' THEN cube_id ELSE ? END, "
                "item_id = CASE WHEN ? = '' THEN item_id ELSE ? END WHERE id = ?",
                (outcome, detail, time.time(), cube_id, cube_id, item_id, item_id, entry_id),
            )

    def log(
        self, *, limit: int = 50, client: str | None = None, outcome: str | None = None
    ) -> list[AuditEntry]:
        """The newest entries first."""
        where, params = [], []
        if client is not None:
            where.append("client = ?")
            params.append(client)
        if outcome is not None:
            where.append("outcome = ?")
            params.append(outcome)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self.db.query(
            f"SELECT {_AUDIT_COLS} FROM mcp_audit{clause} ORDER BY id DESC LIMIT ?",
            (*params, int(limit)),
        )
        return [_entry(r) for r in rows]

    def clear(self, before: float | None = None) -> int:
        """Delete the entries older than ``before`` (all of them when None); returns how many."""
        with self.db.write() as c:
            if before is None:
                c.execute("DELETE FROM mcp_audit")
            else:
                c.execute("DELETE FROM mcp_audit WHERE at < ?", (before,))
            return int(c.changes())

    def count(self) -> int:
        return int(self.db.scalar("SELECT count(*) FROM mcp_audit"))
