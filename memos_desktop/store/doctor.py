"""``memos-desktop doctor``: keyring backend, encryption, integrity, schema and versions."""

from __future__ import annotations

import platform
import stat
from typing import Any

import apsw

from memos_desktop import __version__
from memos_desktop.config import Paths, Settings
from memos_desktop.errors import MemosError
from memos_desktop.store import keys
from memos_desktop.store.db import DB_FILENAME
from memos_desktop.store.migrations import LATEST, current_version
from memos_desktop.store.profile import KEYFILE, PassphraseProvider, open_profile
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
    if not kf.exists():
        add("profile", "fail", f"no profile '{profile}' at {pdir}; run `memos-desktop init`")
        return {"versions": _versions(), "checks": checks}
    rec = keys.read_keyfile(kf)
    add("profile", "ok", f"'{profile}' at {pdir}, key held by {rec['method']}")
    mode = stat.S_IMODE(kf.stat().st_mode)
    add(
        "key file permissions",
        "ok" if mode & 0o077 == 0 else "warn",
        f"{oct(mode)}" + ("" if mode & 0o077 == 0 else f"; run chmod 600 {kf}"),
    )
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
        store = open_profile(
            paths, profile, settings, passphrase_provider=provider, migrate_schema=False
        )
    except MemosError as exc:
        add("unlock", "fail", str(exc))
        return {"versions": _versions(), "checks": checks}
    try:
        add("unlock", "ok", "key accepted")
        cipher = store.db.conn.pragma("cipher")
        add("cipher", "ok", str(cipher))
        result = store.db.integrity_check()
        add("integrity", "ok" if result == ["ok"] else "fail", "; ".join(result[:5]))
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
    finally:
        store.close()
    return {"versions": _versions(), "checks": checks}
