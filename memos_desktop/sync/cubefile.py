"""The ``.memcube`` container: header, file-key wrapping, and the chunked, authenticated stream
of records (the format is specified in ``docs/memcube-format.md``; keep both in step).

Design rules:
- A cube file is untrusted input. Every length is bounded *before* anything is allocated or
  read (header, record, JSON body, recipients, scrypt work); nothing is unpickled or executed;
  JSON is parsed with NaN/Infinity refused and nesting errors turned into :class:`CubeFileError`.
- Only ``cryptography`` primitives: scrypt (the parameters and bounds of ``key.json``) or X25519
  + HKDF-SHA256 wrap a random 32-byte file key with ChaCha20-Poly1305; the payload key is
  HKDF(file key, header nonce). Records are sealed STREAM-style (age): the nonce is an 11-byte
  big-endian sequence number and a last-record flag, and the AAD is the SHA-256 of the header,
  so reordering, dropping, truncating or changing any byte (header included) fails to open.
- The exporting device signs (Ed25519) a transcript hash of the header and every record's
  plaintext; the signature is the final record. A reader knows the file is whole and signed
  only when :meth:`CubeReader.records` has returned normally.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from memos_desktop.errors import InvalidInputError
from memos_desktop.store import keys
from memos_desktop.sync.identity import DeviceIdentity, IdentityError, PublicIdentity

MAGIC = b"MEMCUBE\x00"
FORMAT_VERSION = 1
SUFFIX = ".memcube"

MAX_HEADER = 64 * 1024
MAX_RECORD = 64 * 1024 * 1024  # plaintext bytes of one record (an adapter or a KV state)
MAX_JSON = 16 * 1024 * 1024  # the JSON part of one record
MAX_RECIPIENTS = 64
MAX_RECORDS = 1 << 40  # far below the 2**88 sequence space; a bound, not a real limit
TAG = 16
FILE_KEY_BYTES = 32
NONCE_SEED_BYTES = 16
ZERO_NONCE = b"\x00" * 12

# Record kinds (one byte at the start of each record's plaintext).
MANIFEST = b"M"
ITEMS = b"I"
ACTIVATION = b"A"
ADAPTER = b"P"
END = b"E"
KINDS = (MANIFEST, ITEMS, ACTIVATION, ADAPTER, END)

_SIG_CONTEXT = b"memcube/1 signature\n"
_PAYLOAD_INFO = b"memcube/1 payload"
_X25519_INFO = b"memcube/1 X25519"
_PASS_AAD = b"memcube/1 scrypt"


class CubeFileError(InvalidInputError):
    """A cube file that cannot be read: damaged, truncated, tampered with, of another version,
    or not meant for this device or passphrase. Nothing was imported."""


class CubePassphraseError(CubeFileError):
    """The passphrase does not open this cube file."""


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def unb64(text: Any, what: str, lo: int = 0, hi: int = 1 << 20) -> bytes:
    if not isinstance(text, str) or len(text) > hi * 2:
        raise CubeFileError(f"the cube file's {what} is not base64 text")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise CubeFileError(f"the cube file's {what} is not valid base64") from exc
    if not lo <= len(raw) <= hi:
        raise CubeFileError(f"the cube file's {what} has {len(raw)} bytes, expected {lo}..{hi}")
    return raw


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def loads(raw: bytes, what: str) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, nesting too deep or numbers too long -> error."""
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise CubeFileError(
            f"the cube file's {what} is not valid JSON ({type(exc).__name__})"
        ) from exc


def dumps(value: Any) -> bytes:
    return json.dumps(
        value, separators=(",", ":"), sort_keys=True, allow_nan=False, ensure_ascii=False
    ).encode("utf-8")


# --- keys -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sealing:
    """How a new file is encrypted: a passphrase, or the public identities of its readers."""

    passphrase: str | None = None
    recipients: tuple[PublicIdentity, ...] = ()

    def __post_init__(self) -> None:
        if (self.passphrase is None) == (not self.recipients):
            raise InvalidInputError(
                "a cube file is encrypted for a passphrase or for recipients (one of them)",
                hint="give --passphrase, or --to with the reader's device identity",
            )
        if self.passphrase is not None and not self.passphrase:
            raise InvalidInputError("an empty passphrase is not allowed", hint="choose one")
        if len(self.recipients) > MAX_RECIPIENTS:
            raise InvalidInputError(f"at most {MAX_RECIPIENTS} recipients")


@dataclass(frozen=True)
class Opening:
    """What a reader has to open a file with: a passphrase and/or this device's identity."""

    passphrase: str | None = None
    identity: DeviceIdentity | None = None


def _hkdf(secret: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(secret)


def _raw(pub: X25519PublicKey) -> bytes:
    return pub.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _wrap_x25519(file_key: bytes, recipient: bytes) -> dict[str, str]:
    eph = X25519PrivateKey.generate()
    epk = _raw(eph.public_key())
    shared = eph.exchange(X25519PublicKey.from_public_bytes(recipient))
    kek = _hkdf(shared, epk + recipient, _X25519_INFO)
    return {
        "epk": b64(epk),
        "wrapped": b64(ChaCha20Poly1305(kek).encrypt(ZERO_NONCE, file_key, epk)),
    }


def _unwrap_x25519(stanza: Any, me: X25519PrivateKey) -> bytes | None:
    if not isinstance(stanza, dict) or set(stanza) != {"epk", "wrapped"}:
        raise CubeFileError("a recipient entry of the cube file is malformed")
    epk = unb64(stanza["epk"], "recipient key", 32, 32)
    wrapped = unb64(stanza["wrapped"], "wrapped key", FILE_KEY_BYTES + TAG, FILE_KEY_BYTES + TAG)
    try:
        shared = me.exchange(X25519PublicKey.from_public_bytes(epk))
    except ValueError:
        return None  # a low-order point: not for us (and not for anyone)
    kek = _hkdf(shared, epk + _raw(me.public_key()), _X25519_INFO)
    try:
        return ChaCha20Poly1305(kek).decrypt(ZERO_NONCE, wrapped, epk)
    except InvalidTag:
        return None


def new_header(sealing: Sealing, file_key: bytes) -> dict[str, Any]:
    header: dict[str, Any] = {
        "format": "memcube",
        "version": FORMAT_VERSION,
        "nonce": b64(secrets.token_bytes(NONCE_SEED_BYTES)),
    }
    if sealing.passphrase is not None:
        salt = secrets.token_bytes(16)
        kek = keys.passphrase_kek(
            sealing.passphrase, salt, keys.SCRYPT_N, keys.SCRYPT_R, keys.SCRYPT_P
        )
        header["mode"] = "passphrase"
        header["kdf"] = {
            "name": "scrypt",
            "n": keys.SCRYPT_N,
            "r": keys.SCRYPT_R,
            "p": keys.SCRYPT_P,
            "salt": b64(salt),
        }
        header["wrapped"] = b64(ChaCha20Poly1305(kek).encrypt(ZERO_NONCE, file_key, _PASS_AAD))
    else:
        header["mode"] = "recipients"
        header["recipients"] = [_wrap_x25519(file_key, r.agreement) for r in sealing.recipients]
    return header


def open_file_key(header: dict[str, Any], opening: Opening) -> bytes:
    """The file key, or a clear error saying what would open the file."""
    mode = header.get("mode")
    if mode == "passphrase":
        if set(header) != {"format", "version", "nonce", "mode", "kdf", "wrapped"}:
            raise CubeFileError("the cube file's header has unexpected fields")
        try:
            n, r, p = keys.check_scrypt(header["kdf"])
        except ValueError as exc:
            raise CubeFileError(f"the cube file's key derivation is refused: {exc}") from exc
        salt = base64.b64decode(header["kdf"]["salt"])
        wrapped = unb64(
            header["wrapped"], "wrapped key", FILE_KEY_BYTES + TAG, FILE_KEY_BYTES + TAG
        )
        if not opening.passphrase:
            raise CubePassphraseError(
                "this cube file is encrypted with a passphrase",
                hint="give the passphrase it was exported with",
            )
        kek = keys.passphrase_kek(opening.passphrase, salt, n, r, p)
        try:
            return ChaCha20Poly1305(kek).decrypt(ZERO_NONCE, wrapped, _PASS_AAD)
        except InvalidTag as exc:
            raise CubePassphraseError(
                "wrong passphrase for this cube file (or the file was changed)",
                hint="check the passphrase; nothing was imported",
            ) from exc
    if mode == "recipients":
        if set(header) != {"format", "version", "nonce", "mode", "recipients"}:
            raise CubeFileError("the cube file's header has unexpected fields")
        stanzas = header["recipients"]
        if not isinstance(stanzas, list) or not 1 <= len(stanzas) <= MAX_RECIPIENTS:
            raise CubeFileError("the cube file's recipient list is malformed")
        for stanza in stanzas:
            if opening.identity is None:  # no keys yet: nothing can have been sealed for us
                _unwrap_x25519(stanza, X25519PrivateKey.generate())  # the shape is still checked
                continue
            key = _unwrap_x25519(stanza, opening.identity.agreement_key)
            if key is not None:
                return key
        raise CubeFileError(
            "this cube file was not encrypted for this device",
            hint="ask the sender to export it --to this device's identity "
            "(`memos-desktop cubes identity` prints it), or with a passphrase",
        )
    raise CubeFileError(f"the cube file's encryption mode {str(mode)[:20]!r} is unknown")


# --- the record stream ----------------------------------------------------------------------


def _nonce(seq: int, last: bool) -> bytes:
    return seq.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _sig_message(digest: bytes) -> bytes:
    return _SIG_CONTEXT + digest


class CubeWriter:
    """Writes header + records to ``fp``; the last record is the signed end record."""

    def __init__(self, fp: IO[bytes], sealing: Sealing, signer: DeviceIdentity) -> None:
        self.fp = fp
        self.signer = signer
        file_key = os.urandom(FILE_KEY_BYTES)
        header = new_header(sealing, file_key)
        raw = dumps(header)
        fp.write(MAGIC + struct.pack(">HI", FORMAT_VERSION, len(raw)) + raw)
        self._aad = hashlib.sha256(MAGIC + raw).digest()
        nonce_seed = base64.b64decode(header["nonce"])
        self._aead = ChaCha20Poly1305(_hkdf(file_key, nonce_seed, _PAYLOAD_INFO))
        self._transcript = hashlib.sha256(self._aad)
        self._seq = 0
        self.bytes_written = len(MAGIC) + 6 + len(raw)

    def _seal(self, plaintext: bytes, last: bool) -> None:
        if len(plaintext) > MAX_RECORD:
            raise InvalidInputError(f"a cube record of {len(plaintext)} bytes is too large")
        ct = self._aead.encrypt(_nonce(self._seq, last), plaintext, self._aad)
        self.fp.write(struct.pack(">I", len(ct)) + ct)
        self.bytes_written += 4 + len(ct)
        self._seq += 1

    def record(self, kind: bytes, meta: Any, tail: bytes = b"") -> None:
        self.raw_record(kind, dumps(meta), tail)

    def raw_record(self, kind: bytes, body: bytes, tail: bytes = b"") -> None:
        """A record whose JSON part is ``body`` as given (tests forge hostile files with it)."""
        plaintext = kind + struct.pack(">I", len(body)) + body + tail
        self._transcript.update(struct.pack(">Q", len(plaintext)) + plaintext)
        self._seal(plaintext, last=False)

    def finish(self, summary: dict[str, Any]) -> None:
        """The end record: the summary and the signature over everything before it."""
        digest = self._transcript.digest()
        meta = {**summary, "signature": b64(self.signer.sign(_sig_message(digest)))}
        body = dumps(meta)
        self._seal(END + struct.pack(">I", len(body)) + body, last=True)


@dataclass(frozen=True)
class Record:
    kind: bytes
    meta: Any
    tail: bytes
    digest: bytes  # SHA-256 of the record's plaintext (a second read can match it to the first)


@dataclass
class ReadResult:
    """Filled as :meth:`CubeReader.records` runs; complete when it returns."""

    signer: PublicIdentity | None = None
    digest: bytes = b""
    summary: dict[str, Any] = field(default_factory=dict)
    records: int = 0


def read_header(fp: IO[bytes]) -> tuple[dict[str, Any], bytes]:
    start = fp.read(len(MAGIC) + 6)
    if len(start) < len(MAGIC) + 6 or not start.startswith(MAGIC):
        raise CubeFileError(
            "this is not a memos-desktop cube file (.memcube)",
            hint="choose a file that `memos-desktop cubes export` wrote",
        )
    version, hlen = struct.unpack(">HI", start[len(MAGIC) :])
    if version != FORMAT_VERSION:
        raise CubeFileError(
            f"this cube file has format version {version}; this memos-desktop reads version "
            f"{FORMAT_VERSION}",
            hint="upgrade memos-desktop to read newer cube files"
            if version > FORMAT_VERSION
            else "",
        )
    if not 2 <= hlen <= MAX_HEADER:
        raise CubeFileError(f"the cube file's header declares {hlen} bytes (at most {MAX_HEADER})")
    raw = fp.read(hlen)
    if len(raw) != hlen:
        raise CubeFileError("the cube file is truncated (its header is cut short)")
    header = loads(raw, "header")
    if (
        not isinstance(header, dict)
        or header.get("format") != "memcube"
        or header.get("version") != FORMAT_VERSION
    ):
        raise CubeFileError("the cube file's header is not a version-1 memcube header")
    return header, raw


class CubeReader:
    """Opens ``fp`` and yields its records; raises :class:`CubeFileError` on any damage."""

    def __init__(self, fp: IO[bytes], opening: Opening, *, file_key: bytes | None = None) -> None:
        self.fp = fp
        self.header, raw = read_header(fp)
        self.file_key = file_key or open_file_key(self.header, opening)
        self._aad = hashlib.sha256(MAGIC + raw).digest()
        seed = unb64(self.header.get("nonce"), "nonce", NONCE_SEED_BYTES, NONCE_SEED_BYTES)
        self._aead = ChaCha20Poly1305(_hkdf(self.file_key, seed, _PAYLOAD_INFO))
        self._transcript = hashlib.sha256(self._aad)
        self.result = ReadResult()

    def _next(self, seq: int) -> tuple[bytes, bool]:
        head = self.fp.read(4)
        if len(head) < 4:
            raise CubeFileError(
                "the cube file is truncated (it ends before its signed end record)",
                hint="copy the whole file again; nothing was imported",
            )
        (n,) = struct.unpack(">I", head)
        if not TAG < n <= MAX_RECORD + TAG:
            raise CubeFileError(f"a record of the cube file declares {n} bytes (damaged)")
        ct = self.fp.read(n)
        if len(ct) != n:
            raise CubeFileError("the cube file is truncated (a record is cut short)")
        for last in (False, True):
            try:
                return self._aead.decrypt(_nonce(seq, last), ct, self._aad), last
            except InvalidTag:
                continue
        raise CubeFileError(
            f"record {seq} of the cube file fails its integrity check (the file was changed "
            "or damaged)",
            hint="get an undamaged copy; nothing was imported",
        )

    def records(self) -> Iterator[Record]:
        """Every record up to (not including) the end record, whose signature is checked when
        the iteration ends; then ``self.result`` holds the signer, digest and summary."""
        seq = 0
        while True:
            if seq > MAX_RECORDS:
                raise CubeFileError("the cube file has too many records")
            plain, last = self._next(seq)
            seq += 1
            if len(plain) < 5 or plain[:1] not in KINDS:
                raise CubeFileError("a record of the cube file has an unknown kind")
            kind = plain[:1]
            (jlen,) = struct.unpack(">I", plain[1:5])
            if jlen > min(MAX_JSON, len(plain) - 5):
                raise CubeFileError("a record of the cube file declares too long a body")
            meta = loads(plain[5 : 5 + jlen], "record")
            tail = plain[5 + jlen :]
            if last != (kind == END):
                raise CubeFileError("the cube file's end record is out of place (damaged)")
            if seq == 1 and kind != MANIFEST:
                raise CubeFileError("the cube file does not start with its manifest")
            if kind == MANIFEST and seq != 1:
                raise CubeFileError("the cube file has a second manifest")
            if kind == END:
                self._finish(meta, tail)
                self.result.records = seq
                return
            if kind == MANIFEST:
                self.result.signer = _signer(meta)
            self._transcript.update(struct.pack(">Q", len(plain)) + plain)
            yield Record(kind, meta, tail, hashlib.sha256(plain).digest())

    def _finish(self, meta: Any, tail: bytes) -> None:
        if tail or not isinstance(meta, dict) or "signature" not in meta:
            raise CubeFileError("the cube file's end record is malformed")
        if self.fp.read(1):
            raise CubeFileError("the cube file has data after its end record (damaged)")
        signer = self.result.signer
        assert signer is not None  # the first record was the manifest
        digest = self._transcript.digest()
        sig = unb64(meta["signature"], "signature", 64, 64)
        try:
            signer.verify(sig, _sig_message(digest))
        except IdentityError as exc:
            raise CubeFileError(
                "the cube file's signature does not verify (it was changed after export)",
                hint="nothing was imported",
            ) from exc
        self.result.digest = digest
        self.result.summary = {k: v for k, v in meta.items() if k != "signature"}


def _signer(manifest: Any) -> PublicIdentity:
    text = manifest.get("exported_by") if isinstance(manifest, dict) else None
    if not isinstance(text, str):
        raise CubeFileError("the cube file's manifest names no exporting device")
    try:
        return PublicIdentity.parse(text)
    except IdentityError as exc:
        raise CubeFileError("the cube file's exporting device identity is damaged") from exc


def trust(
    signer: PublicIdentity, me: PublicIdentity | None, known: Sequence[PublicIdentity]
) -> str:
    """``self`` (this device), ``known`` (in the trusted list) or ``unknown``."""
    if me is not None and signer == me:
        return "self"
    return "known" if signer in known else "unknown"


def file_mode(fp: IO[bytes]) -> str:
    """``passphrase`` or ``recipients``: how the file is opened (reads the header only)."""
    header, _ = read_header(fp)
    mode = header.get("mode")
    if mode not in ("passphrase", "recipients"):
        raise CubeFileError("the cube file's encryption mode is unknown")
    return str(mode)
