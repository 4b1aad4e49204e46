"""Profiles: one directory and one encrypted database each, and the :class:`Store` that opens it.

Layout of a profile directory (mode 0700)::

    profiles/<name>/memos.db      the encrypted database (+ -wal, -shm while open)
    profiles/<name>/key.json      how to get the key: keyring reference or passphrase-wrapped key
    profiles/<name>/key.json.next only during a key rotation (see rotate_key)
    profiles/<name>/memos.mark    the high-water mark of the change log (store/guard.py)
    profiles/<name>/memos.damaged only after a read found a damaged page (writes stopped)

Design rules:
- Nothing on disk changes until the key is proven right; a wrong passphrase or key leaves
  every file exactly as it was.
- A profile that exists (key.json) is never started over: a missing, empty or rolled-back
  database is refused with the way out (store/guard.py), and nothing is changed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import shutil
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memos_desktop.config import PASSPHRASE_ENV, Paths, Settings, env_passphrase, forbid_core_dumps
from memos_desktop.errors import (
    AuthError,
    DataLossError,
    InvalidInputError,
    KeyFileError,
    MemosError,
    PassphraseRequiredError,
    ProfileExistsError,
    ProfileNotFoundError,
    WrongKeyError,
)
from memos_desktop.store import guard as guards
from memos_desktop.store import keys
from memos_desktop.store.activation import ActivationRepo
from memos_desktop.store.adapters import AdapterRepo
from memos_desktop.store.changelog import changelog_for
from memos_desktop.store.conversations import ConversationRepo
from memos_desktop.store.cubes import CubeRepo, UserRepo
from memos_desktop.store.db import DB_FILENAME, Database
from memos_desktop.store.jobs import JobRepo
from memos_desktop.store.memories import MemoryRepo
from memos_desktop.store.migrations import migrate
from memos_desktop.store.search import Searcher

log = logging.getLogger(__name__)

PassphraseProvider = Callable[[str], str]  # prompt text -> passphrase
KEYFILE = "key.json"
NEXT_KEYFILE = "key.json.next"
DEFAULT_USER = "me"
DEFAULT_CUBE = "personal"


def key_check(key: bytes) -> str:
    """A check value that tells a right key from a damaged DB without revealing the key."""
    return hmac.new(key, b"memos-desktop key check v1", hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class ProfileInfo:
    name: str
    id: str
    key_method: str
    path: Path


def list_profiles(paths: Paths) -> list[ProfileInfo]:
    out = []
    if paths.profiles_dir.exists():
        for d in sorted(paths.profiles_dir.iterdir()):
            kf = d / KEYFILE
            if kf.exists():
                try:
                    rec = keys.read_keyfile(kf)
                except MemosError:
                    out.append(ProfileInfo(d.name, "", "damaged key file", d))
                    continue
                out.append(ProfileInfo(d.name, str(rec["profile_id"]), str(rec["method"]), d))
    return out


def _passphrase(provider: PassphraseProvider | None, prompt: str) -> str:
    env = env_passphrase()
    if env:
        return env
    if provider is None:
        raise PassphraseRequiredError(
            "this profile is protected by a passphrase",
            hint=f"run interactively to be asked for it, or set {PASSPHRASE_ENV}",
        )
    return provider(prompt)


def _key_record(
    method: str, profile_id: str, key: bytes, passphrase: str | None, account: str | None = None
) -> dict[str, Any]:
    if method == "keyring":
        keys.keyring_store(profile_id, key, account)
        rec: dict[str, Any] = {
            "version": keys.KEYFILE_VERSION,
            "profile_id": profile_id,
            "method": "keyring",
            "service": keys.KEYRING_SERVICE,
            "account": account or keys.keyring_account(profile_id),
        }
    else:
        assert passphrase is not None
        rec = keys.wrap_key(key, passphrase, profile_id)
    rec["key_check"] = key_check(key)
    return rec


def _unlock(rec: dict[str, Any], provider: PassphraseProvider | None, name: str) -> bytes:
    forbid_core_dumps()  # before any secret is in memory
    if rec["method"] == "keyring":
        return keys.keyring_load(str(rec["profile_id"]), str(rec.get("account") or ""))
    return keys.unwrap_key(rec, _passphrase(provider, f"Passphrase for profile '{name}'"))


def unlock_key(paths: Paths, name: str, provider: PassphraseProvider | None) -> bytes:
    """The profile's DB key, checked against key.json (the database is not opened)."""
    kf = paths.profile_dir(name) / KEYFILE
    if not kf.exists():
        raise ProfileNotFoundError(f"no profile {name!r} (looked in {kf.parent})")
    rec = keys.read_keyfile(kf)
    key = _unlock(rec, provider, name)
    _check_key(rec, key)
    return key


def _check_key(rec: dict[str, Any], key: bytes) -> None:
    if not rec.get("key_check") or hmac.compare_digest(key_check(key), str(rec["key_check"])):
        return
    if rec["method"] == "keyring":
        raise WrongKeyError(
            "the key from the OS keyring does not belong to this profile (it does not match "
            "the key check in key.json)",
            hint="the keyring entry or key.json was replaced; put back the one that changed",
        )
    # The passphrase unsealed the key (its tag verified), so the passphrase is right and the
    # key check itself is what changed.
    raise KeyFileError(
        "the key file's key check does not match the key the passphrase unlocked: key.json "
        "was changed or damaged (the passphrase is right)",
        hint="put back key.json from a copy of the profile folder; nothing was changed",
    )


def create_profile(
    paths: Paths,
    name: str,
    settings: Settings,
    *,
    method: str = "auto",
    passphrase: str | None = None,
    embed_model: str = "",
    embed_dim: int = 384,
) -> Store:
    """Create a profile: a random key, its keyring entry or wrapped copy, and a fresh DB."""
    if not name or "/" in name or name.startswith("."):
        raise InvalidInputError(f"invalid profile name {name!r}")
    pdir = paths.profile_dir(name)
    if (pdir / KEYFILE).exists():
        raise ProfileExistsError(
            f"profile {name!r} already exists at {pdir}",
            hint="use it as it is, or pick another name with --profile",
        )
    if method == "auto":
        method = "keyring" if keys.keyring_status().usable and not passphrase else "passphrase"
    if method == "passphrase" and not passphrase:
        passphrase = env_passphrase()
        if not passphrase:
            raise PassphraseRequiredError(
                "a passphrase is needed: no usable OS keyring here",
                hint=f"give one when asked, or set {PASSPHRASE_ENV}",
            )
    paths.ensure()
    pdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    profile_id = uuid.uuid4().hex
    key = keys.new_db_key()
    db_path = pdir / DB_FILENAME
    for leftover in (
        db_path,
        db_path.with_name(DB_FILENAME + "-wal"),
        db_path.with_name(DB_FILENAME + "-shm"),
    ):
        leftover.unlink(missing_ok=True)
    forbid_core_dumps()
    try:
        rec = _key_record(method, profile_id, key, passphrase)
        db = Database(db_path, key, create=True, key_known_good=True, **_db_opts(settings))
        guard = guards.Guard(pdir, key, profile_id)
        guard.attach(db)
        store = Store(paths, name, profile_id, init_db(db, profile_id, name), settings)
        store.guard = guard
        user = store.users.create(DEFAULT_USER)
        if embed_model:
            store.cubes.create(user, DEFAULT_CUBE, embed_model=embed_model, embed_dim=embed_dim)
        guard.reset(guards.change_seq(db))
        # The key file is written last: a profile without it does not exist.
        keys.write_json_atomic(pdir / KEYFILE, rec)
        store.hold(guards.ProfileLock(pdir))
        return store
    except BaseException:
        shutil.rmtree(pdir, ignore_errors=True)
        raise


def init_db(db: Database, profile_id: str, name: str) -> Database:
    """The schema and the profile's meta rows in a new, empty database."""
    migrate(db)
    with db.write() as c:
        c.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [
                ("profile_id", profile_id),
                ("profile_name", name),
                ("device_id", uuid.uuid4().hex[:16]),
                ("created_at", str(time.time())),
            ],
        )
    return db


def _db_opts(settings: Settings) -> dict[str, Any]:
    s = settings.store
    return {
        "cache_mib": s.cache_mib,
        "durability": s.durability,
        "busy_timeout_ms": s.busy_timeout_ms,
    }


def open_profile(
    paths: Paths,
    name: str,
    settings: Settings,
    *,
    passphrase_provider: PassphraseProvider | None = None,
    migrate_schema: bool = True,
    resident_index: bool = False,
    inspect: bool = False,
) -> Store:
    """Unlock and open a profile, refusing a missing, empty or rolled-back database
    (DataLossError, nothing changed). ``inspect``: open it read-only as it is, refused or not,
    for doctor and restore (``store.health`` says what was found; no migration, no write)."""
    pdir = paths.profile_dir(name)
    kf = pdir / KEYFILE
    if not kf.exists():
        raise ProfileNotFoundError(
            f"no profile {name!r} (looked in {pdir})",
            hint="create it with `memos-desktop init`"
            + (
                f" or pick one of: {', '.join(p.name for p in list_profiles(paths))}"
                if list_profiles(paths)
                else ""
            ),
        )
    rec = keys.read_keyfile(kf)
    key = _unlock(rec, passphrase_provider, name)
    _check_key(rec, key)
    lock = guards.ProfileLock(pdir)
    try:
        store = _open_checked(
            paths, name, settings, rec, key, passphrase_provider, migrate_schema, inspect
        )
    except BaseException:
        lock.release()
        raise
    store.hold(lock)
    if resident_index:
        store.searcher = Searcher(store.db, store.memories, resident=True)
    return store


def restore_hint(paths: Paths, name: str) -> str:
    from memos_desktop.store.backup import restore_hint as hint

    return hint(paths, name)


def _open_checked(
    paths: Paths,
    name: str,
    settings: Settings,
    rec: dict[str, Any],
    key: bytes,
    provider: PassphraseProvider | None,
    migrate_schema: bool,
    inspect: bool,
) -> Store:
    pdir = paths.profile_dir(name)
    profile_id = str(rec["profile_id"])
    db_path = pdir / DB_FILENAME
    mark_keys = [guards.mark_key(key, profile_id)]
    if not db_path.exists() or db_path.stat().st_size == 0:
        recorded = guards.read_mark(pdir, mark_keys, profile_id).seq
        guards.check_db_file(db_path, name, recorded, restore_hint(paths, name))
    opts = dict(_db_opts(settings), key_known_good=True, checkpoint_on_close=False)
    rotated = False
    try:
        db = Database(db_path, key, **opts)
    except Exception:
        # An interrupted key rotation leaves the DB under the next key: finish it.
        nxt = pdir / NEXT_KEYFILE
        if not nxt.exists():
            raise
        next_rec = keys.read_keyfile(nxt)
        next_key = _unlock(next_rec, provider, name)
        db = Database(db_path, next_key, **opts)
        _finish_rotation(pdir, next_rec)
        mark_keys.insert(0, guards.mark_key(next_key, profile_id))
        key, rotated = next_key, True
    try:
        health = _health(db, pdir, mark_keys, profile_id, inspect)
        if not inspect:
            _refuse_lost_data(paths, name, health)
    except BaseException:
        db.close()
        raise
    guard = guards.Guard(pdir, key, profile_id)
    if inspect:
        db.stop_writes("the profile was opened read-only, to be checked", damage=False)
    else:
        if not rotated:
            (pdir / NEXT_KEYFILE).unlink(missing_ok=True)
        guard.attach(db, health.db_seq)
        if health.damaged is None:
            db.set_checkpoint_on_close(True)
            if migrate_schema:
                migrate(db)
            mark = health.mark.mark
            if mark is None or mark.key_index != 0 or health.db_seq != mark.seq:
                guard.reset(guards.change_seq(db))
    profile_id = str(db.scalar("SELECT value FROM meta WHERE key = 'profile_id'") or profile_id)
    store = Store(paths, name, profile_id, db, settings)
    store.guard = guard
    store.health = health
    return store


def _health(
    db: Database, pdir: Path, mark_keys: list[bytes], profile_id: str, inspect: bool
) -> guards.Health:
    damage = guards.read_damage(pdir)
    if damage is not None:
        db.stop_writes(str(damage["detail"]), damage=False)
    # The mark first, the database second: a mark is written only after its commit, so any
    # value read here is already visible to the read below (no false alarm from a writer
    # in another process).
    mark = guards.read_mark(pdir, mark_keys, profile_id)
    try:
        db_seq: int | None = guards.change_seq(db)
        err = None
    except MemosError as exc:
        if not inspect:
            raise
        db_seq, err = None, exc.message
    damaged = db.writes_stopped if damage is not None or err else None
    return guards.Health(db_seq, mark, damaged, err)


def _refuse_lost_data(paths: Paths, name: str, health: guards.Health) -> None:
    mark = health.mark
    if mark.state == "invalid":
        raise DataLossError(
            f"the high-water mark of profile '{name}' ({guards.MARK_FILE}) does not verify: "
            "it was changed or damaged, or key.json was replaced, so whether the database "
            "lost changes cannot be checked; nothing was changed",
            hint="put back the files that were replaced; `memos-desktop doctor` shows what "
            "the database holds; `memos-desktop restore --accept-loss` accepts it as it is",
        )
    if mark.seq is not None and health.db_seq is not None and health.db_seq < mark.seq:
        raise guards.rolled_back_error(name, health.db_seq, mark.seq, restore_hint(paths, name))


def _finish_rotation(pdir: Path, next_rec: dict[str, Any]) -> None:
    if next_rec["method"] == "keyring":
        next_account = str(next_rec["account"])
        key = keys.keyring_load(str(next_rec["profile_id"]), next_account)
        keys.keyring_store(str(next_rec["profile_id"]), key)
        next_rec = dict(next_rec, account=keys.keyring_account(str(next_rec["profile_id"])))
        keys.write_json_atomic(pdir / KEYFILE, next_rec)
        (pdir / NEXT_KEYFILE).unlink(missing_ok=True)
        keys.keyring_delete(next_account)
        return
    keys.write_json_atomic(pdir / KEYFILE, next_rec)
    (pdir / NEXT_KEYFILE).unlink(missing_ok=True)


def change_passphrase(paths: Paths, name: str, old_passphrase: str, new_passphrase: str) -> None:
    """Re-wrap the profile key under a new passphrase. The database is not touched."""
    kf = paths.profile_dir(name) / KEYFILE
    if not kf.exists():
        raise ProfileNotFoundError(f"no profile {name!r}")
    rec = keys.read_keyfile(kf)
    if rec["method"] != "passphrase":
        raise AuthError(
            "this profile's key is kept in the OS keyring, not under a passphrase",
            hint="nothing to change; `memos-desktop rotate-key` replaces the key itself",
        )
    forbid_core_dumps()
    key = keys.unwrap_key(rec, old_passphrase)
    new = _key_record("passphrase", str(rec["profile_id"]), key, new_passphrase)
    keys.write_json_atomic(kf, new)


class Store:
    """An open profile: the database and its repositories."""

    def __init__(
        self,
        paths: Paths,
        name: str,
        profile_id: str,
        db: Database,
        settings: Settings,
        *,
        resident_index: bool = False,
    ) -> None:
        self.paths = paths
        self.name = name
        self.profile_id = profile_id
        self.db = db
        self.settings = settings
        self.device_id = str(db.scalar("SELECT value FROM meta WHERE key = 'device_id'"))
        # One change log (and clock) per open database, shared by every repository; it reads
        # the stored max HLC inside each write transaction, so other processes' stamps count.
        self.changelog = changelog_for(db)
        self.users = UserRepo(db)
        self.cubes = CubeRepo(db)
        self.memories = MemoryRepo(db)
        self.searcher = Searcher(db, self.memories, resident=resident_index)
        self.conversations = ConversationRepo(db)
        self.jobs = JobRepo(db)
        self.activations = ActivationRepo(db)
        self.adapters = AdapterRepo(db)
        # Set by open_profile / create_profile: the high-water mark's keeper, what opening
        # found, and the shared profile lock held while open.
        self.guard: guards.Guard | None = None
        self.health: guards.Health | None = None
        self._lock: guards.ProfileLock | None = None

    def hold(self, lock: guards.ProfileLock) -> None:
        self._lock = lock

    def unit_of_work(self) -> AbstractContextManager[Any]:
        """One transaction for several repository calls: each call's own write joins it (as a
        savepoint), and everything commits at the end or nothing does. Use it for a chat turn's
        records, a reconcile, and a job's effects together with its ``finish``. Keep slow work
        (model calls) outside: the write lock is taken on entry."""
        return self.db.write()

    @property
    def dir(self) -> Path:
        return self.paths.profile_dir(self.name)

    def key_record(self) -> dict[str, Any]:
        return keys.read_keyfile(self.dir / KEYFILE)

    def rotate_key(self, passphrase_provider: PassphraseProvider | None = None) -> None:
        """Re-encrypt the whole database under a new random key.

        Crash-safe order: (1) the new key is saved as key.json.next, (2) the DB is re-keyed in
        one transaction, (3) key.json.next replaces key.json. Opening after a crash between (2)
        and (3) tries key.json.next and finishes the rotation.
        """
        rec = self.key_record()
        method = str(rec["method"])
        passphrase = None
        if method == "passphrase":
            passphrase = _passphrase(passphrase_provider, f"Passphrase for profile '{self.name}'")
            keys.unwrap_key(rec, passphrase)  # proves the passphrase before anything changes
        new_key = keys.new_db_key()
        account = keys.keyring_account(self.profile_id) + ":next" if method == "keyring" else None
        next_rec = _key_record(method, self.profile_id, new_key, passphrase, account)
        keys.write_json_atomic(self.dir / NEXT_KEYFILE, next_rec)
        if self.guard is not None:
            from memos_desktop.store.backup import rewrap_backups

            # Backups sealed with the profile key get a seal for the new key too, first.
            rewrap_backups(self.paths, self.name, self.guard.db_key, new_key)
        self.db.rekey(new_key)
        if self.guard is not None:
            self.guard.rekey(new_key, guards.change_seq(self.db))
        _finish_rotation(self.dir, next_rec)

    def size_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal", "-shm"):
            p = self.db.path.with_name(self.db.path.name + suffix)
            if p.exists():
                total += p.stat().st_size
        return total

    def close(self) -> None:
        self.db.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
