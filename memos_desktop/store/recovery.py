"""The ways out of a refused or damaged profile (issue 15): put a backup back, or accept the
loss and go on with what is left.

Design rules:
- Both first say what they would do (a plan: the backup's date and counts, the state of the
  current database, what would be lost) and act only when ``confirm(plan)`` says yes.
- The current files are never deleted: they move (restore) or are copied (accept) into
  ``replaced-<time>/`` in the profile folder.
- The files are swapped under the exclusive profile lock, so never under a running app.
- A restored database is re-keyed to the profile's current key; the high-water mark is set
  to what it holds, and the damage marker is removed.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apsw

from memos_desktop.config import Paths, Settings
from memos_desktop.errors import (
    CorruptDatabaseError,
    DataLossError,
    InvalidInputError,
    MemosError,
    NotFoundError,
    StoreError,
)
from memos_desktop.store import backup as backups
from memos_desktop.store import guard as guards
from memos_desktop.store import keys
from memos_desktop.store.db import DB_FILENAME, Database, translate
from memos_desktop.store.profile import (
    DEFAULT_USER,
    KEYFILE,
    PassphraseProvider,
    Store,
    _db_opts,
    init_db,
    open_profile,
    unlock_key,
)


@dataclass(frozen=True)
class CurrentState:
    """The profile's database as it is now."""

    state: str  # readable, rolled back, damaged, missing, empty, unreadable
    detail: str
    seq: int | None = None
    mark_seq: int | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class RestorePlan:
    backup: backups.BackupInfo
    current: CurrentState
    other_profile: bool  # the backup was made by another profile (another machine)
    new_memories: int | None  # memories the current database has and the backup lacks
    changed_memories: int | None  # memories changed since the backup
    changes_after: int | None  # changes recorded after the backup
    kept_in: Path

    def to_json(self) -> dict[str, Any]:
        return {
            "backup": self.backup.to_json(),
            "current": self.current.to_json(),
            "other_profile": self.other_profile,
            "new_memories": self.new_memories,
            "changed_memories": self.changed_memories,
            "changes_after": self.changes_after,
            "kept_in": str(self.kept_in),
        }


@dataclass(frozen=True)
class AcceptPlan:
    current: CurrentState
    start_empty: bool  # no database is left: the profile goes on with an empty one
    kept_in: Path

    def to_json(self) -> dict[str, Any]:
        return {
            "current": self.current.to_json(),
            "start_empty": self.start_empty,
            "kept_in": str(self.kept_in),
        }


def _memo(provider: PassphraseProvider | None) -> PassphraseProvider | None:
    """Ask for the passphrase once, however often the key is needed."""
    if provider is None:
        return None
    got: dict[str, str] = {}

    def ask(prompt: str) -> str:
        if "v" not in got:
            got["v"] = provider(prompt)
        return got["v"]

    return ask


def _kept_dir(pdir: Path) -> Path:
    return pdir / f"replaced-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


def current_state(
    paths: Paths, settings: Settings, name: str, provider: PassphraseProvider | None
) -> tuple[CurrentState, dict[str, int] | None]:
    """What the profile's database holds now, opened read-only as it is (never refused), and
    its memories' versions by id (None when they cannot be read)."""
    try:
        store = open_profile(paths, name, settings, passphrase_provider=provider, inspect=True)
    except DataLossError as exc:
        state = "missing" if "missing" in exc.message else "empty"
        return CurrentState(state, exc.message), None
    except MemosError as exc:
        if not isinstance(exc, StoreError):
            raise
        return CurrentState("unreadable", exc.message), None
    try:
        h = store.health
        assert h is not None
        try:
            seq, counts, _ = backups.snapshot_stats(store.db.conn)
            ids = {str(i): int(v) for i, v in store.db.conn.execute(_IDS)}
        except apsw.Error as exc:
            damage = f"a damaged page was found ({exc})"
            return CurrentState("damaged", damage, h.db_seq, h.mark.seq, {}), None
        if h.damaged:
            return CurrentState("damaged", h.damaged, seq, h.mark.seq, counts), ids
        if h.missing_changes:
            detail = (
                f"holds changes up to #{h.db_seq}; the profile had recorded #{h.mark.seq} "
                f"({h.missing_changes} missing)"
            )
            return CurrentState("rolled back", detail, seq, h.mark.seq, counts), ids
        if h.mark.state == "invalid":
            detail = "its high-water mark does not verify"
            return CurrentState("unverified", detail, seq, None, counts), ids
        return CurrentState("readable", "whole", seq, h.mark.seq, counts), ids
    finally:
        store.close()


_IDS = "SELECT id, version FROM memory_items"


def resolve_backup(paths: Paths, name: str, source: str | Path) -> Path:
    if str(source) == "latest":
        found = backups.list_backups(backups.default_dir(paths, name))
        if not found:
            raise NotFoundError(
                f"no backup of profile '{name}' in {backups.default_dir(paths, name)}",
                hint="give the backup file: `memos-desktop restore --backup FILE`",
            )
        return found[-1].path
    return Path(source).expanduser()


def _swap_in(pdir: Path, new_db: Path | None, kept: Path, *, move: bool) -> None:
    """Keep the current database files in ``kept`` (moved, or copied), then put ``new_db``
    in their place. Runs under the exclusive lock."""
    db = pdir / DB_FILENAME
    present = [p for p in (db, db.with_name(DB_FILENAME + "-wal")) if p.exists()]
    if present:
        kept.mkdir(mode=0o700)
        for p in present:
            (os.replace if move else shutil.copy2)(p, kept / p.name)
    if move:
        db.with_name(DB_FILENAME + "-shm").unlink(missing_ok=True)
    if new_db is not None:
        os.replace(new_db, db)
    fd = os.open(pdir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def restore_backup(
    paths: Paths,
    settings: Settings,
    name: str,
    source: str | Path,
    provider: PassphraseProvider | None,
    backup_passphrase: backups.PassphraseSource | None,
    confirm: Callable[[RestorePlan], bool],
) -> RestorePlan | None:
    """Put a backup back into the profile (see module doc); None when not confirmed."""
    pdir = paths.profile_dir(name)
    provider = _memo(provider)
    db_key = unlock_key(paths, name, provider)
    profile_id = str(keys.read_keyfile(pdir / KEYFILE)["profile_id"])
    path = resolve_backup(paths, name, source)
    header, offset = backups.read_header(path)
    bk = backups.unseal(header, path, db_key, backup_passphrase)
    tmp = pdir / f".restore-{secrets.token_hex(6)}.db"
    try:
        backups.extract(path, header, offset, tmp)
        c = backups.keyed(tmp, bk)
        try:
            problems = [str(r[0]) for r in c.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise CorruptDatabaseError(
                    f"the database in {path} fails its check ({'; '.join(problems[:3])})",
                    hint="pick another backup; nothing was changed",
                )
            seq, _, _ = backups.snapshot_stats(c)
            theirs = {str(i): int(v) for i, v in c.execute(_IDS)}
        except apsw.Error as exc:
            raise translate(exc, path) from exc
        finally:
            c.close()
        cur, ours = current_state(paths, settings, name, provider)
        plan = RestorePlan(
            backup=backups.info(path),
            current=cur,
            other_profile=header["profile_id"] != profile_id,
            new_memories=None if ours is None else len(set(ours) - set(theirs)),
            changed_memories=None
            if ours is None
            else sum(1 for i, v in ours.items() if i in theirs and v != theirs[i]),
            changes_after=_after(cur, seq),
            kept_in=_kept_dir(pdir),
        )
        if not confirm(plan):
            return None
        c = backups.keyed(tmp, bk)
        try:
            c.pragma("journal_mode", "delete")
            c.pragma("hexrekey", db_key.hex())
            if plan.other_profile:
                c.execute("UPDATE meta SET value = ? WHERE key = 'profile_id'", (profile_id,))
        except apsw.Error as exc:
            raise translate(exc, tmp) from exc
        finally:
            c.close()
        lock = guards.ProfileLock(pdir, exclusive=True)
        try:
            _swap_in(pdir, tmp, plan.kept_in, move=True)
            guards.write_mark(pdir, guards.mark_key(db_key, profile_id), profile_id, seq, sync=True)
            guards.clear_damage(pdir)
        finally:
            lock.release()
        return plan
    finally:
        tmp.unlink(missing_ok=True)


def _after(cur: CurrentState, backup_seq: int) -> int | None:
    known = [s for s in (cur.seq, cur.mark_seq) if s is not None]
    return max(0, max(known) - backup_seq) if known else None


def accept_loss(
    paths: Paths,
    settings: Settings,
    name: str,
    provider: PassphraseProvider | None,
    confirm: Callable[[AcceptPlan], bool],
) -> AcceptPlan | None:
    """Go on with what the database holds now (or an empty one when it is gone): the mark is
    set to it and the damage marker removed, after ``confirm``. A database whose pages are
    damaged cannot be accepted (only a backup fixes it)."""
    pdir = paths.profile_dir(name)
    provider = _memo(provider)
    db_key = unlock_key(paths, name, provider)
    profile_id = str(keys.read_keyfile(pdir / KEYFILE)["profile_id"])
    cur, _ = current_state(paths, settings, name, provider)
    if cur.state == "readable":
        raise InvalidInputError(
            f"nothing to accept: the database of profile '{name}' is whole",
            hint="`memos-desktop doctor` checks it",
        )
    damaged = cur.state in ("damaged", "unreadable")
    if damaged and not _passes_check(paths, settings, name, provider):
        raise CorruptDatabaseError(
            f"the database of profile '{name}' has damaged pages ({cur.detail}); accepting "
            "cannot fix them",
            hint=backups.restore_hint(paths, name).split("; or ")[0],
        )
    plan = AcceptPlan(cur, cur.state in ("missing", "empty"), _kept_dir(pdir))
    if not confirm(plan):
        return None
    lock = guards.ProfileLock(pdir, exclusive=True)
    try:
        _swap_in(pdir, None, plan.kept_in, move=plan.start_empty)
        if plan.start_empty:
            db = Database(pdir / DB_FILENAME, db_key, create=True, **_db_opts(settings))
            with Store(paths, name, profile_id, init_db(db, profile_id, name), settings) as s:
                s.users.create(DEFAULT_USER)
                seq = guards.change_seq(s.db)
        else:
            seq = int(cur.seq or 0)
        guards.write_mark(pdir, guards.mark_key(db_key, profile_id), profile_id, seq, sync=True)
        guards.clear_damage(pdir)
    finally:
        lock.release()
    return plan


def _passes_check(
    paths: Paths, settings: Settings, name: str, provider: PassphraseProvider | None
) -> bool:
    try:
        store = open_profile(paths, name, settings, passphrase_provider=provider, inspect=True)
    except MemosError:
        return False
    try:
        return store.db.integrity_check() == ["ok"]
    except MemosError:
        return False
    finally:
        store.close()


def backup_store(
    store: Store,
    folder: Path | None = None,
    *,
    passphrase: str | None = None,
    keep: int | None = None,
) -> tuple[backups.BackupInfo, list[Path]]:
    """A backup of an open profile into ``folder`` (default: the profile's backup folder),
    then, with ``keep``, this profile's oldest backups there beyond ``keep`` removed."""
    if store.guard is None:
        raise StoreError("this store was not opened as a profile")
    folder = folder or backups.default_dir(store.paths, store.name)
    if folder.exists() and not folder.is_dir():
        raise InvalidInputError(f"{folder} is not a folder")
    made = backups.make_backup(
        store.db.conn,
        store.db.lock,
        db_key=store.guard.db_key,
        profile_id=store.guard.profile_id,
        profile_name=store.name,
        folder=folder,
        passphrase=passphrase,
    )
    gone = backups.prune(folder, store.guard.profile_id, keep) if keep else []
    return made, gone
