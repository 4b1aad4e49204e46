"""The sync change log: one row per change of a stored entity, in hybrid-logical-clock order.

Design rules:
- Field names only, never values: an exporter reads current values from the rows, so no memory
  or chat text is duplicated here, and a purge leaves a tombstone without text.
- A change row is written in the same transaction as the change it records (``log`` refuses to
  run outside ``Database.write()``), so the log never shows a change that did not commit and
  never misses one that did.
- One clock per profile, read from the database, not from the process: inside each write
  transaction the first stamp observes the largest stored HLC (``max(hlc)``, an index seek) and
  is strictly greater; later stamps of the same transaction count on from the previous one.
  ``BEGIN IMMEDIATE`` holds the write lock from the start of the transaction, so no other
  process can commit a stamp between the read and the commit: every process on a device (the
  TUI and the daemon on one profile) stamps strictly increasing HLCs, in commit order.
- Every entity a person's memory consists of is logged (see ``ENTITIES``); every row a write
  removes has its own tombstone, so a receiver never needs to know the cascade rules. Not
  logged, on purpose: usage counters (``use_count``, ``last_used_at``: device-local ranking
  signals), derived indexes (FTS5, vec0, tags), activation states (a per-model cache), jobs
  (a device-local queue) and ``meta``.
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from memos_desktop.errors import StoreError
from memos_desktop.store.db import Database
from memos_desktop.store.hlc import HybridClock, Timestamp

# entity -> the ops it is logged with. "purge" and "delete" are tombstones (no fields).
ENTITIES: dict[str, tuple[str, ...]] = {
    "user": ("create",),
    "cube": ("create", "update", "delete"),
    "memory": ("create", "update", "purge"),
    "memory_version": ("create", "purge"),
    "conversation": ("create", "update", "delete"),
    "message": ("create", "delete"),
    "adapter": ("create", "update", "delete"),
}


class ChangeLog:
    """The change log of one open database (get it with :func:`changelog_for`)."""

    def __init__(self, db: Database, wall: Callable[[], float] = time.time) -> None:
        self.db = db
        # The wall clock (seconds); a test may set it back to play a wrong clock.
        self.wall = wall
        self._device_id: str | None = None
        self._clock: HybridClock | None = None
        self._txn: int | None = None  # the transaction the clock's last stamp belongs to

    @property
    def device_id(self) -> str:
        if self._device_id is None:
            dev = self.db.scalar("SELECT value FROM meta WHERE key = 'device_id'")
            if not dev:
                raise StoreError(
                    f"the database {self.db.path} has no device id, so changes cannot be logged",
                    hint="open it as a profile (`memos-desktop init` creates one)",
                )
            self._device_id = str(dev)
        return self._device_id

    def stamp(self, c: Any) -> Timestamp:
        """The next HLC, strictly greater than every stamp stored or issued in this
        transaction. ``c``: the connection of the write transaction in progress."""
        txn = self.db.transaction_id
        if txn is None:
            raise StoreError(
                "a change was logged outside a write transaction (a bug: log inside "
                "Database.write(), in the transaction that makes the change)"
            )
        if self._clock is None:
            self._clock = HybridClock(self.device_id, wall=lambda: self.wall())
        if self._txn != txn:
            # First stamp of this transaction: observe what every process committed so far.
            top = c.execute("SELECT max(hlc) FROM changes").fetchall()[0][0]
            self._clock.last = Timestamp.parse(top) if top else Timestamp(0, 0, self.device_id)
            self._txn = txn
        return self._clock.now()

    def log(
        self, c: Any, entity: str, entity_id: str, op: str, fields: Iterable[str] = ()
    ) -> Timestamp:
        """Append one change (field names only; values are read from the row). Returns its
        stamp."""
        return self.log_rows(c, [(entity, entity_id, op, fields)])[0]

    def log_many(
        self, c: Any, entity: str, entity_ids: Iterable[str], op: str, fields: Iterable[str] = ()
    ) -> list[Timestamp]:
        names = tuple(fields)
        return self.log_rows(c, [(entity, i, op, names) for i in entity_ids])

    def log_rows(
        self, c: Any, rows: Sequence[tuple[str, str, str, Iterable[str]]]
    ) -> list[Timestamp]:
        """Append ``(entity, entity_id, op, fields)`` changes in this order, in one statement.
        Returns their stamps (strictly increasing)."""
        for entity, _, op, _ in rows:
            if op not in ENTITIES.get(entity, ()):
                raise StoreError(f"unknown change {entity}/{op} (a bug: add it to ENTITIES)")
        stamps = [self.stamp(c) for _ in rows]
        now = time.time()
        c.executemany(
            "INSERT INTO changes (hlc, device_id, entity, entity_id, op, fields, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (str(ts), ts.device_id, entity, entity_id, op, json.dumps(sorted(set(f))), now)
                for ts, (entity, entity_id, op, f) in zip(stamps, rows, strict=True)
            ],
        )
        return stamps


_logs: weakref.WeakKeyDictionary[Database, ChangeLog] = weakref.WeakKeyDictionary()
_logs_lock = threading.Lock()


def changelog_for(db: Database) -> ChangeLog:
    """The one :class:`ChangeLog` of ``db`` (every repository on the same connection shares
    it, so a repository needs no clock of its own)."""
    with _logs_lock:
        log = _logs.get(db)
        if log is None:
            log = _logs[db] = ChangeLog(db)
        return log
