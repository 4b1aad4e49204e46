"""``memos-desktop doctor``: keyring backend, encryption, integrity, schema and versions, and
the states issue 15 added: a missing, emptied or rolled-back database, stopped writes after a
damaged page, the high-water mark, the backups, and what to do. Reports; never raises for a
broken profile. Finding damaged pages stops writes (the damage marker), as a read would."""

from __future__ import annotations

import platform
import stat
import time
from typing import Any

import apsw

from memos_desktop import __version__
from memos_desktop.config import Paths, Settings
from memos_desktop.errors import AuthError, MemosError
from memos_desktop.store import keys
from memos_desktop.store.backup import default_dir, list_backups, restore_hint
from memos_desktop.store.db import DB_FILENAME
from memos_desktop.store.guard import MARK_FILE, read_damage, write_damage
from memos_desktop.store.migrations import LATEST, current_version
from memos_desktop.store.profile import KEYFILE, PassphraseProvider, Store, open_profile
from memos_desktop.store.records import SearchFilters

PLAINTEXT_HEADER = b"SQLite format 3\x00"


def _versions() -> dict[str, str]:
    v = {
        "memos-desktop": __version__,
        "python": platform.python_version(),
        "sqlite": apsw.sqlite_lib_version(),
        "apsw": apsw.apsw_version(),
        "sqlite3mc": getattr(apsw, "mc_version", "unknown"),
    }
    return v


def run_checks(
    paths: Paths, settings: Settings, profile: str, provider: PassphraseProvider | None
) -> dict[str, Any]:
    """Every check as ``{name, status, detail}``; a broken profile is reported, never raised
    (a missing, emptied, rolled-back or damaged database included)."""
    checks: list[dict[str, str]] = []

    def add(name: str, status: str, detail: str) -> None:
        checks.append({"name": name, "status": status, "detail": detail})

    ks = keys.keyring_status()
    add(
        "keyring",
        "ok" if ks.usable else "warn",
        f"{ks.backend}" + ("" if ks.usable else f" ({ks.reason}; passphrase mode is used)"),
    )
    pdir = paths.profile_dir(profile)
    kf = pdir / KEYFILE
    db_path = pdir / DB_FILENAME
    done = {"versions": _versions(), "checks": checks}
    if not kf.exists():
        add("profile", "fail", f"no profile '{profile}' at {pdir}; run `memos-desktop init`")
        return done
    try:
        rec = keys.read_keyfile(kf)
    except MemosError as exc:
        add("key file", "fail", str(exc))
        return done
    add("profile", "ok", f"'{profile}' at {pdir}, key held by {rec['method']}")
    mode = stat.S_IMODE(kf.stat().st_mode)
    add(
        "key file permissions",
        "ok" if mode & 0o077 == 0 else "warn",
        f"{oct(mode)}" + ("" if mode & 0o077 == 0 else f"; run chmod 600 {kf}"),
    )
    _backups_check(paths, profile, str(rec["profile_id"]), add)
    if not db_path.exists() or db_path.stat().st_size == 0:
        what = "missing" if not db_path.exists() else "empty (0 bytes)"
        add("database", "fail", f"{db_path} is {what}; it was left as it is")
        add("what to do", "info", restore_hint(paths, profile))
        return done
    with open(db_path, "rb") as fh:
        header = fh.read(16)
    add(
        "encryption at rest",
        "fail" if header == PLAINTEXT_HEADER else "ok",
        "database file is PLAINTEXT"
        if header == PLAINTEXT_HEADER
        else "database pages are encrypted (ChaCha20-Poly1305, sqlite3mc)",
    )
    try:
        store = open_profile(paths, profile, settings, passphrase_provider=provider, inspect=True)
    except MemosError as exc:
        add("unlock" if isinstance(exc, AuthError) else "database", "fail", str(exc))
        if not isinstance(exc, AuthError):
            add("what to do", "info", restore_hint(paths, profile))
        return done
    try:
        add("unlock", "ok", "key accepted")
        _data_checks(store, pdir, add)
        if any(c["status"] == "fail" for c in checks):
            add("what to do", "info", restore_hint(paths, profile))
    finally:
        store.close()
    return done


def _backups_check(paths: Paths, profile: str, profile_id: str, add: Any) -> None:
    found = list_backups(default_dir(paths, profile), profile_id)
    if not found:
        add("backups", "warn", "none yet: `memos-desktop backup` makes one")
        return
    b = found[-1]
    add(
        "backups",
        "ok",
        f"{len(found)} in {default_dir(paths, profile)}; newest {b.when()} "
        f"(change #{b.seq}, {b.counts.get('memories', 0)} memories)",
    )


def _data_checks(store: Store, pdir: Any, add: Any) -> None:
    health = store.health
    assert health is not None
    cipher = store.db.conn.pragma("cipher")
    add("cipher", "ok", str(cipher))
    mark = health.mark
    if health.db_seq is None:
        add("change log", "fail", f"cannot be read: {health.read_error}")
    elif mark.state == "missing":
        add("high-water mark", "warn", f"none yet; written at the next open (#{health.db_seq})")
    elif mark.state == "invalid":
        add("high-water mark", "fail", f"{MARK_FILE} does not verify (changed or replaced)")
    elif health.missing_changes:
        add(
            "high-water mark",
            "fail",
            f"the database holds changes up to #{health.db_seq} but the profile had recorded "
            f"#{mark.seq}: {health.missing_changes} acknowledged changes are missing (the -wal "
            "file was lost or damaged, or an older memos.db was put back); the files were "
            "left as they are",
        )
    else:
        add("high-water mark", "ok", f"the database holds every recorded change (#{mark.seq})")
    try:
        result = store.db.integrity_check()
    except MemosError as exc:
        result = [f"damaged pages ({exc.message})"]
    if result != ["ok"]:
        write_damage(pdir, f"the integrity check failed: {'; '.join(result[:3])}")
    add("integrity", "ok" if result == ["ok"] else "fail", "; ".join(result[:5]))
    damage = read_damage(pdir)
    if damage is not None:
        since = damage.get("found_at")
        when = f" since {time.strftime('%Y-%m-%d %H:%M', time.localtime(since))}" if since else ""
        add("writes", "fail", f"stopped{when}: {damage['detail']}")
    try:
        v = current_version(store.db)
        add(
            "schema",
            "ok" if v == LATEST else "warn",
            f"v{v}" + ("" if v == LATEST else f" (v{LATEST} is applied at next open)"),
        )
        n = store.memories.count(SearchFilters(statuses=()))
        add("memories", "ok", f"{n} items, {store.size_bytes() / 1e6:.1f} MB on disk")
        vec = store.db.scalar("SELECT vec_version()")
        add("sqlite-vec", "ok", str(vec))
    except MemosError as exc:
        add("contents", "fail", f"cannot be read: {exc.message}")
