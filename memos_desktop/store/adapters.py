"""Parametric memory at rest: LoRA adapters (GGUF bytes), their evaluation and their lineage.

Design rules:
- The adapter bytes live only in the encrypted profile DB. To use one, load its bytes straight
  into the engine (``LlamaCppEngine.load_adapter_bytes`` reads them from memory); never write
  them to a plaintext file.
- At most one adapter is ``active`` per (user, base model). Activating one retires the previous
  active one in the same transaction; rolling back rejects the active one and re-activates its
  parent, so a bad adapter is always one step from undone.
- Status moves: training -> candidate -> active -> retired, or -> rejected.
- Every write is logged in the change log in its own transaction (register, status and metrics
  changes, each adapter an activation or a rollback touches, delete).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any

import apsw

from memos_desktop.errors import InvalidInputError, NotFoundError
from memos_desktop.store.changelog import changelog_for
from memos_desktop.store.db import Database
from memos_desktop.store.records import Adapter

STATUSES = ("training", "candidate", "active", "rejected", "retired")
_COLS = (
    "id, user_id, cube_id, name, base_model_sha256, format, size_bytes, sha256, metrics, "
    "status, parent_id, created_at, activated_at"
)


def _adapter(r: Any) -> Adapter:
    return Adapter(
        id=r[0],
        user_id=r[1],
        cube_id=r[2],
        name=r[3],
        base_model_sha256=r[4],
        format=r[5],
        size_bytes=int(r[6]),
        sha256=r[7],
        metrics=json.loads(r[8]),
        status=r[9],
        parent_id=r[10],
        created_at=float(r[11]),
        activated_at=r[12],
    )


def _same_owner(user_id: str | None) -> tuple[str, list[Any]]:
    return ("user_id IS NULL", []) if user_id is None else ("user_id = ?", [user_id])


class AdapterRepo:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.changes = changelog_for(db)

    def put(
        self,
        *,
        name: str,
        base_model_sha256: str,
        blob: bytes,
        user_id: str | None = None,
        cube_id: str | None = None,
        metrics: dict[str, Any] | None = None,
        status: str = "candidate",
        parent_id: str | None = None,
        format: str = "gguf-lora",
    ) -> Adapter:
        """Store a new adapter (never active on arrival: use :meth:`activate`)."""
        if status not in STATUSES or status == "active":
            raise InvalidInputError(
                f"a new adapter cannot start as {status!r}",
                hint="store it as a candidate, then activate it",
            )
        if not blob:
            raise InvalidInputError("an adapter needs its bytes")
        if parent_id is not None:
            self.get(parent_id)  # the lineage must point at something real
        aid = uuid.uuid4().hex
        with self.db.write() as c:
            c.execute(
                "INSERT INTO adapters (id, user_id, cube_id, name, base_model_sha256, format, "
                "blob, size_bytes, sha256, metrics, status, parent_id, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    aid,
                    user_id,
                    cube_id,
                    name,
                    base_model_sha256,
                    format,
                    blob,
                    len(blob),
                    hashlib.sha256(blob).hexdigest(),
                    json.dumps(metrics or {}, sort_keys=True),
                    status,
                    parent_id,
                    time.time(),
                ),
            )
            self.changes.log(c, "adapter", aid, "create", ("*",))
        return self.get(aid)

    def get(self, adapter_id: str) -> Adapter:
        r = self.db.query_one(f"SELECT {_COLS} FROM adapters WHERE id = ?", (adapter_id,))
        if r is None:
            raise NotFoundError(
                f"no adapter {adapter_id!r}", hint="`memos-desktop adapters` lists them"
            )
        return _adapter(r)

    def blob(self, adapter_id: str) -> bytes:
        """The adapter's GGUF bytes, checked against the sha256 recorded when it was stored."""
        r = self.db.query_one("SELECT blob, sha256 FROM adapters WHERE id = ?", (adapter_id,))
        if r is None:
            raise NotFoundError(f"no adapter {adapter_id!r}")
        data = bytes(r[0])
        if hashlib.sha256(data).hexdigest() != r[1]:
            raise InvalidInputError(
                f"adapter {adapter_id!r} is damaged (checksum mismatch)",
                hint="roll back to its parent and retrain it",
            )
        return data

    def list(
        self,
        *,
        user_id: str | None = None,
        status: str | None = None,
        base_model_sha256: str | None = None,
    ) -> list[Adapter]:
        conds: list[str] = []
        args: list[Any] = []
        for col, val in (
            ("user_id", user_id),
            ("status", status),
            ("base_model_sha256", base_model_sha256),
        ):
            if val is not None:
                conds.append(f"{col} = ?")
                args.append(val)
        where = f"WHERE {' AND '.join(conds)}" if conds else ""
        return [
            _adapter(r)
            for r in self.db.query(
                f"SELECT {_COLS} FROM adapters {where} ORDER BY created_at, id", args
            )
        ]

    def active(self, user_id: str | None, base_model_sha256: str) -> Adapter | None:
        owner, args = _same_owner(user_id)
        r = self.db.query_one(
            f"SELECT {_COLS} FROM adapters WHERE {owner} AND base_model_sha256 = ? "
            "AND status = 'active'",
            [*args, base_model_sha256],
        )
        return _adapter(r) if r else None

    def set_status(self, adapter_id: str, status: str) -> Adapter:
        """Change a status other than to ``active`` (that goes through :meth:`activate`)."""
        if status not in STATUSES or status == "active":
            raise InvalidInputError(
                f"cannot set status {status!r} directly",
                hint=f"use activate(), or one of {', '.join(STATUSES)}",
            )
        with self.db.write() as c:
            c.execute("UPDATE adapters SET status = ? WHERE id = ?", (status, adapter_id))
            if not c.changes():
                raise NotFoundError(f"no adapter {adapter_id!r}")
            self.changes.log(c, "adapter", adapter_id, "update", ("status",))
        return self.get(adapter_id)

    def set_metrics(self, adapter_id: str, metrics: dict[str, Any]) -> Adapter:
        with self.db.write() as c:
            c.execute(
                "UPDATE adapters SET metrics = ? WHERE id = ?",
                (json.dumps(metrics, sort_keys=True), adapter_id),
            )
            if not c.changes():
                raise NotFoundError(f"no adapter {adapter_id!r}")
            self.changes.log(c, "adapter", adapter_id, "update", ("metrics",))
        return self.get(adapter_id)

    def activate(self, adapter_id: str) -> Adapter:
        """Make ``adapter_id`` the active adapter of its user and base model; the one active
        before is retired, in the same transaction."""
        with self.db.write() as c:
            self._activate(c, self.get(adapter_id))
        return self.get(adapter_id)

    def _activate(self, c: apsw.Connection, a: Adapter) -> None:
        if a.status in ("training", "rejected"):
            raise InvalidInputError(
                f"adapter {a.name!r} is {a.status} and cannot be activated",
                hint="activate a candidate or a retired adapter",
            )
        owner, args = _same_owner(a.user_id)
        retired = [
            str(r[0])
            for r in c.execute(
                f"UPDATE adapters SET status = 'retired' WHERE {owner} AND base_model_sha256 = ? "
                "AND status = 'active' AND id != ? RETURNING id",
                [*args, a.base_model_sha256, a.id],
            )
        ]
        c.execute(
            "UPDATE adapters SET status = 'active', activated_at = ? WHERE id = ?",
            (time.time(), a.id),
        )
        self.changes.log_many(c, "adapter", retired, "update", ("status",))
        self.changes.log(c, "adapter", a.id, "update", ("status", "activated_at"))

    def reject(self, adapter_id: str, *, reactivate: str | None = None) -> None:
        """Mark an adapter rejected and, in the same transaction, make ``reactivate`` (if given)
        the active one. Which adapter to fall back to is policy (memory/adapters.py)."""
        with self.db.write() as c:
            c.execute("UPDATE adapters SET status = 'rejected' WHERE id = ?", (adapter_id,))
            if not c.changes():
                raise NotFoundError(f"no adapter {adapter_id!r}")
            self.changes.log(c, "adapter", adapter_id, "update", ("status",))
            if reactivate is not None:
                self._activate(c, self.get(reactivate))

    def find(self, adapter_id: str) -> Adapter | None:
        r = self.db.query_one(f"SELECT {_COLS} FROM adapters WHERE id = ?", (adapter_id,))
        return _adapter(r) if r else None

    def delete(self, adapter_id: str) -> bool:
        """Delete an adapter that is not active (children keep a dangling parent_id)."""
        a = self.get(adapter_id)
        if a.status == "active":
            raise InvalidInputError(
                "cannot delete the active adapter",
                hint="roll it back or activate another one first",
            )
        with self.db.write() as c:
            c.execute("DELETE FROM adapters WHERE id = ?", (adapter_id,))
            deleted = bool(c.changes())
            if deleted:
                self.changes.log(c, "adapter", adapter_id, "delete")
            return deleted
