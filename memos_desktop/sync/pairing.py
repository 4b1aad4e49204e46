"""Pairing through the sync folder.

Each device publishes ``devices/<id>/device.json``: its public identity and the id of its sync
key (if it has one), signed by its own Ed25519 key. Pairing device A with device B is an
explicit step on both: each shows :func:`short_code` of the two identities, the person checks
the two screens show the same code, and each device then trusts the other's keys (a swapped
key in the folder shows a different code). The device that holds the sync key sends it in
``devices/<A>/grant-<B>.json``: the key encrypted to B's X25519 key (an ephemeral X25519
exchange, HKDF-SHA256, ChaCha20-Poly1305: age's construction, from ``cryptography``), signed
by A. B takes a key only from a device it paired with.

Who holds the key: the first device set up on a folder makes one. A device set up while no
other had published one, in a folder where another did the same (the folder had not been
replicated yet), gives its own key up for the one it is granted if it has written nothing
with it yet and its id sorts after the granter's; both devices decide alike.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from memos_desktop.errors import SyncError
from memos_desktop.sync.changeset import key_id, write_atomic
from memos_desktop.sync.identity import (
    DeviceIdentity,
    IdentityError,
    PublicIdentity,
    short_code,
)

OFFER = "device.json"
MAX_JSON = 64 << 10


def devices_dir(folder: Path) -> Path:
    return folder / "memos-sync" / "devices"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _signed(ident: DeviceIdentity, body: dict[str, Any]) -> bytes:
    raw = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return json.dumps({"body": raw, "sig": _b64(ident.sign(raw.encode()))}).encode()


def _open_signed(path: Path) -> tuple[dict[str, Any], bytes, bytes]:
    """``(body, signed bytes, signature)`` of a signed JSON file, not yet verified."""
    try:
        if path.stat().st_size > MAX_JSON:
            raise ValueError("too large")
        outer = json.loads(path.read_bytes().decode("utf-8"))
        raw = outer["body"]
        sig = base64.b64decode(outer["sig"], validate=True)
        body = json.loads(raw)
        if not isinstance(body, dict):
            raise ValueError("shape")
        return body, raw.encode(), sig
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise SyncError(
            f"the pairing file {path} is damaged",
            hint="run `memos-desktop sync setup` again on the device it belongs to",
        ) from exc


def write_offer(ident: DeviceIdentity, folder: Path, sync_key: bytes | None) -> None:
    body = {
        "format": 1,
        "identity": str(ident.public),
        "name": platform.node()[:64],
        "key_id": key_id(sync_key) if sync_key else None,
        "at": time.time(),
    }
    write_atomic(devices_dir(folder) / ident.device_id, OFFER, _signed(ident, body))


@dataclass(frozen=True)
class Offer:
    identity: PublicIdentity
    name: str
    key_id: str | None


def read_offer(folder: Path, device_id: str) -> Offer:
    path = devices_dir(folder) / device_id / OFFER
    body, raw, sig = _open_signed(path)
    try:
        ident = PublicIdentity.parse(str(body["identity"]))
        ident.verify(sig, raw)
    except (KeyError, IdentityError) as exc:
        raise SyncError(
            f"the pairing offer of device {device_id} does not verify",
            hint="run `memos-desktop sync setup FOLDER` again on that device",
        ) from exc
    if ident.device_id != device_id:
        raise SyncError(f"the pairing offer in {path.parent} names another device")
    kid = body.get("key_id")
    return Offer(ident, str(body.get("name", ""))[:64], kid if isinstance(kid, str) else None)


def offers(folder: Path, me: str) -> list[Offer]:
    """Every other device's valid offer in the folder (damaged ones are left out)."""
    root = devices_dir(folder)
    out = []
    if root.is_dir():
        for d in sorted(root.iterdir()):
            if d.name == me or not (d / OFFER).is_file():
                continue
            try:
                out.append(read_offer(folder, d.name))
            except SyncError:
                continue
    return out


def code_for(ident: DeviceIdentity, other: PublicIdentity) -> str:
    return short_code(ident.public, other)


def _grant_key(shared: bytes, eph: bytes, to: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=eph + to, info=b"memos-sync:1:grant"
    ).derive(shared)


def write_grant(ident: DeviceIdentity, folder: Path, peer: PublicIdentity, sync_key: bytes) -> None:
    eph = X25519PrivateKey.generate()
    eph_pub = eph.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    k = _grant_key(eph.exchange(peer.agreement_key()), eph_pub, peer.agreement)
    nonce = os.urandom(12)
    kid = key_id(sync_key)
    aad = f"{ident.device_id}:{peer.device_id}:{kid}".encode()
    body = {
        "format": 1,
        "from": ident.device_id,
        "to": peer.device_id,
        "key_id": kid,
        "eph": _b64(eph_pub),
        "nonce": _b64(nonce),
        "ct": _b64(ChaCha20Poly1305(k).encrypt(nonce, sync_key, aad)),
    }
    write_atomic(
        devices_dir(folder) / ident.device_id, f"grant-{peer.device_id}.json", _signed(ident, body)
    )


def grant_path(folder: Path, granter: str, me: str) -> Path:
    return devices_dir(folder) / granter / f"grant-{me}.json"


def read_grant(ident: DeviceIdentity, folder: Path, peer: PublicIdentity) -> bytes | None:
    """The sync key ``peer`` granted this device, or None if it granted none yet."""
    path = grant_path(folder, peer.device_id, ident.device_id)
    if not path.is_file():
        return None
    body, raw, sig = _open_signed(path)
    try:
        peer.verify(sig, raw)
        if body["from"] != peer.device_id or body["to"] != ident.device_id:
            raise ValueError("names")
        eph = base64.b64decode(body["eph"], validate=True)
        k = _grant_key(
            ident.agreement_key.exchange(X25519PublicKey.from_public_bytes(eph)),
            eph,
            ident.public.agreement,
        )
        aad = f"{peer.device_id}:{ident.device_id}:{body['key_id']}".encode()
        key = ChaCha20Poly1305(k).decrypt(
            base64.b64decode(body["nonce"], validate=True),
            base64.b64decode(body["ct"], validate=True),
            aad,
        )
    except (IdentityError, KeyError, ValueError, TypeError, InvalidTag) as exc:
        raise SyncError(
            f"the sync key granted by device {peer.device_id} does not verify or decrypt",
            hint="pair the two devices again (`memos-desktop sync pair` on both)",
        ) from exc
    if len(key) != 32 or key_id(key) != body["key_id"]:
        raise SyncError(f"the sync key granted by device {peer.device_id} is damaged")
    return key
