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
- A key file is untrusted input (issue 15): it is read up to a size bound, and every field is
  checked (:func:`validate_keyfile`) before any work is done with it; the scrypt parameters
  must lie within bounds (a file asking for n = 2^30 or p = 100000 is refused at once instead
  of exhausting memory or hanging). Messages name the field that is wrong.
- keyring is imported without the macOS backend's library probe off macOS (see
  :func:`_keyring`): that probe ran ldconfig, gcc and ld as child processes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from memos_desktop.errors import (
    AuthError,
    CorruptDatabaseError,
    KeyFileError,
    KeyringUnavailableError,
    WrongPassphraseError,
    require_text,
)

log = logging.getLogger(__name__)

KEY_BYTES = 32
KEYRING_SERVICE = "memos-desktop"
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
KEYFILE_VERSION = 1
SCRYPT_MAXMEM = 256 * 1024 * 1024

# Bounds on what an (untrusted) key file may ask for. The work n*r*p may be at most twice
# today's default (0.1-0.3 s here, so a refusal or an unwrap stays well under a second),
# and scrypt's memory (128*n*r bytes) at most 32 MiB.
KEYFILE_MAX_BYTES = 64 * 1024
SCRYPT_N_RANGE = (2**14, 2**17)
SCRYPT_R_RANGE = (1, 16)
SCRYPT_P_RANGE = (1, 4)
SCRYPT_MAX_WORK = 2 * SCRYPT_N * SCRYPT_R * SCRYPT_P
SCRYPT_MAX_MEM = 32 * 1024 * 1024
SALT_BYTES_RANGE = (16, 64)
NONCE_BYTES = 12
SEALED_BYTES = KEY_BYTES + 16  # ChaCha20-Poly1305 tag
_HEX32 = re.compile(r"[0-9a-f]{32}")
_COMMON_FIELDS = {"version", "profile_id", "method", "key_check"}
_FIELDS = {
    "keyring": _COMMON_FIELDS | {"service", "account"},
    "passphrase": _COMMON_FIELDS | {"kdf", "aead", "nonce", "sealed_key"},
}
_KDF_FIELDS = {"name", "n", "r", "p", "salt"}

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


def _keyring() -> Any:
    """The keyring module, imported without its macOS backend's library probe off macOS.

    keyring loads every backend it knows to pick one; ``keyring.backends.macOS`` imports its
    ctypes ``api`` module at import time, which calls ``ctypes.util.find_library`` for the
    Security, CoreServices and Foundation frameworks. Off macOS, find_library looks for them
    by running ``ldconfig -p``, ``gcc`` and ``ld`` (9 child processes per start, 41 with
    theirs, each inheriting the environment). A ``None`` entry in sys.modules makes that
    import fail at once, as it fails anyway after the probe; the backend then says it is
    unavailable, as before."""
    if sys.platform != "darwin":
        sys.modules.setdefault("keyring.backends.macOS.api", None)  # type: ignore[arg-type]
    import keyring

    return keyring


def keyring_status() -> KeyringStatus:
    """Say whether the OS keyring has a real, safe backend."""
    try:
        keyring = _keyring()
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
    require_text(passphrase, "the passphrase")
    return hashlib.scrypt(
        passphrase.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM, dklen=32
    )


passphrase_kek = _kek  # for other sealed records (backups), with the same bounds checked first


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
    """The DB key from a passphrase record (checked by :func:`validate_keyfile` first, so the
    scrypt parameters are within bounds before any work is done)."""
    # A record fresh from wrap_key has no key_check yet; everything else is checked.
    validate_keyfile({"key_check": "0" * 32, **record}, "the key record")
    kdf = record["kdf"]
    salt = _unb64(kdf["salt"])
    nonce = _unb64(record["nonce"])
    sealed = _unb64(record["sealed_key"])
    profile_id = str(record["profile_id"])
    kek = _kek(passphrase, salt, int(kdf["n"]), int(kdf["r"]), int(kdf["p"]))
    try:
        return ChaCha20Poly1305(kek).decrypt(nonce, sealed, profile_id.encode())
    except InvalidTag:
        raise WrongPassphraseError(
            "wrong passphrase for this profile",
            hint="try again; nothing was changed. If it is lost, the memories cannot be "
            "recovered; if it is right, key.json was changed: put it back from a copy",
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


_KEYFILE_HINT = (
    "it was changed or damaged: put back key.json from a copy of the profile folder; "
    "nothing was changed"
)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"field {k!r} appears twice")
        out[k] = v
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json_bounded(raw: bytes, what: str, max_bytes: int = KEYFILE_MAX_BYTES) -> Any:
    """Strict JSON from untrusted bytes: a size bound, UTF-8, no duplicate fields, no NaN,
    no nesting deep enough to exhaust the parser. KeyFileError names what is wrong."""
    if len(raw) > max_bytes:
        raise KeyFileError(
            f"{what} is {len(raw)} bytes, more than a key file can be ({max_bytes})",
            hint=_KEYFILE_HINT,
        )
    try:
        return json.loads(
            raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constants
        )
    except (ValueError, RecursionError) as exc:
        raise KeyFileError(f"{what} is not valid JSON ({exc})", hint=_KEYFILE_HINT) from None


def read_keyfile(path: Path) -> dict[str, Any]:
    """The key file's record, validated (:func:`validate_keyfile`). FileNotFoundError when
    there is none; KeyFileError, naming the problem, for anything else."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(KEYFILE_MAX_BYTES + 1)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise KeyFileError(
            f"the key file {path} cannot be read ({exc})", hint="check its permissions"
        ) from exc
    data = parse_json_bounded(raw, f"the key file {path}")
    return validate_keyfile(data, f"the key file {path}")


def _int_in(rec: dict[str, Any], key: str, lo: int, hi: int, where: str) -> int:
    v = rec.get(key)
    if not isinstance(v, int) or isinstance(v, bool):
        raise ValueError(f"{where}{key} must be an integer, not {type(v).__name__}")
    if not lo <= v <= hi:
        raise ValueError(f"{where}{key} = {v} is outside the accepted range {lo}..{hi}")
    return v


def _b64_field(rec: dict[str, Any], key: str, lo: int, hi: int, where: str = "") -> bytes:
    v = rec.get(key)
    if not isinstance(v, str) or len(v) > 4 * hi:
        raise ValueError(f"{where}{key} must be a base64 string of {lo}..{hi} bytes")
    try:
        raw = _unb64(v)
    except (ValueError, UnicodeEncodeError):
        raise ValueError(f"{where}{key} is not valid base64") from None
    if _b64(raw) != v:  # one spelling only (b64decode also takes extra padding)
        raise ValueError(f"{where}{key} is not canonical base64")
    if not lo <= len(raw) <= hi:
        raise ValueError(f"{where}{key} holds {len(raw)} bytes, expected {lo}..{hi}")
    return raw


def check_scrypt(kdf: Any, where: str = "kdf.") -> tuple[int, int, int]:
    """(n, r, p) of a scrypt parameter record, within the bounds above (ValueError if not)."""
    if not isinstance(kdf, dict):
        raise ValueError(f"{where[:-1]} must be an object")
    extra = set(kdf) - _KDF_FIELDS
    missing = _KDF_FIELDS - set(kdf)
    if extra or missing:
        raise ValueError(
            f"{where[:-1]} has "
            + (f"unexpected fields {sorted(extra)}" if extra else f"no {sorted(missing)}")
        )
    if kdf["name"] != "scrypt":
        raise ValueError(f"{where}name {kdf['name']!r} is not a known KDF (scrypt)")
    n = _int_in(kdf, "n", *SCRYPT_N_RANGE, where)
    if n & (n - 1):
        raise ValueError(f"{where}n = {n} is not a power of two")
    r = _int_in(kdf, "r", *SCRYPT_R_RANGE, where)
    p = _int_in(kdf, "p", *SCRYPT_P_RANGE, where)
    if n * r * p > SCRYPT_MAX_WORK or 128 * n * r > SCRYPT_MAX_MEM:
        raise ValueError(
            f"{where}n*r*p = {n * r * p} asks for more work than memos-desktop ever writes "
            f"(at most {SCRYPT_MAX_WORK}, {SCRYPT_MAX_MEM >> 20} MiB)"
        )
    _b64_field(kdf, "salt", *SALT_BYTES_RANGE, where)
    return n, r, p


def validate_keyfile(data: Any, what: str) -> dict[str, Any]:
    """``data`` if it is a well-formed key record, else KeyFileError naming the first problem.
    Checks every field: the exact set for the method, types, sizes, and KDF bounds."""
    try:
        if not isinstance(data, dict):
            raise ValueError("it is not a JSON object")
        version = data.get("version")
        if version != KEYFILE_VERSION or type(version) is not int:
            raise KeyFileError(
                f"{what} has an unknown format (version {version!r})",
                hint="upgrade memos-desktop, or put back key.json from a copy of the profile "
                "folder",
            )
        method = data.get("method")
        if method not in _FIELDS:
            raise ValueError(f"method {method!r} is neither 'keyring' nor 'passphrase'")
        allowed = _FIELDS[str(method)]
        extra = set(data) - allowed
        missing = allowed - set(data)  # key_check too: every version wrote one
        if extra:
            raise ValueError(f"unexpected fields for a {method} key: {sorted(extra)}")
        if missing:
            raise ValueError(f"missing fields for a {method} key: {sorted(missing)}")
        pid = data["profile_id"]
        if not isinstance(pid, str) or not _HEX32.fullmatch(pid):
            raise ValueError("profile_id must be 32 lowercase hex digits")
        kc = data["key_check"]
        if not isinstance(kc, str) or not _HEX32.fullmatch(kc):
            raise ValueError("key_check must be 32 lowercase hex digits")
        if method == "keyring":
            if data["service"] != KEYRING_SERVICE:
                raise ValueError(f"service {data['service']!r} is not {KEYRING_SERVICE!r}")
            acc = data["account"]
            if not isinstance(acc, str) or not 0 < len(acc) <= 200 or not acc.isprintable():
                raise ValueError("account must be a printable name of 1..200 characters")
        else:
            check_scrypt(data["kdf"])
            if data["aead"] != "chacha20poly1305":
                raise ValueError(f"aead {data['aead']!r} is not chacha20poly1305")
            _b64_field(data, "nonce", NONCE_BYTES, NONCE_BYTES)
            _b64_field(data, "sealed_key", SEALED_BYTES, SEALED_BYTES)
    except ValueError as exc:
        raise KeyFileError(f"{what} is not valid: {exc}", hint=_KEYFILE_HINT) from None
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
    keyring = _keyring()
    keyring.set_password(KEYRING_SERVICE, account or keyring_account(profile_id), db_key.hex())


def keyring_load(profile_id: str, account: str | None = None) -> bytes:
    status = keyring_status()
    if not status.usable:
        raise KeyringUnavailableError(
            f"this profile's key is in the OS keyring, which is unavailable now "
            f"({status.backend}: {status.reason})",
            hint="unlock or start your desktop keyring (e.g. GNOME Keyring, KWallet), then retry",
        )
    keyring = _keyring()
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
    keyring = _keyring()
    from keyring.errors import PasswordDeleteError

    with contextlib.suppress(PasswordDeleteError):
        keyring.delete_password(KEYRING_SERVICE, account)
