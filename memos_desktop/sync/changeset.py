"""Changeset and snapshot files: signed, encrypted, immutable.

Layout (all integers big-endian)::

    b"MEMOSYN1"                      8 bytes, magic and format version
    u32 header length, header        JSON: format, kind, device, seq, key_id, nonce, covers,
                                     count (the header is plaintext: no memory data in it)
    ciphertext                       ChaCha20-Poly1305 of zlib(JSON payload), additional data =
                                     magic + length + header, key = HKDF(sync key, "files")
    signature                        64 bytes, Ed25519 by the writing device over all the above

Design rules:
- Reading checks, in this order, before anything is decrypted or parsed: the size, the magic,
  the header's shape, that the header names the folder's device, that device's signature
  (only paired devices' keys are known), the key id; then decrypts (AEAD: any change of a byte
  fails), inflates with a hard output bound (no zip bomb), parses JSON (no pickle, ever) and
  checks every entry (:func:`memos_desktop.store.sync_merge.check_entries`). Every failure is
  one :class:`SyncError`; nothing touches the store until all of it passed.
- Plaintext never reaches the disk: the file is encrypted in memory and written to a temp
  file in the device's own folder, flushed, then renamed into place.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from memos_desktop.errors import SyncError
from memos_desktop.store.sync_merge import check_entries
from memos_desktop.sync.identity import DeviceIdentity, IdentityError, PublicIdentity

MAGIC = b"MEMOSYN1"
FORMAT = 1
MAX_FILE = 512 << 20
MAX_HEADER = 64 << 10
MAX_PLAIN = 1 << 30
KINDS = ("changeset", "snapshot")


def derive(sync_key: bytes, purpose: str, length: int = 32) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=length, salt=None, info=f"memos-sync:1:{purpose}".encode()
    ).derive(sync_key)


def key_id(sync_key: bytes) -> str:
    """A public name for a sync key (says which key, tells nothing of it)."""
    return derive(sync_key, "key-id", 8).hex()


@dataclass(frozen=True)
class Header:
    kind: str
    device: str
    seq: int
    key_id: str
    covers: dict[str, int]
    count: int


def file_name(kind: str, seq: int) -> str:
    return f"{'cs' if kind == 'changeset' else 'snap'}-{seq:010d}.mcs"


def parse_name(name: str) -> tuple[str, int] | None:
    for prefix, kind in (("cs-", "changeset"), ("snap-", "snapshot")):
        rest = name[len(prefix) : -4]
        if name.startswith(prefix) and name.endswith(".mcs") and len(rest) == 10 and rest.isdigit():
            return kind, int(rest)
    return None


def encode(
    ident: DeviceIdentity,
    sync_key: bytes,
    kind: str,
    seq: int,
    entries: list[dict[str, Any]],
    covers: dict[str, int] | None = None,
) -> bytes:
    payload = json.dumps({"entries": entries}, separators=(",", ":")).encode()
    return seal(ident, sync_key, kind, seq, payload, len(entries), covers)


def seal(
    ident: DeviceIdentity,
    sync_key: bytes,
    kind: str,
    seq: int,
    payload: bytes,
    count: int,
    covers: dict[str, int] | None = None,
) -> bytes:
    """Compress, encrypt and sign a JSON ``payload`` (bytes) as a file of this device."""
    nonce = os.urandom(12)
    header = json.dumps(
        {
            "format": FORMAT,
            "kind": kind,
            "device": ident.device_id,
            "seq": seq,
            "key_id": key_id(sync_key),
            "nonce": base64.b64encode(nonce).decode("ascii"),
            "covers": covers or {},
            "count": count,
        },
        sort_keys=True,
    ).encode()
    head = MAGIC + struct.pack(">I", len(header)) + header
    plain = zlib.compress(payload, 6)
    body = head + ChaCha20Poly1305(derive(sync_key, "files")).encrypt(nonce, plain, head)
    return body + ident.sign(body)


def _bad(what: str, device: str) -> SyncError:
    return SyncError(
        f"a sync file from device {device} was refused: {what}; nothing from it was applied",
        hint="it is damaged, not finished copying yet, or not from that device; the next "
        "`memos-desktop sync now` tries again",
    )


def read_header(data: bytes, folder_device: str) -> tuple[Header, bytes, bytes]:
    """The header (unverified), the signed part and the signature."""
    if len(data) > MAX_FILE:
        raise _bad("it is larger than any changeset", folder_device)
    if len(data) < len(MAGIC) + 4 + 64 or not data.startswith(MAGIC):
        raise _bad("it is not a memos-desktop changeset (or a newer format)", folder_device)
    (n,) = struct.unpack(">I", data[8:12])
    if n > MAX_HEADER or 12 + n + 16 + 64 > len(data):
        raise _bad("its header length is wrong", folder_device)
    try:
        h = json.loads(data[12 : 12 + n].decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise _bad("its header is not JSON", folder_device) from exc
    want = {"format", "kind", "device", "seq", "key_id", "nonce", "covers", "count"}
    if not isinstance(h, dict) or set(h) != want:
        raise _bad("its header has the wrong fields", folder_device)
    if h["format"] != FORMAT or h["kind"] not in KINDS:
        raise _bad("its format or kind is unknown", folder_device)
    if h["device"] != folder_device:
        raise _bad("it names another device than the folder it is in", folder_device)
    ints = [h["seq"], h["count"]]
    covers = h["covers"]
    if not isinstance(covers, dict) or len(covers) > 10_000:
        raise _bad("its coverage is malformed", folder_device)
    ints += list(covers.values())
    if any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < 1 << 53 for i in ints):
        raise _bad("a number in its header is malformed", folder_device)
    if not all(isinstance(k, str) and k.isalnum() and len(k) <= 64 for k in covers):
        raise _bad("its coverage is malformed", folder_device)
    if not isinstance(h["key_id"], str) or not isinstance(h["nonce"], str):
        raise _bad("its key id or nonce is malformed", folder_device)
    header = Header(h["kind"], h["device"], h["seq"], h["key_id"], dict(covers), h["count"])
    return header, data[:-64], data[-64:]


def decode(
    data: bytes, peer: PublicIdentity, sync_key: bytes, name: str | None = None
) -> tuple[Header, list[dict[str, Any]]]:
    """Verify and open a file of ``peer``'s folder; :class:`SyncError` for anything wrong."""
    header, signed, sig = read_header(data, peer.device_id)
    try:
        peer.verify(sig, signed)
    except IdentityError as exc:
        raise _bad("its signature does not match the paired device's key", peer.device_id) from exc
    if name is not None and parse_name(name) != (header.kind, header.seq):
        raise _bad("its name does not match its header", peer.device_id)
    if header.key_id != key_id(sync_key):
        raise _bad("it is encrypted with another sync key (pair the devices again)", peer.device_id)
    (n,) = struct.unpack(">I", signed[8:12])
    head = signed[: 12 + n]
    try:
        nonce = base64.b64decode(json.loads(head[12:])["nonce"], validate=True)
        if len(nonce) != 12:
            raise ValueError("nonce")
        packed = ChaCha20Poly1305(derive(sync_key, "files")).decrypt(nonce, signed[12 + n :], head)
    except (InvalidTag, ValueError) as exc:
        raise _bad("it does not decrypt (damaged or tampered)", peer.device_id) from exc
    try:
        z = zlib.decompressobj()
        plain = z.decompress(packed, MAX_PLAIN)
        if z.unconsumed_tail or not z.eof or z.unused_data:
            raise ValueError("too large or truncated")
        payload = json.loads(plain.decode("utf-8"))
    except (zlib.error, ValueError, RecursionError, MemoryError) as exc:
        raise _bad("its content does not unpack", peer.device_id) from exc
    entries = check_entries(payload)
    if len(entries) != header.count:
        raise _bad("its entry count does not match its header", peer.device_id)
    return header, entries


def write_atomic(folder: Path, name: str, data: bytes) -> Path:
    """Write ``data`` (already encrypted) as ``folder/name``: temp file, flush, rename."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".tmp-{os.getpid()}-{os.urandom(4).hex()}-{name}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, folder / name)
    finally:
        if tmp.exists():
            tmp.unlink()
    return folder / name
