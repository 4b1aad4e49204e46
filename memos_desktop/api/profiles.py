"""Profiles before and around the API: create, the key method, passphrase change, key
rotation, doctor (the store's checks plus the engine build report), and the ways to keep and
get back data (issue 15): backup, the list of backups, restore a backup, accept a loss.

Design rules:
- These act on a profile that is not open (create, passphrase) or open it for one job (rotate,
  doctor); :func:`memos_desktop.api.session.open_api` opens it for use.
- Imports of the store and the engine happen inside the functions: front ends import this
  module before they need either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memos_desktop.api.session import PassphraseProvider
from memos_desktop.config import Paths, Settings

if TYPE_CHECKING:
    from memos_desktop.store.backup import BackupInfo
    from memos_desktop.store.recovery import AcceptPlan, RestorePlan


@dataclass(frozen=True)
class CreatedProfile:
    name: str
    path: Path
    database: Path


def keyring_choice() -> tuple[bool, str]:
    """(usable, why not): whether the OS keyring can hold the key (fail and plaintext backends
    are refused)."""
    from memos_desktop.store import keys

    st = keys.keyring_status()
    return st.usable, st.reason


def key_method(requested: str) -> str:
    """``auto`` stays ``auto`` (the keyring) where a real keyring exists, else ``passphrase``."""
    if requested == "auto" and not keyring_choice()[0]:
        return "passphrase"
    return requested


def create_profile(
    paths: Paths,
    profile: str,
    settings: Settings,
    *,
    method: str = "auto",
    passphrase: str | None = None,
) -> CreatedProfile:
    """Create a profile: a random key, its keyring entry or passphrase-wrapped copy, and a
    fresh encrypted database (ProfileExistsError when there is one)."""
    from memos_desktop.store.profile import create_profile as create

    store = create(paths, profile, settings, method=method, passphrase=passphrase)
    try:
        return CreatedProfile(profile, store.dir, store.db.path)
    finally:
        store.close()


def change_passphrase(paths: Paths, profile: str, old: str, new: str) -> None:
    """Re-wrap the key under a new passphrase (the database is not re-encrypted)."""
    from memos_desktop.store.profile import change_passphrase as change

    change(paths, profile, old, new)


def rotate_key(
    paths: Paths, settings: Settings, profile: str, passphrase_provider: PassphraseProvider
) -> None:
    """Re-encrypt the database under a new random key (crash-safe, see store.profile)."""
    from memos_desktop.store.profile import open_profile

    store = open_profile(paths, profile, settings, passphrase_provider=passphrase_provider)
    try:
        store.rotate_key(passphrase_provider)
    finally:
        store.close()


def doctor(
    paths: Paths, settings: Settings, profile: str, passphrase_provider: PassphraseProvider
) -> dict[str, Any]:
    """Keyring, encryption, integrity, schema, versions, and the engine's build against this
    CPU: ``{"versions": ..., "checks": [{name, status, detail}], "engine": ...}``."""
    from memos_desktop.store.doctor import run_checks

    report = run_checks(paths, settings, profile, passphrase_provider)
    report["engine"] = engine_report()
    report["versions"]["llama-cpp-python"] = report["engine"]["version"]
    report["checks"] += report["engine"]["checks"]
    return report


def engine_report() -> dict[str, Any]:
    """llama-cpp-python's version, llama.cpp's system info and the build-vs-CPU checks."""
    try:
        from memos_desktop.engines.build_info import engine_build

        b = engine_build()
    except Exception as exc:  # a broken engine is what doctor is for: report it, go on
        detail = (
            f"llama-cpp-python does not load ({type(exc).__name__}: {exc}); reinstall: make install"
        )
        return {
            "version": "not available",
            "system_info": "",
            "checks": [{"name": "engine", "status": "fail", "detail": detail}],
        }
    return {
        "version": b.version,
        "system_info": b.system_info,
        "built_features": sorted(b.built),
        "checks": [{"name": "llama-cpp-python", "status": "ok", "detail": b.version}, *b.checks],
    }


# --- backups (issue 15) ----------------------------------------------------------------------


def backup(
    paths: Paths,
    settings: Settings,
    profile: str,
    passphrase_provider: PassphraseProvider | None,
    *,
    folder: Path | None = None,
    passphrase: str | None = None,
    keep: int | None = None,
) -> tuple[BackupInfo, list[Path]]:
    """An encrypted snapshot of the profile, made online (other processes may go on writing):
    sealed with the profile key, and with ``passphrase`` too if given. Into ``folder``
    (default: the profile's backup folder); ``keep``: then only the newest ``keep`` of this
    profile's backups there are kept. Returns the backup and the files removed."""
    from memos_desktop.store.profile import open_profile
    from memos_desktop.store.recovery import backup_store

    store = open_profile(paths, profile, settings, passphrase_provider=passphrase_provider)
    try:
        return backup_store(store, folder, passphrase=passphrase, keep=keep)
    finally:
        store.close()


def list_backups(paths: Paths, profile: str, folder: Path | None = None) -> list[BackupInfo]:
    """The backups in ``folder`` (default: the profile's backup folder), oldest first. What
    they say of themselves (date, counts) is verified only when one is restored."""
    from memos_desktop.store.backup import default_dir
    from memos_desktop.store.backup import list_backups as found

    return found(folder or default_dir(paths, profile))


def restore_backup(
    paths: Paths,
    settings: Settings,
    profile: str,
    source: str | Path,
    passphrase_provider: PassphraseProvider | None,
    backup_passphrase: Callable[[str], str] | None,
    confirm: Callable[[RestorePlan], bool],
) -> RestorePlan | None:
    """Put a backup (a file, or ``"latest"``) back into the profile after ``confirm`` has
    seen the plan (date, counts, what would be lost); None when it said no. The current files
    are kept in ``replaced-<time>/`` of the profile folder."""
    from memos_desktop.store.recovery import restore_backup as restore

    return restore(
        paths, settings, profile, source, passphrase_provider, backup_passphrase, confirm
    )


def accept_loss(
    paths: Paths,
    settings: Settings,
    profile: str,
    passphrase_provider: PassphraseProvider | None,
    confirm: Callable[[AcceptPlan], bool],
) -> AcceptPlan | None:
    """Go on with what a refused database holds (an empty one if it is gone), after
    ``confirm``; damaged pages cannot be accepted (a backup fixes them)."""
    from memos_desktop.store.recovery import accept_loss as accept

    return accept(paths, settings, profile, passphrase_provider, confirm)
