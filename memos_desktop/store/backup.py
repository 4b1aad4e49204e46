"""Encrypted backups of a profile: one file each, written online (issue 15).

File format (``.memosbak``, version 1)::

    b"MEMOS-DESKTOP-BACKUP\\n"   21 bytes
    header length               4 bytes, big-endian (at most 64 KiB)
    header                      UTF-8 JSON (below)
    database                    a SQLite3 Multiple Ciphers database (ChaCha20-Poly1305 pages)
                                under its own random 256-bit backup key

The header holds the format version, the profile's id and name, when it was made, the
change-log sequence number and the counts it holds, the database's size and sha256, and one
or more *seals* of the backup key (ChaCha20-Poly1305): ``profile`` (under a key derived from
the profile's DB key, found again by that key's key check) and/or ``passphrase`` (scrypt, the
same bounds as key.json; it survives a lost keyring or a new machine). ``mac`` is an HMAC of
the rest of the header under a key derived from the backup key, so date and counts are
trusted only after a seal has opened.

Design rules:
- The snapshot is SQLite's online backup (one read transaction, so writers in other
  processes go on) into a database keyed with the backup key: pages are re-encrypted on the
  way, and no plaintext byte is ever written.
- A backup file is untrusted input when read: size bounds and every header field are checked
  before any work, like key.json.
- Key rotation adds a seal for the new key to the backups in the profile's backup folder
  (:func:`rewrap_backups`), so they stay restorable; backups elsewhere need their passphrase
  seal or the key they were made under.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from memos_desktop.config import Paths
from memos_desktop.errors import (
    AuthError,
    InvalidInputError,
    KeyFileError,
    NotFoundError,
    StoreError,
    WrongPassphraseError,
)
from memos_desktop.store import keys
from memos_desktop.store.db import translate

log = logging.getLogger(__name__)

MAGIC = b"MEMOS-DESKTOP-BACKUP\n"
FORMAT_VERSION = 1
SUFFIX = ".memosbak"
MAX_HEADER = 64 * 1024
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_FIELDS = {
    "format",
    "version",
    "profile_id",
    "profile_name",
    "created_at",
    "seq",
    "counts",
    "db_size",
    "db_sha256",
    "seals",
    "mac",
}
COUNT_QUERIES = {
    "memories": "SELECT count(*) FROM memory_items",
    "active": "SELECT count(*) FROM memory_items WHERE status = 'active'",
    "conversations": "SELECT count(*) FROM conversations",
    "messages": "SELECT count(*) FROM messages",
    "cubes": "SELECT count(*) FROM cubes",
}
PassphraseSource = Callable[[str], str]  # prompt -> passphrase


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    profile_id: str
    profile_name: str
    created_at: float
    seq: int
    counts: dict[str, int]
    size: int
    seals: tuple[str, ...]

    def when(self) -> str:
        return dt.datetime.fromtimestamp(self.created_at).strftime("%Y-%m-%d %H:%M:%S")

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "profile_id": self.profile_id,
            "profile": self.profile_name,
            "created_at": self.created_at,
            "seq": self.seq,
            "counts": self.counts,
            "size": self.size,
            "sealed_with": list(self.seals),
        }


def default_dir(paths: Paths, name: str) -> Path:
    return paths.data_dir / "backups" / name


def _seal_key(db_key: bytes) -> bytes:
    return hmac.new(db_key, b"memos-desktop backup seal v1", hashlib.sha256).digest()


def _mac_key(bk: bytes) -> bytes:
    return hmac.new(bk, b"memos-desktop backup header v1", hashlib.sha256).digest()


def _canonical(header: dict[str, Any]) -> bytes:
    rest = {k: v for k, v in header.items() if k != "mac"}
    return json.dumps(rest, sort_keys=True, separators=(",", ":")).encode()


def _ad(profile_id: str) -> bytes:
    return b"memos-desktop backup|" + profile_id.encode()


def _b64(b: bytes) -> str:
    import base64

    return base64.b64encode(b).decode("ascii")


def _unb64(s: str) -> bytes:
    import base64

    return base64.b64decode(s.encode("ascii"), validate=True)


def profile_seal(bk: bytes, db_key: bytes, profile_id: str) -> dict[str, Any]:
    from memos_desktop.store.profile import key_check

    nonce = secrets.token_bytes(12)
    sealed = ChaCha20Poly1305(_seal_key(db_key)).encrypt(nonce, bk, _ad(profile_id))
    return {
        "kind": "profile",
        "key_check": key_check(db_key),
        "nonce": _b64(nonce),
        "sealed": _b64(sealed),
    }


def passphrase_seal(bk: bytes, passphrase: str, profile_id: str) -> dict[str, Any]:
    if not passphrase:
        raise AuthError("an empty backup passphrase is not allowed", hint="choose a passphrase")
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    n, r, p = keys.SCRYPT_N, keys.SCRYPT_R, keys.SCRYPT_P
    kek = keys.passphrase_kek(passphrase, salt, n, r, p)
    return {
        "kind": "passphrase",
        "kdf": {"name": "scrypt", "n": n, "r": r, "p": p, "salt": _b64(salt)},
        "nonce": _b64(nonce),
        "sealed": _b64(ChaCha20Poly1305(kek).encrypt(nonce, bk, _ad(profile_id))),
    }


# --- reading a header (untrusted) -------------------------------------------------------------


def _bad(path: Path, why: str) -> KeyFileError:
    return KeyFileError(
        f"{path} is not a memos-desktop backup, or it is damaged: {why}",
        hint="pick another backup (`memos-desktop backup --list`); nothing was changed",
    )


def _check_seal(seal: Any) -> None:
    if not isinstance(seal, dict):
        raise ValueError("a seal is not an object")
    kind = seal.get("kind")
    want = {"profile": {"kind", "key_check", "nonce", "sealed"}}.get(
        str(kind), {"kind", "kdf", "nonce", "sealed"}
    )
    if kind not in ("profile", "passphrase") or set(seal) != want:
        raise ValueError(f"a seal of kind {kind!r} has fields {sorted(seal)}")
    if kind == "profile" and not _HEX32.fullmatch(str(seal["key_check"])):
        raise ValueError("a profile seal's key_check is not 32 hex digits")
    if kind == "passphrase":
        keys.check_scrypt(seal["kdf"], "seal.kdf.")
    for field, size in (("nonce", 12), ("sealed", 48)):
        v = seal[field]
        if (
            not isinstance(v, str)
            or len(v) > 128
            or _b64(raw := _unb64(v)) != v
            or len(raw) != size
        ):
            raise ValueError(f"a seal's {field} is not {size} bytes of base64")


def _validate(h: Any) -> dict[str, Any]:
    if not isinstance(h, dict):
        raise ValueError("the header is not a JSON object")
    if set(h) != _FIELDS:
        raise ValueError(f"the header's fields differ: {sorted(set(h) ^ _FIELDS)}")
    if h["format"] != "memos-desktop backup" or h["version"] != FORMAT_VERSION:
        raise ValueError(f"unknown format or version {h['version']!r}")
    if not isinstance(h["profile_id"], str) or not _HEX32.fullmatch(h["profile_id"]):
        raise ValueError("profile_id is not 32 hex digits")
    if not isinstance(h["profile_name"], str) or not 0 < len(h["profile_name"]) <= 200:
        raise ValueError("profile_name is not a name")
    for field, hi in (("seq", 2**62), ("db_size", 2**44)):
        v = h[field]
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= hi:
            raise ValueError(f"{field} is not a count")
    if not isinstance(h["created_at"], int | float) or not 0 < h["created_at"] < 2**40:
        raise ValueError("created_at is not a time")
    c = h["counts"]
    if not isinstance(c, dict) or len(c) > 32:
        raise ValueError("counts is not an object of counts")
    for k, v in c.items():
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**62 or len(k) > 40:
            raise ValueError(f"count {k!r} is not a count")
    for field in ("db_sha256", "mac"):
        if not isinstance(h[field], str) or not _HEX64.fullmatch(h[field]):
            raise ValueError(f"{field} is not 64 hex digits")
    seals = h["seals"]
    if not isinstance(seals, list) or not 1 <= len(seals) <= 8:
        raise ValueError("seals is not a list of 1..8 seals")
    for seal in seals:
        _check_seal(seal)
    return h


def read_header(path: Path) -> tuple[dict[str, Any], int]:
    """The validated (not yet authenticated) header and the offset of the database bytes."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(MAGIC) + 4)
            if len(head) < len(MAGIC) + 4 or head[: len(MAGIC)] != MAGIC:
                raise _bad(path, "it does not start like one")
            (n,) = struct.unpack(">I", head[len(MAGIC) :])
            if not 2 <= n <= MAX_HEADER:
                raise _bad(path, f"its header length {n} is out of bounds")
            raw = fh.read(n)
            size = os.fstat(fh.fileno()).st_size
    except FileNotFoundError:
        raise NotFoundError(f"no backup at {path}") from None
    except IsADirectoryError:
        raise InvalidInputError(f"{path} is a folder, not a backup file") from None
    except OSError as exc:
        raise StoreError(f"cannot read the backup {path}: {exc}") from exc
    if len(raw) != n:
        raise _bad(path, "it is cut short")
    try:
        header = keys.parse_json_bounded(raw, f"the header of {path}", MAX_HEADER)
        header = _validate(header)
    except (ValueError, KeyError, TypeError) as exc:
        raise _bad(path, str(exc)) from None
    except KeyFileError as exc:
        raise _bad(path, exc.message) from None
    offset = len(MAGIC) + 4 + n
    if size != offset + header["db_size"]:
        raise _bad(path, f"it is {size} bytes, its header says {offset + header['db_size']}")
    return header, offset


def info(path: Path) -> BackupInfo:
    h, _ = read_header(path)
    return BackupInfo(
        path=path,
        profile_id=h["profile_id"],
        profile_name=h["profile_name"],
        created_at=float(h["created_at"]),
        seq=h["seq"],
        counts=dict(h["counts"]),
        size=path.stat().st_size,
        seals=tuple(s["kind"] for s in h["seals"]),
    )


def list_backups(folder: Path, profile_id: str | None = None) -> list[BackupInfo]:
    """Backups in ``folder`` (of one profile if given), oldest first; unreadable files are
    skipped (a log line says why)."""
    out = []
    if folder.is_dir():
        for p in folder.glob(f"*{SUFFIX}"):
            try:
                b = info(p)
            except Exception as exc:
                log.warning("skipping %s: %s", p, exc)
                continue
            if profile_id is None or b.profile_id == profile_id:
                out.append(b)
    return sorted(out, key=lambda b: (b.created_at, b.path.name))


def unseal(
    header: dict[str, Any],
    path: Path,
    db_key: bytes | None,
    passphrase: PassphraseSource | None,
) -> bytes:
    """The backup key: through the profile seal made under ``db_key`` if there is one, else
    a passphrase seal; then the header's MAC is checked. Errors name the cause."""
    from memos_desktop.store.profile import key_check

    ad = _ad(header["profile_id"])
    bk: bytes | None = None
    if db_key is not None:
        check = key_check(db_key)
        for seal in header["seals"]:
            if seal["kind"] == "profile" and hmac.compare_digest(seal["key_check"], check):
                try:
                    bk = ChaCha20Poly1305(_seal_key(db_key)).decrypt(
                        _unb64(seal["nonce"]), _unb64(seal["sealed"]), ad
                    )
                except InvalidTag:
                    raise _bad(path, "its profile seal does not open") from None
                break
    if bk is None:
        pseals = [s for s in header["seals"] if s["kind"] == "passphrase"]
        if not pseals:
            raise AuthError(
                f"{path} was sealed with another key than this profile's (made before a key "
                "rotation, or by another profile) and has no passphrase seal",
                hint="restore it into the profile it was made for, or use a backup made since",
            )
        if passphrase is None:
            raise AuthError(
                f"{path} is sealed with a backup passphrase",
                hint="give the backup passphrase (MEMOS_DESKTOP_BACKUP_PASSPHRASE or when asked)",
            )
        secret = passphrase(f"Passphrase of the backup {path.name}")
        for seal in pseals:
            n, r, p = keys.check_scrypt(seal["kdf"], "seal.kdf.")
            kek = keys.passphrase_kek(secret, _unb64(seal["kdf"]["salt"]), n, r, p)
            try:
                bk = ChaCha20Poly1305(kek).decrypt(
                    _unb64(seal["nonce"]), _unb64(seal["sealed"]), ad
                )
                break
            except InvalidTag:
                continue
        if bk is None:
            raise WrongPassphraseError(
                f"wrong passphrase for the backup {path.name}",
                hint="try again; nothing was changed",
            )
    mac = hmac.new(_mac_key(bk), _canonical(header), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac, header["mac"]):
        raise _bad(path, "its header was changed (the MAC does not match)")
    return bk


# --- writing ----------------------------------------------------------------------------------


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def keyed(path: Path, key: bytes, *, create: bool = False) -> apsw.Connection:
    """A sqlite3mc connection on ``path`` under ``key`` (no profile machinery)."""
    flags = apsw.SQLITE_OPEN_READWRITE | (apsw.SQLITE_OPEN_CREATE if create else 0)
    if create and not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        c = apsw.Connection(str(path), flags=flags)
        c.pragma("cipher", "chacha20")
        c.pragma("hexkey", key.hex())
        c.execute("SELECT count(*) FROM sqlite_master").fetchall()
    except apsw.Error as exc:
        raise translate(exc, path) from exc
    return c


def snapshot_stats(c: apsw.Connection) -> tuple[int, dict[str, int], str]:
    """(change seq, counts, profile id) of an open database."""
    tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    counts: dict[str, int] = {
        k: int(c.execute(q).fetchall()[0][0] or 0)
        for k, q in COUNT_QUERIES.items()
        if q.split(" FROM ")[1].split()[0] in tables
    }
    seq = 0
    if "changes" in tables:
        seq = int(c.execute("SELECT max(rowid) FROM changes").fetchall()[0][0] or 0)
    pid = c.execute("SELECT value FROM meta WHERE key = 'profile_id'").fetchall()
    return seq, counts, str(pid[0][0]) if pid else ""


def _write_container(final: Path, header: dict[str, Any], db_file: Path, offset: int) -> None:
    """Header + the database bytes of ``db_file`` from ``offset``, atomically at ``final``."""
    tmp = final.with_name(f".{final.name}.{secrets.token_hex(4)}.tmp")
    raw = json.dumps(header, sort_keys=True).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out, open(db_file, "rb") as src:
            out.write(MAGIC + struct.pack(">I", len(raw)) + raw)
            src.seek(offset)
            while chunk := src.read(1 << 20):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(final.parent)


def _sha256(path: Path, offset: int = 0) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        fh.seek(offset)
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def make_backup(
    db_conn: apsw.Connection,
    db_lock: Any,
    *,
    db_key: bytes,
    profile_id: str,
    profile_name: str,
    folder: Path,
    passphrase: str | None = None,
    profile_sealed: bool = True,
) -> BackupInfo:
    """Snapshot the open database into a new backup file in ``folder`` (see module doc)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    final = folder / f"{profile_name}-{stamp}{SUFFIX}"
    while final.exists():
        final = folder / f"{profile_name}-{stamp}-{secrets.token_hex(2)}{SUFFIX}"
    bk = secrets.token_bytes(keys.KEY_BYTES)
    snap = folder / f".{final.name}.{secrets.token_hex(4)}.db"
    try:
        dst = keyed(snap, bk, create=True)
        try:
            with db_lock, dst.backup("main", db_conn, "main") as b:
                b.step(-1)
            dst.pragma("journal_mode", "delete")  # one self-contained file
            problems = [str(r[0]) for r in dst.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise StoreError(
                    f"the snapshot failed its check ({'; '.join(problems[:3])})",
                    hint="run `memos-desktop doctor`; the database may be damaged",
                )
            seq, counts, _ = snapshot_stats(dst)
        except apsw.Error as exc:
            raise translate(exc, snap) from exc
        finally:
            dst.close()
        seals = []
        if profile_sealed:
            seals.append(profile_seal(bk, db_key, profile_id))
        if passphrase is not None:
            seals.append(passphrase_seal(bk, passphrase, profile_id))
        header: dict[str, Any] = {
            "format": "memos-desktop backup",
            "version": FORMAT_VERSION,
            "profile_id": profile_id,
            "profile_name": profile_name,
            "created_at": dt.datetime.now().timestamp(),
            "seq": seq,
            "counts": counts,
            "db_size": snap.stat().st_size,
            "db_sha256": _sha256(snap),
            "seals": seals,
            "mac": "0" * 64,
        }
        header["mac"] = hmac.new(_mac_key(bk), _canonical(header), hashlib.sha256).hexdigest()
        _write_container(final, header, snap, 0)
    finally:
        snap.unlink(missing_ok=True)
    log.info("backup %s written (%d memories, change #%d)", final, counts.get("memories", 0), seq)
    return info(final)


def prune(folder: Path, profile_id: str, keep: int) -> list[Path]:
    """Remove this profile's oldest backups in ``folder`` beyond the newest ``keep``."""
    if keep < 1:
        raise InvalidInputError("--keep must be at least 1", hint="or leave it out to keep all")
    mine = list_backups(folder, profile_id)
    gone = [b.path for b in mine[: max(0, len(mine) - keep)]]
    for p in gone:
        p.unlink(missing_ok=True)
    return gone


def extract(path: Path, header: dict[str, Any], offset: int, target: Path) -> None:
    """The backup's database bytes into ``target`` (0600), checked against its sha256."""
    h = hashlib.sha256()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
        src.seek(offset)
        while chunk := src.read(1 << 20):
            h.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if not hmac.compare_digest(h.hexdigest(), header["db_sha256"]):
        target.unlink(missing_ok=True)
        raise _bad(path, "its database bytes do not match their checksum")


def rewrap_backups(paths: Paths, name: str, old_key: bytes, new_key: bytes) -> int:
    """Add a seal for ``new_key`` to each backup in the profile's backup folder sealed under
    ``old_key`` (before a key rotation re-keys the database). Returns how many."""
    from memos_desktop.store.profile import key_check

    old_check, done = key_check(old_key), 0
    for b in list_backups(default_dir(paths, name)):
        header, offset = read_header(b.path)
        if not any(s["kind"] == "profile" and s["key_check"] == old_check for s in header["seals"]):
            continue
        bk = unseal(header, b.path, old_key, None)
        seals = [s for s in header["seals"] if s["kind"] == "passphrase"]
        profile = [s for s in header["seals"] if s["kind"] == "profile"]
        header["seals"] = [*profile[-2:], profile_seal(bk, new_key, header["profile_id"]), *seals]
        header["mac"] = hmac.new(_mac_key(bk), _canonical(header), hashlib.sha256).hexdigest()
        _write_container(b.path, header, b.path, offset)
        done += 1
    return done


def restore_hint(paths: Paths, name: str) -> str:
    """The way out for a refused profile: its newest backup, or what else can be done."""
    found = list_backups(default_dir(paths, name))
    accept = "`memos-desktop restore --accept-loss` goes on with what is left"
    if found:
        return (
            f"restore the newest backup (made {found[-1].when()}): `memos-desktop restore "
            f"--backup latest`; `memos-desktop doctor` shows what each holds; or {accept}"
        )
    return (
        f"no backup was found in {default_dir(paths, name)}: if you have a copy of the "
        "profile folder, put memos.db (and memos.db-wal) back; `memos-desktop restore "
        f"--backup FILE` restores a backup kept elsewhere; or {accept}"
    )
