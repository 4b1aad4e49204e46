"""What a profile knows about its own data, kept outside the database (issue 15: never lose,
never start over silently).

Files beside key.json (none holds a secret or a memory):

    memos.mark     the high-water mark: the highest change-log sequence number (``changes``
                   rowid) this profile committed, in two fixed 128-byte slots written in turn
                   (A/B), each MACed with a key derived from the DB key
    memos.damaged  written when a read finds a damaged page; while it is there writes stay
                   stopped (``restore`` removes it)
    .lock          flock: shared while a process has the profile open, exclusive while a
                   backup is put back, so a restore never swaps files under a running app

Design rules:
- The mark is written after a commit, never before, so it can only lag the database (a
  crash between the two leaves it lower: never a false alarm). A slot is written in place
  without fsync; a torn slot fails its MAC and the other slot, one generation older, is
  used. The generation, not the sequence number, picks the slot, so a restore or an accepted
  loss can set the mark lower on purpose.
- A database holding less than the mark (its WAL lost or damaged, an older copy put back) is
  refused; so is a missing or empty database file when key.json says the profile exists.
  Nothing is changed when a profile is refused.
- What it cannot see: a whole profile folder (key.json and memos.mark too) put back from an
  older copy, a deleted memos.mark together with a rollback, and writes that leave no row in
  ``changes`` (chat messages, jobs). See docs/DESIGN-NOTES.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memos_desktop.errors import BusyError, DataLossError
from memos_desktop.store.db import Database

log = logging.getLogger(__name__)

MARK_FILE = "memos.mark"
DAMAGED_FILE = "memos.damaged"
LOCK_FILE = ".lock"

_MAGIC = b"MEMOSHWM"
_VERSION = 1
_SLOT = 128
_BODY = struct.Struct(">8sIQQd16s")  # magic, version, generation, seq, written_at, profile id
_MAC_AT = _SLOT - 32


def mark_key(db_key: bytes, profile_id: str) -> bytes:
    """The MAC key of the mark: derived from the DB key (HMAC-SHA256 as a KDF), never stored."""
    return hmac.new(
        db_key, b"memos-desktop high-water mark v1|" + profile_id.encode(), hashlib.sha256
    ).digest()


@dataclass(frozen=True)
class Mark:
    generation: int
    seq: int
    written_at: float
    key_index: int  # which of the candidate keys verified it (0: the current key)


@dataclass(frozen=True)
class MarkState:
    state: str  # "ok", "missing" or "invalid"
    mark: Mark | None = None

    @property
    def seq(self) -> int | None:
        return self.mark.seq if self.mark else None


def _pid16(profile_id: str) -> bytes:
    return bytes.fromhex(profile_id)[:16].ljust(16, b"\0") if profile_id else b"\0" * 16


def _pack(key: bytes, profile_id: str, generation: int, seq: int) -> bytes:
    body = _BODY.pack(_MAGIC, _VERSION, generation, seq, time.time(), _pid16(profile_id))
    body = body.ljust(_MAC_AT, b"\0")
    return body + hmac.new(key, body, hashlib.sha256).digest()


def _unpack(slot: bytes, keys: list[bytes], profile_id: str) -> Mark | None:
    if len(slot) != _SLOT:
        return None
    body, mac = slot[:_MAC_AT], slot[_MAC_AT:]
    for i, key in enumerate(keys):
        if hmac.compare_digest(hmac.new(key, body, hashlib.sha256).digest(), mac):
            magic, version, gen, seq, at, pid = _BODY.unpack_from(body)
            if magic != _MAGIC or version != _VERSION or pid != _pid16(profile_id):
                return None
            return Mark(gen, seq, at, i)
    return None


def _best(raw: bytes, keys: list[bytes], profile_id: str) -> Mark | None:
    marks = [_unpack(raw[i * _SLOT : (i + 1) * _SLOT], keys, profile_id) for i in (0, 1)]
    valid = [m for m in marks if m is not None]
    # The current key's newest slot wins; an older key's slots count only when no slot is
    # under the current key (a rotation interrupted before the mark was rewritten).
    return max(valid, key=lambda m: (-m.key_index, m.generation)) if valid else None


def read_mark(pdir: Path, keys: list[bytes], profile_id: str) -> MarkState:
    """The newest slot that verifies under one of ``keys`` (mark keys, current first)."""
    path = pdir / MARK_FILE
    try:
        raw = path.read_bytes()[: 2 * _SLOT]
    except FileNotFoundError:
        return MarkState("missing")
    except OSError as exc:
        log.warning("cannot read %s: %s", path, exc)
        return MarkState("invalid")
    best = _best(raw, keys, profile_id)
    return MarkState("ok", best) if best else MarkState("invalid")


def write_mark(pdir: Path, key: bytes, profile_id: str, seq: int, *, sync: bool = False) -> None:
    """Record ``seq`` in the slot after the newest one (under an flock: processes take turns).
    ``sync`` fsyncs it (creation, restore, accepted loss); after a commit it is not needed."""
    path = pdir / MARK_FILE
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        raw = os.pread(fd, 2 * _SLOT, 0)
        best = _best(raw.ljust(2 * _SLOT, b"\0"), [key], profile_id)
        gen = best.generation + 1 if best else 0
        if len(raw) < 2 * _SLOT:
            os.pwrite(fd, b"\0" * (2 * _SLOT - len(raw)), len(raw))
        os.pwrite(fd, _pack(key, profile_id, gen, seq), (gen % 2) * _SLOT)
        if sync or created:
            os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        _fsync_dir(pdir)


def _fsync_dir(d: Path) -> None:
    dfd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def change_seq(db: Database) -> int:
    """The highest change-log sequence number in the database (0 before the log exists).
    Relies only on ``changes`` having an integer rowid."""
    if not db.scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'changes'"):
        return 0
    return int(db.scalar("SELECT max(rowid) FROM changes") or 0)


@dataclass(frozen=True)
class Health:
    """What opening found: the database's last change, the mark, recorded damage."""

    db_seq: int | None  # None: the database could not be read
    mark: MarkState
    damaged: str | None = None
    read_error: str | None = None

    @property
    def missing_changes(self) -> int:
        if self.db_seq is None or self.mark.seq is None:
            return 0
        return max(0, self.mark.seq - self.db_seq)


# --- the damage marker ------------------------------------------------------------------------


def read_damage(pdir: Path) -> dict[str, Any] | None:
    path = pdir / DAMAGED_FILE
    try:
        data = json.loads(path.read_bytes()[:65536].decode("utf-8", "replace"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    data.setdefault("detail", "a damaged page was found")
    return data


def write_damage(pdir: Path, detail: str) -> None:
    if (pdir / DAMAGED_FILE).exists():
        return
    tmp = pdir / (DAMAGED_FILE + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps({"found_at": time.time(), "detail": detail[:500]}).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, pdir / DAMAGED_FILE)
    log.error("damaged page in %s: writes stopped (%s)", pdir, detail)


def clear_damage(pdir: Path) -> None:
    (pdir / DAMAGED_FILE).unlink(missing_ok=True)


# --- the profile lock --------------------------------------------------------------------------


class ProfileLock:
    """An flock on ``.lock``: shared while open, exclusive to swap the database files."""

    def __init__(self, pdir: Path, *, exclusive: bool = False) -> None:
        self.fd: int | None = os.open(pdir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            raise BusyError(
                "the profile is open in another memos-desktop process"
                if exclusive
                else "a backup is being put back into this profile",
                hint="close the other memos-desktop (app, chat, daemon) and retry"
                if exclusive
                else "retry in a moment",
            ) from None

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


# --- checks at open, and the guard of an open profile ------------------------------------------


def check_db_file(db_path: Path, name: str, recorded: int | None, hint: str) -> None:
    """A profile whose key file exists must have a non-empty database: refuse otherwise,
    touching nothing (SQLite would create a fresh empty database in its place)."""
    had = f"; this profile had recorded {recorded} changes" if recorded else ""
    if not db_path.exists():
        raise DataLossError(
            f"the memory database of profile '{name}' is missing ({db_path}){had}; "
            "nothing was changed",
            hint=hint,
        )
    if db_path.stat().st_size == 0:
        raise DataLossError(
            f"the memory database of profile '{name}' is empty (0 bytes: {db_path}){had}; "
            "it was not replaced and nothing was changed",
            hint=hint,
        )


def rolled_back_error(name: str, db_seq: int, mark_seq: int, hint: str) -> DataLossError:
    return DataLossError(
        f"the memory database of profile '{name}' holds changes up to #{db_seq}, but this "
        f"profile had recorded #{mark_seq}: {mark_seq - db_seq} acknowledged changes are "
        "missing (its -wal file was lost or damaged, or an older copy of memos.db was put "
        "back); nothing was changed",
        hint=hint,
    )


class Guard:
    """Keeps the high-water mark current after each commit and records damage found by reads."""

    def __init__(self, pdir: Path, db_key: bytes, profile_id: str) -> None:
        self.pdir = pdir
        self.profile_id = profile_id
        self.key = mark_key(db_key, profile_id)
        self._last: int | None = None
        self.db_key = db_key

    def attach(self, db: Database, seq: int | None = None) -> None:
        """Follow ``db``'s commits; ``seq``: what the mark already says (no write needed)."""
        self._last = seq
        db.commit_hooks.append(lambda: self.after_commit(db))
        db.damage_hooks.append(lambda detail: write_damage(self.pdir, detail))

    def after_commit(self, db: Database) -> None:
        seq = change_seq(db)
        if seq != self._last:
            write_mark(self.pdir, self.key, self.profile_id, seq)
            self._last = seq

    def reset(self, seq: int) -> None:
        """Set the mark to ``seq`` on purpose (create, restore, an accepted loss)."""
        write_mark(self.pdir, self.key, self.profile_id, seq, sync=True)
        self._last = seq

    def rekey(self, new_db_key: bytes, seq: int) -> None:
        self.key = mark_key(new_db_key, self.profile_id)
        self.db_key = new_db_key
        self.reset(seq)
