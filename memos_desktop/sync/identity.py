"""Device identity: an Ed25519 key that signs what this device exports (cube files, sync
changesets) and an X25519 key that others encrypt to. Both are made on first use and kept in
the profile's encrypted database (:mod:`memos_desktop.store.devices`).

Public identities are exchanged as text: ``memos-device:1:<device id>:<ed25519 b64>:<x25519 b64>``.
A person compares :func:`short_code` on both screens when pairing two devices: it is a hash of
both public identities in a fixed order, so both devices show the same code, and a swapped key
shows a different one.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from memos_desktop.errors import MemosError
from memos_desktop.store import devices
from memos_desktop.store.changelog import changelog_for
from memos_desktop.store.db import Database

PREFIX = "memos-device:1:"


class IdentityError(MemosError):
    """A public identity string that does not parse, or a signature that does not verify."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _raw_public(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class PublicIdentity:
    """What another device knows of this one: its id and two public keys (32 bytes each)."""

    device_id: str
    signing: bytes
    agreement: bytes

    def __str__(self) -> str:
        return f"{PREFIX}{self.device_id}:{_b64(self.signing)}:{_b64(self.agreement)}"

    @classmethod
    def parse(cls, text: str) -> PublicIdentity:
        text = text.strip()
        if not text.startswith(PREFIX) or len(text) > 512:
            raise IdentityError(
                "that is not a memos-desktop device identity",
                hint="copy the whole line that `memos-desktop sync identity` prints on the other "
                "device (it starts with memos-device:1:)",
            )
        parts = text[len(PREFIX) :].split(":")
        try:
            if len(parts) != 3 or not parts[0].isalnum():
                raise ValueError("shape")
            signing, agreement = _unb64(parts[1]), _unb64(parts[2])
            if len(signing) != 32 or len(agreement) != 32:
                raise ValueError("length")
            Ed25519PublicKey.from_public_bytes(signing)
            X25519PublicKey.from_public_bytes(agreement)
        except ValueError as exc:
            raise IdentityError(
                "that device identity is damaged (a key has the wrong length or encoding)",
                hint="copy the whole line again from the other device",
            ) from exc
        return cls(parts[0], signing, agreement)

    def verify(self, signature: bytes, data: bytes) -> None:
        try:
            Ed25519PublicKey.from_public_bytes(self.signing).verify(signature, data)
        except InvalidSignature as exc:
            raise IdentityError(
                f"the signature does not match device {self.device_id}'s key",
                hint="the data was changed after it was signed, or signed by another device",
            ) from exc

    def agreement_key(self) -> X25519PublicKey:
        return X25519PublicKey.from_public_bytes(self.agreement)


@dataclass(frozen=True)
class DeviceIdentity:
    """This device's private keys. Held in memory only while the profile is open."""

    device_id: str
    signing_key: Ed25519PrivateKey
    agreement_key: X25519PrivateKey

    @property
    def public(self) -> PublicIdentity:
        return PublicIdentity(
            self.device_id,
            _raw_public(self.signing_key.public_key()),
            _raw_public(self.agreement_key.public_key()),
        )

    def sign(self, data: bytes) -> bytes:
        return self.signing_key.sign(data)


def load_identity(db: Database) -> DeviceIdentity:
    """This device's identity, created (once, race-free) on first use."""
    sk = devices.read_secret(db, devices.SIGNING_KEY)
    if sk is None:
        sk = devices.write_secret_once(
            db, devices.SIGNING_KEY, Ed25519PrivateKey.generate().private_bytes_raw()
        )
    ak = devices.read_secret(db, devices.AGREEMENT_KEY)
    if ak is None:
        ak = devices.write_secret_once(
            db, devices.AGREEMENT_KEY, X25519PrivateKey.generate().private_bytes_raw()
        )
    return DeviceIdentity(
        changelog_for(db).device_id,
        Ed25519PrivateKey.from_private_bytes(sk),
        X25519PrivateKey.from_private_bytes(ak),
    )


def short_code(a: PublicIdentity, b: PublicIdentity) -> str:
    """Six digits in two groups, the same on both devices: compare them when pairing."""
    first, second = sorted([str(a), str(b)])
    digest = hashlib.sha256(f"memos-pair:1\n{first}\n{second}".encode()).digest()
    n = int.from_bytes(digest[:8], "big") % 1_000_000
    return f"{n // 1000:03d} {n % 1000:03d}"
