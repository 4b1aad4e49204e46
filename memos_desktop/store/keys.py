"""Profile keys: a random 256-bit database key, held by the OS keyring or wrapped by a passphrase.

Design rules:
- The key is random (``secrets.token_bytes(32)``), never derived from the passphrase, so a
  passphrase change only re-wraps it (the database is untouched) and key rotation re-keys the DB.
- The OS keyring is used only when it has a real backend. The ``fail`` and ``null`` backends and
  every ``keyrings.alt`` backend (plaintext or weakly obfuscated files) are refused, never used
  silently.
- The wrapped key lives in ``key.json`` beside the DB: scrypt (n=2**15, r=8, p=1) derives a
  key-encryption key; ChaCha20-Poly1305 seals the DB key, with the profile id as associated data.
  A wrong passphrase fails the tag check, so it is reported as such and nothing is written.
- Key files are written atomically (temp + fsync + rename), mode 0600.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from memos_desktop.errors import (
    AuthError,
    CorruptDatabaseError,
    KeyringUnavailableError,
    WrongPassphraseError,
)

log = logging.getLogger(__name__)

KEY_BYTES = 32
KEYRING_SERVICE = "memos-desktop"
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
KEYFILE_VERSION = 1

_REFUSED_BACKEND_MODULES = ("keyring.backends.fail", "keyring.backends.null", "keyrings.alt")


@dataclass(frozen=True)
class KeyringStatus:
    usable: bool
    backend: str
    reason: str


def _backend_name(backend: Any) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__name__}"


def _is_refused(backend: Any) -> bool:
    return _backend_name(backend).startswith(_REFUSED_BACKEND_MODULES)


def keyring_status() -> KeyringStatus:
    """Say whether the OS keyring has a real, safe backend."""
    try:
        import keyring
        from keyring.backends.chainer import ChainerBackend
    except Exception as exc:  # pragma: no cover - keyring is a dependency
        return KeyringStatus(False, "none", f"keyring not importable: {exc}")
    backend = keyring.get_keyring()
    name = _backend_name(backend)
    if isinstance(backend, ChainerBackend):
        real = [b for b in backend.backends if not _is_refused(b)]
        if not real:
            return KeyringStatus(False, name, "no secure keyring backend is available")
        return KeyringStatus(True, ", ".join(_backend_name(b) for b in real), "ok")
    if _is_refused(backend):
        return KeyringStatus(
            False, name, "this backend is insecure or non-functional and is refused"
        )
    return KeyringStatus(True, name, "ok")


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _unb64(s: str) -> bytes:
    return base64.b64decode(s.encode("ascii"), validate=True)


def _kek(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        passphrase.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32
    )


def wrap_key(db_key: bytes, passphrase: str, profile_id: str) -> dict[str, Any]:
    if not passphrase:
        raise AuthError("an empty passphrase is not allowed", hint="choose a passphrase")
    salt = secrets.token_bytes(16)
    nonce = secrets.token_bytes(12)
    kek = _kek(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    sealed = ChaCha20Poly1305(kek).encrypt(nonce, db_key, profile_id.encode())
    return {
        "version": KEYFILE_VERSION,
        "profile_id": profile_id,
        "method": "passphrase",
        "kdf": {"name": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "salt": _b64(salt)},
        "aead": "chacha20poly1305",
        "nonce": _b64(nonce),
        "sealed_key": _b64(sealed),
    }


def unwrap_key(record: dict[str, Any], passphrase: str) -> bytes:
    try:
        kdf = record["kdf"]
        salt = _unb64(kdf["salt"])
        nonce = _unb64(record["nonce"])
        sealed = _unb64(record["sealed_key"])
        profile_id = str(record["profile_id"])
        n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
    except (KeyError, ValueError, TypeError) as exc:
        raise CorruptDatabaseError(
            "the profile's key file is damaged", hint="restore key.json from a backup"
        ) from exc
    kek = _kek(passphrase, salt, n, r, p)
    try:
        return ChaCha20Poly1305(kek).decrypt(nonce, sealed, profile_id.encode())
    except InvalidTag:
        raise WrongPassphraseError(
            "wrong passphrase for this profile",
            hint="try again; nothing was changed. If it is lost, the memories cannot be recovered",
        ) from None


def new_db_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps(data, indent=2, sort_keys=True).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def read_keyfile(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise CorruptDatabaseError(
            f"the key file {path} cannot be read ({exc})", hint="restore it from a backup"
        ) from exc
    if not isinstance(data, dict) or data.get("version") != KEYFILE_VERSION:
        raise CorruptDatabaseError(
            f"the key file {path} has an unknown format",
            hint="upgrade memos-desktop or restore the file from a backup",
        )
    return data


# --- keyring -----------------------------------------------------------------------------------


def keyring_account(profile_id: str) -> str:
    return f"profile:{profile_id}"


def keyring_store(profile_id: str, db_key: bytes, account: str | None = None) -> None:
    status = keyring_status()
    if not status.usable:
        raise KeyringUnavailableError(
            f"the OS keyring cannot be used ({status.backend}: {status.reason})",
            hint="use a passphrase instead (memos-desktop init --passphrase)",
        )
    import keyring

    keyring.set_password(KEYRING_SERVICE, account or keyring_account(profile_id), db_key.hex())


def keyring_load(profile_id: str, account: str | None = None) -> bytes:
    status = keyring_status()
    if not status.usable:
        raise KeyringUnavailableError(
            f"this profile's key is in the OS keyring, which is unavailable now "
            f"({status.backend}: {status.reason})",
            hint="unlock or start your desktop keyring (e.g. GNOME Keyring, KWallet), then retry",
        )
    import keyring

    value = keyring.get_password(KEYRING_SERVICE, account or keyring_account(profile_id))
    if value is None:
        raise KeyringUnavailableError(
            "the OS keyring has no key for this profile",
            hint="the keyring entry was removed; restore it, or the memories cannot be opened",
        )
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise CorruptDatabaseError("the key stored in the OS keyring is damaged") from exc


def keyring_delete(account: str) -> None:
    import keyring
    import keyring.errors

    with contextlib.suppress(keyring.errors.PasswordDeleteError):
        keyring.delete_password(KEYRING_SERVICE, account)
