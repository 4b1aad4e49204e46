"""Profiles: one directory and one encrypted database each, and the :class:`Store` that opens it.

Layout of a profile directory (mode 0700)::

    profiles/<name>/memos.db      the encrypted database (+ -wal, -shm while open)
    profiles/<name>/key.json      how to get the key: keyring reference or passphrase-wrapped key
    profiles/<name>/key.json.next only during a key rotation (see rotate_key)

Design rule: nothing on disk changes until the key is proven right; a wrong passphrase or key
leaves every file exactly as it was.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memos_desktop.config import PASSPHRASE_ENV, Paths, Settings
from memos_desktop.errors import (
    AuthError,
    InvalidInputError,
    PassphraseRequiredError,
    ProfileExistsError,
    ProfileNotFoundError,
    WrongKeyError,
)
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
                rec = keys.read_keyfile(kf)
                out.append(ProfileInfo(d.name, str(rec["profile_id"]), str(rec["method"]), d))
    return out


def _passphrase(provider: PassphraseProvider | None, prompt: str) -> str:
    env = os.environ.get(PASSPHRASE_ENV)
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
    if rec["method"] == "keyring":
        return keys.keyring_load(str(rec["profile_id"]), str(rec.get("account") or ""))
    return keys.unwrap_key(rec, _passphrase(provider, f"Passphrase for profile '{name}'"))


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
        passphrase = os.environ.get(PASSPHRASE_ENV)
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
    try:
        rec = _key_record(method, profile_id, key, passphrase)
        db = Database(db_path, key, create=True, key_known_good=True, **_db_opts(settings))
        migrate(db)
        device_id = uuid.uuid4().hex[:16]
        with db.write() as c:
            c.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [
                    ("profile_id", profile_id),
                    ("profile_name", name),
                    ("device_id", device_id),
                    ("created_at", str(time.time())),
                ],
            )
        store = Store(paths, name, profile_id, db, settings)
        user = store.users.create(DEFAULT_USER)
        if embed_model:
            store.cubes.create(user, DEFAULT_CUBE, embed_model=embed_model, embed_dim=embed_dim)
        # The key file is written last: a profile without it does not exist.
        keys.write_json_atomic(pdir / KEYFILE, rec)
        return store
    except BaseException:
        shutil.rmtree(pdir, ignore_errors=True)
        raise


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
) -> Store:
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
    if rec.get("key_check") and not hmac.compare_digest(key_check(key), str(rec["key_check"])):
        raise WrongKeyError("the key from the keyring does not belong to this profile")
    db_path = pdir / DB_FILENAME
    try:
        db = Database(db_path, key, key_known_good=True, **_db_opts(settings))
    except Exception:
        # An interrupted key rotation leaves the DB under the next key: finish it.
        nxt = pdir / NEXT_KEYFILE
        if not nxt.exists():
            raise
        next_rec = keys.read_keyfile(nxt)
        next_key = _unlock(next_rec, passphrase_provider, name)
        db = Database(db_path, next_key, key_known_good=True, **_db_opts(settings))
        _finish_rotation(pdir, next_rec)
    else:
        (pdir / NEXT_KEYFILE).unlink(missing_ok=True)
    if migrate_schema:
        migrate(db)
    profile_id = str(
        db.scalar("SELECT value FROM meta WHERE key = 'profile_id'") or rec["profile_id"]
    )
    return Store(paths, name, profile_id, db, settings, resident_index=resident_index)


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
        self.db.rekey(new_key)
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

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
