"""The encrypted SQLite connection: apsw-sqlite3mc + sqlite-vec + FTS5.

Design rules:
- Every page (WAL included) is encrypted by SQLite3 Multiple Ciphers (ChaCha20-Poly1305); the key
  is the profile's random 256-bit key, given as ``hexkey``. Temp storage is memory only, so no
  plaintext temp file is ever written; ``secure_delete`` zeroes freed pages.
- A wrong key surfaces as ``apsw.NotADBError`` at first read; we turn it into
  :class:`WrongKeyError` (or :class:`CorruptDatabaseError` when the key is known to be right).
- Writes use ``BEGIN IMMEDIATE`` so two processes writing at once queue on the busy timeout
  instead of failing with "database is locked" on a lock upgrade.
- ``write()`` nests: an inner write joins the outer transaction as a savepoint, so several
  repository calls make one unit of work (``Store.unit_of_work``) that commits whole or not at all.
- All SQL of the product lives in ``memos_desktop.store``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import sqlite_vec

from memos_desktop.errors import (
    BusyError,
    CorruptDatabaseError,
    DiskFullError,
    StoreError,
    WrongKeyError,
)

log = logging.getLogger(__name__)

DB_FILENAME = "memos.db"


def translate(exc: BaseException, path: Path | str = "") -> Exception:
    """Map an apsw exception to our hierarchy (what happened + what to do)."""
    where = f" ({path})" if path else ""
    if isinstance(exc, apsw.FullError):
        return DiskFullError(
            f"the disk is full; the last change was not saved{where}",
            hint="free some disk space and retry; nothing already saved was lost",
        )
    if isinstance(exc, apsw.BusyError | apsw.LockedError):
        return BusyError(
            f"the memory database is busy in another process{where}",
            hint="retry in a moment, or close the other memos-desktop instance",
        )
    if isinstance(exc, apsw.CorruptError | apsw.NotADBError):
        return CorruptDatabaseError(
            f"the memory database is damaged or was tampered with{where}",
            hint="keep the file as it is (do not delete it), restore a backup copy of the profile "
            "folder, and run `memos-desktop doctor` to check it",
        )
    if isinstance(exc, apsw.ReadOnlyError | apsw.CantOpenError | apsw.IOError):
        return StoreError(
            f"the memory database cannot be written or opened{where}: {exc}",
            hint="check the file's permissions and free disk space",
        )
    return StoreError(f"database error{where}: {exc}")


class Database:
    """One open, keyed connection. Not shared between threads without the lock."""

    def __init__(
        self,
        path: Path,
        key: bytes,
        *,
        cache_mib: int = 256,
        durability: str = "full",
        busy_timeout_ms: int = 15000,
        key_known_good: bool = False,
        create: bool = False,
    ) -> None:
        self.path = Path(path)
        self.lock = threading.RLock()
        # Write transactions (or savepoints) rolled back so far: caches that read uncommitted
        # rows inside a transaction (the resident vector index) check it to drop them.
        self.rollbacks = 0
        # Serial of the outer write transaction in progress (None outside one): the change log
        # keys its per-transaction clock reading on it.
        self.transaction_id: int | None = None
        self._transactions = 0
        flags = apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_NOMUTEX
        if create:
            flags |= apsw.SQLITE_OPEN_CREATE
            if not self.path.exists():
                # Owner-only from the start; SQLite gives the -wal and -shm files the same mode.
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        elif not self.path.exists():
            raise StoreError(
                f"no memory database at {self.path}", hint="run `memos-desktop init` first"
            )
        try:
            self.conn = apsw.Connection(str(self.path), flags=flags)
        except apsw.Error as exc:
            raise translate(exc, self.path) from exc
        self.conn.setbusytimeout(busy_timeout_ms)
        # sqlite3mc: the cipher must be chosen before the key activates it.
        self.conn.pragma("cipher", "chacha20")
        self.conn.pragma("hexkey", key.hex())
        try:
            self.conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
        except apsw.NotADBError as exc:
            self.conn.close()
            if key_known_good:
                raise CorruptDatabaseError(
                    f"the memory database {self.path} is damaged or was tampered with "
                    "(its key is right but its pages do not decrypt)",
                    hint="keep the file as it is (do not delete it) and restore a backup "
                    "copy of the profile folder",
                ) from exc
            raise WrongKeyError(
                f"the key does not open {self.path}",
                hint="check the passphrase or keyring entry; nothing was changed",
            ) from exc
        except apsw.Error as exc:
            self.conn.close()
            raise translate(exc, self.path) from exc
        self._configure(cache_mib, durability)

    def _configure(self, cache_mib: int, durability: str) -> None:
        c = self.conn
        try:
            mode = c.pragma("journal_mode", "wal")
            if str(mode).lower() != "wal":
                raise StoreError(f"could not switch {self.path} to WAL mode (got {mode})")
            c.pragma("synchronous", "FULL" if durability == "full" else "NORMAL")
            c.pragma("foreign_keys", 1)
            c.pragma("temp_store", "MEMORY")
            c.pragma("secure_delete", 1)
            c.pragma("cache_size", -cache_mib * 1024)
            c.enable_load_extension(True)
            c.load_extension(sqlite_vec.loadable_path())
            c.enable_load_extension(False)
        except apsw.Error as exc:
            self.conn.close()
            raise translate(exc, self.path) from exc

    # --- queries ---------------------------------------------------------------------------

    def execute(self, sql: str, params: Any = None) -> apsw.Cursor:
        with self.lock:
            try:
                return self.conn.execute(sql, params)
            except apsw.Error as exc:
                raise translate(exc, self.path) from exc

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self.lock:
            try:
                return list(self.conn.execute(sql, params))
            except apsw.Error as exc:
                raise translate(exc, self.path) from exc

    def query_one(self, sql: str, params: Any = None) -> tuple[Any, ...] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Any = None) -> Any:
        row = self.query_one(sql, params)
        return row[0] if row else None

    @contextlib.contextmanager
    def write(self) -> Iterator[apsw.Connection]:
        """A write transaction, taken with BEGIN IMMEDIATE (see module docstring)."""
        with self.lock:
            if self.conn.in_transaction:
                # Nested: join the outer transaction with a savepoint.
                try:
                    with self.conn:
                        yield self.conn
                except BaseException:
                    self.rollbacks += 1
                    raise
                return
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except apsw.Error as exc:
                raise translate(exc, self.path) from exc
            self._transactions += 1
            self.transaction_id = self._transactions
            try:
                try:
                    yield self.conn
                except BaseException as exc:
                    self.rollbacks += 1
                    with contextlib.suppress(apsw.Error):
                        self.conn.execute("ROLLBACK")
                    if isinstance(exc, apsw.Error):
                        raise translate(exc, self.path) from exc
                    raise
                try:
                    self.conn.execute("COMMIT")
                except apsw.Error as exc:
                    self.rollbacks += 1
                    with contextlib.suppress(apsw.Error):
                        self.conn.execute("ROLLBACK")
                    raise translate(exc, self.path) from exc
            finally:
                self.transaction_id = None

    @property
    def in_transaction(self) -> bool:
        return bool(self.conn.in_transaction)

    # --- maintenance -----------------------------------------------------------------------

    def integrity_check(self) -> list[str]:
        return [str(r[0]) for r in self.query("PRAGMA integrity_check")]

    def checkpoint(self) -> None:
        with self.lock:
            try:
                self.conn.pragma("wal_checkpoint", "TRUNCATE")
            except apsw.Error as exc:
                raise translate(exc, self.path) from exc

    def vacuum(self) -> None:
        with self.lock:
            try:
                self.conn.execute("VACUUM")
                self.conn.pragma("wal_checkpoint", "TRUNCATE")
            except apsw.Error as exc:
                raise translate(exc, self.path) from exc

    def rekey(self, new_key: bytes) -> None:
        """Re-encrypt every page with ``new_key``.

        sqlite3mc cannot rekey a WAL database, so the journal goes to DELETE for the rekey (one
        transaction, protected by the rollback journal) and back to WAL afterwards.
        """
        with self.lock:
            try:
                self.conn.pragma("wal_checkpoint", "TRUNCATE")
                self.conn.pragma("journal_mode", "delete")
                self.conn.pragma("hexrekey", new_key.hex())
                self.conn.pragma("journal_mode", "wal")
            except apsw.Error as exc:
                raise translate(exc, self.path) from exc

    def close(self) -> None:
        with self.lock, contextlib.suppress(apsw.Error):
            self.conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
