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
- A damaged page found by any read stops writes (issue 15): ``write()`` then raises
  :class:`WritesStoppedError` and the profile records the damage (``damage_hooks``), so
  nothing more is written into a damaged database until the person acts. After each
  committed write the ``commit_hooks`` run (the profile's high-water mark).
- ``checkpoint_on_close=False`` leaves the WAL as it is when the connection closes (SQLite
  would otherwise fold it into the database and delete it): a profile opened only to be
  checked or refused keeps its files exactly as they were.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import apsw
import sqlite_vec

from memos_desktop.errors import (
    BusyError,
    CorruptDatabaseError,
    DiskFullError,
    ReadOnlyError,
    StoreError,
    WritesStoppedError,
    WrongKeyError,
)

log = logging.getLogger(__name__)

DB_FILENAME = "memos.db"
# Below this much free space, an I/O error or a failed open is reported as a full disk.
FULL_DISK_BYTES = 1024 * 1024


def free_bytes(path: Path | str) -> int | None:
    """Free bytes on the file system holding ``path`` (its nearest existing parent)."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def translate(exc: BaseException, path: Path | str = "") -> Exception:
    """Map an apsw exception to our hierarchy (what happened + what to do)."""
    where = f" ({path})" if path else ""
    if (
        path
        and isinstance(exc, apsw.IOError | apsw.CantOpenError | apsw.FullError)
        and (free := free_bytes(path)) is not None
        and free < FULL_DISK_BYTES
    ):
        return DiskFullError(
            f"the disk holding {Path(path).parent} is full ({free} bytes free): "
            f"the memory database cannot be opened or written{where}",
            hint="free some disk space and retry; nothing already saved was lost",
        )
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
        checkpoint_on_close: bool = True,
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
        # Why writes are stopped (a damaged page was found), or None.
        self.writes_stopped: str | None = None
        # Set by a process that must not write (a second terminal app): why.
        self.read_only: str | None = None
        self.commit_hooks: list[Callable[[], None]] = []
        self.damage_hooks: list[Callable[[str], None]] = []
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
        if not checkpoint_on_close:
            self.set_checkpoint_on_close(False)
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

    def set_checkpoint_on_close(self, on: bool) -> None:
        self.conn.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0 if on else 1)

    def stop_writes(self, reason: str, *, damage: bool = True) -> None:
        """Refuse every write from now on (``reason`` says why); for damage, tell the hooks
        once."""
        if self.writes_stopped is not None:
            return
        self.writes_stopped = reason
        self.set_checkpoint_on_close(False)
        for hook in self.damage_hooks if damage else ():
            try:
                hook(reason)
            except Exception:  # recording the damage must not hide the error being raised
                log.exception("could not record the damage of %s", self.path)

    def _fail(self, exc: BaseException) -> Exception:
        """The error to raise for ``exc``; a damaged page stops writes first."""
        if isinstance(exc, apsw.CorruptError | apsw.NotADBError):
            self.stop_writes(f"a damaged page was found ({exc})")
        return translate(exc, self.path)

    # --- queries ---------------------------------------------------------------------------

    def execute(self, sql: str, params: Any = None) -> apsw.Cursor:
        with self.lock:
            try:
                return self.conn.execute(sql, params)
            except apsw.Error as exc:
                raise self._fail(exc) from exc

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self.lock:
            try:
                return list(self.conn.execute(sql, params))
            except apsw.Error as exc:
                raise self._fail(exc) from exc

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
            if self.read_only is not None:
                raise ReadOnlyError(
                    f"nothing was changed: this window is read-only ({self.read_only})",
                    hint="make changes in the other memos-desktop window, or quit it and open "
                    "this one again",
                )
            if self.writes_stopped is not None:
                raise WritesStoppedError(
                    f"writes are stopped on {self.path}: {self.writes_stopped}; "
                    "nothing was written",
                    hint="`memos-desktop doctor` explains; `memos-desktop restore --backup "
                    "latest` brings back the newest backup (reading still works)",
                )
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
                raise self._fail(exc) from exc
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
                        raise self._fail(exc) from exc
                    raise
                try:
                    self.conn.execute("COMMIT")
                except apsw.Error as exc:
                    self.rollbacks += 1
                    with contextlib.suppress(apsw.Error):
                        self.conn.execute("ROLLBACK")
                    raise self._fail(exc) from exc
            finally:
                self.transaction_id = None
            for hook in self.commit_hooks:
                try:
                    hook()
                except Exception:  # the commit stands; a hook failing must not say otherwise
                    log.exception("after-commit hook failed on %s", self.path)

    @property
    def in_transaction(self) -> bool:
        return bool(self.conn.in_transaction)

    # --- maintenance -----------------------------------------------------------------------

    def integrity_check(self) -> list[str]:
        """``["ok"]`` or the problems found; a problem stops writes (see ``stop_writes``)."""
        result = [str(r[0]) for r in self.query("PRAGMA integrity_check")]
        if result != ["ok"]:
            self.stop_writes(f"the integrity check failed: {'; '.join(result[:3])}")
        return result

    def checkpoint(self) -> None:
        with self.lock:
            try:
                self.conn.pragma("wal_checkpoint", "TRUNCATE")
            except apsw.Error as exc:
                raise self._fail(exc) from exc

    def vacuum(self) -> None:
        with self.lock:
            try:
                self.conn.execute("VACUUM")
                self.conn.pragma("wal_checkpoint", "TRUNCATE")
            except apsw.Error as exc:
                raise self._fail(exc) from exc

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
                raise self._fail(exc) from exc

    def close(self) -> None:
        with self.lock, contextlib.suppress(apsw.Error):
            self.conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
