"""Import a ``.memcube`` file: verify all of it, then apply all of it in one transaction.

Design rules:
- Pass 1 reads the whole stream into nothing: every record is decrypted, authenticated and
  checked field by field, the counts are checked against the signed manifest and end record,
  and the Ed25519 signature is verified. Only then is the store touched. Hostile input (cut,
  flipped bits, another version, a wrong passphrase, absurd counts, deep JSON, odd names)
  ends in :class:`CubeFileError` with the store unchanged.
- Pass 2 reads the file again (with the file key of pass 1: no second scrypt) and applies it
  in one write transaction; if the bytes differ from what pass 1 verified (the transcript
  digest), the transaction rolls back.
- Merge by memory id, deciding by version ids: the file's versions are a superset of the
  local ones (updated), a subset (skipped), or both sides have versions the other lacks
  (conflicting: the local text stays, the file's versions join the history). A memory new to
  the cube whose text the cube already holds is skipped (content hash).
- The file's vectors are used when its embedding model and dimension are the cube's;
  otherwise the text is imported and a durable ``reembed`` job is queued for the cube.
- The signer is checked against ``known`` (trusted public identities); an unknown signer is
  reported (``trust == "unknown"``), or refused with ``require_known``.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from memos_desktop.errors import InvalidInputError
from memos_desktop.memory import reembed
from memos_desktop.store import cube_rows, devices
from memos_desktop.store.profile import Store
from memos_desktop.store.records import Cube, User, content_hash
from memos_desktop.sync import cube_schema as schema
from memos_desktop.sync.cubefile import (
    ACTIVATION,
    ADAPTER,
    ITEMS,
    MANIFEST,
    CubeFileError,
    CubeReader,
    Opening,
    ReadResult,
    trust,
)
from memos_desktop.sync.identity import DeviceIdentity, PublicIdentity

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (phase "verify" | "apply", done, total)


# Pass 1 keeps the digest of each of the first MAX_DIGESTS records (32 bytes each: 32 MiB at
# most, for a forged file of a million tiny records), and pass 2 skips re-checking the fields
# of a record whose bytes match; records beyond are checked again in full.
MAX_DIGESTS = 1_000_000


def _changed() -> CubeFileError:
    return CubeFileError(
        "the cube file changed while it was being imported",
        hint="nothing was imported; try again once it is no longer being written",
    )


class UntrustedSignerError(CubeFileError):
    """The file verifies, but its signer is not among the trusted devices."""


@dataclass(frozen=True)
class Verified:
    """What pass 1 established about a file."""

    manifest: schema.Manifest
    result: ReadResult
    file_key: bytes
    trust: str
    counts: dict[str, int]
    digests: list[bytes]  # of the first records (MAX_DIGESTS), checked again by pass 2


@dataclass
class ImportReport:
    cube: str
    cube_id: str
    created_cube: bool
    added: int = 0
    updated: int = 0
    skipped: int = 0
    conflicting: int = 0
    versions_added: int = 0
    vectors_kept: int = 0
    reembed_queued: int = 0
    reembed_job: int | None = None
    activations: int = 0
    adapters: int = 0
    signer: str = ""
    signer_device: str = ""
    trust: str = "unknown"
    seconds: float = 0.0
    conflicts: list[str] = field(default_factory=list)  # ids of conflicting memories (first 100)

    def summary(self) -> str:
        s = (
            f"{self.added} added, {self.updated} updated, {self.skipped} skipped, "
            f"{self.conflicting} conflicting"
        )
        if self.reembed_queued:
            s += f"; {self.reembed_queued} to re-embed (job {self.reembed_job})"
        return s


def peek_identity(store: Store) -> DeviceIdentity | None:
    """This device's identity if it has one (never creates it: a refused import writes
    nothing, and a file cannot have been encrypted for keys that do not exist yet)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    sk = devices.read_secret(store.db, devices.SIGNING_KEY)
    ak = devices.read_secret(store.db, devices.AGREEMENT_KEY)
    if sk is None or ak is None:
        return None
    return DeviceIdentity(
        store.changelog.device_id,
        Ed25519PrivateKey.from_private_bytes(sk),
        X25519PrivateKey.from_private_bytes(ak),
    )


def _open(path: Path) -> IO[bytes]:
    path = Path(path).expanduser()
    if not path.is_file():
        raise InvalidInputError(f"no cube file at {path}", hint="check the path")
    return open(path, "rb")


def _check_counts(seen: dict[str, int], declared: dict[str, int]) -> None:
    for k, n in seen.items():
        if n > declared[k]:
            raise CubeFileError(
                f"the cube file holds more {k} than its manifest declares (damaged or forged)",
                hint="nothing was imported",
            )


def verify(
    path: Path,
    opening: Opening,
    *,
    known: Sequence[PublicIdentity] = (),
    me: PublicIdentity | None = None,
    progress: Progress | None = None,
) -> Verified:
    """Pass 1: read, decrypt and check everything; touches no store."""
    with _open(path) as fp:
        reader = CubeReader(fp, opening)
        man: schema.Manifest | None = None
        seen = {"memories": 0, "versions": 0, "activations": 0, "adapters": 0}
        digests: list[bytes] = []
        for rec in reader.records():
            if len(digests) < MAX_DIGESTS:
                digests.append(rec.digest)
            if rec.kind == MANIFEST:
                man = schema.manifest(rec.meta)
                continue
            assert man is not None
            if rec.kind == ITEMS:
                batch, _ = schema.items(rec.meta, rec.tail, man.embed_dim)
                seen["memories"] += len(batch)
                seen["versions"] += sum(len(d["versions"]) for d in batch)
                if progress is not None:
                    progress("verify", seen["memories"], man.counts["memories"])
            elif rec.kind == ACTIVATION:
                schema.activation(rec.meta, rec.tail)
                seen["activations"] += 1
            elif rec.kind == ADAPTER:
                a = schema.adapter(rec.meta, rec.tail)
                if hashlib.sha256(a["blob"]).hexdigest() != a["sha256"]:
                    raise schema.bad("adapter checksum")
                seen["adapters"] += 1
            _check_counts(seen, man.counts)
        assert man is not None
        summary = reader.result.summary
        if (
            summary != seen
            or seen["memories"] != man.counts["memories"]
            or (seen["versions"] != man.counts["versions"])
        ):
            raise CubeFileError(
                "the cube file's contents do not match its declared counts (damaged or forged)",
                hint="nothing was imported",
            )
        signer = reader.result.signer
        assert signer is not None
        if man.device_id != signer.device_id:
            raise CubeFileError("the cube file's manifest and signer name different devices")
        return Verified(
            man, reader.result, reader.file_key, trust(signer, me, known), seen, digests
        )


def import_cube(
    store: Store,
    path: Path,
    opening: Opening,
    *,
    owner: User,
    embed_model: str | None,
    embed_dim: int | None,
    into: Cube | None = None,
    name: str | None = None,
    known: Sequence[PublicIdentity] = (),
    require_known: bool = False,
    with_states: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Verify ``path`` and import it into a new cube (named ``name`` or as in the file), or
    merge it into ``into``. ``embed_model``/``embed_dim``: this device's embedder (None: keep
    the file's model for a new cube)."""
    t0 = time.perf_counter()
    me = peek_identity(store)
    opening = Opening(opening.passphrase, opening.identity or me)
    v = verify(path, opening, known=known, me=me.public if me else None, progress=progress)
    man = v.manifest
    signer = v.result.signer
    assert signer is not None
    if require_known and v.trust == "unknown":
        raise UntrustedSignerError(
            f"the cube file is signed by device {signer.device_id}, which is not a trusted "
            "device of yours",
            hint="pair the device first, or import without requiring a known signer",
        )
    if into is None:
        new_name = (name or man.name).strip()
        existing = [c for c in store.cubes.list(owner) if c.name == new_name]
        if existing:
            raise InvalidInputError(
                f"you already have a cube named {new_name!r}",
                hint=f"merge into it with --into {new_name!r}, or import under another name "
                "with --name",
            )
    with store.db.write() as c:
        created = into is None
        if into is None:
            model = embed_model or man.embed_model
            dim = embed_dim or man.embed_dim
            cube = store.cubes.create(
                owner, new_name, embed_model=model, embed_dim=dim, description=man.description
            )
        else:
            cube = into
        report = ImportReport(cube.name, cube.id, created, signer=str(signer))
        report.signer_device, report.trust = signer.device_id, v.trust
        use_vectors = man.embed_model == cube.embed_model and man.embed_dim == cube.embed_dim
        applier = _Applier(store, c, cube, use_vectors, report)
        with _open(path) as fp:
            reader = CubeReader(fp, opening, file_key=v.file_key)
            for i, rec in enumerate(reader.records()):
                checked = i < len(v.digests)
                if checked and rec.digest != v.digests[i]:
                    raise _changed()
                if rec.kind == ITEMS:
                    batch, vecs = (
                        schema.items_checked_before(rec.meta, rec.tail, man.embed_dim)
                        if checked
                        else schema.items(rec.meta, rec.tail, man.embed_dim)
                    )
                    applier.batch(batch, vecs)
                    if progress is not None:
                        progress("apply", applier.done, man.counts["memories"])
                elif rec.kind == ACTIVATION and with_states:
                    a = schema.activation(rec.meta, rec.tail)
                    store.activations.put(_State(a), user_id=owner.id, cube_id=cube.id)
                    report.activations += 1
                elif rec.kind == ADAPTER:
                    a = schema.adapter(rec.meta, rec.tail)
                    store.adapters.put(
                        name=a["name"],
                        base_model_sha256=a["base_model_sha256"],
                        blob=a["blob"],
                        user_id=owner.id,
                        cube_id=cube.id,
                        metrics=a["metrics"],
                        format=a["format"],
                    )
                    report.adapters += 1
            if reader.result.digest != v.result.digest:
                raise _changed()
        missing = cube_rows.count_missing_vectors(store.db, cube.id, cube.embed_model)
        if missing and embed_model is not None and embed_model == cube.embed_model:
            report.reembed_queued = missing
            report.reembed_job = store.jobs.enqueue(
                reembed.REEMBED.name, {"cube_id": cube.id}, dedupe_key=f"reembed:{cube.id}"
            )
    report.seconds = time.perf_counter() - t0
    log.info(
        "imported cube %s: %s (signer %s, %s)",
        cube.id,
        report.summary(),
        signer.device_id,
        v.trust,
    )
    return report


@dataclass(frozen=True)
class _State:
    """An imported KV state, in the shape ``ActivationRepo.put`` takes."""

    d: dict[str, Any]

    @property
    def model_sha256(self) -> str:
        return str(self.d["model_sha256"])

    @property
    def adapter_id(self) -> str:
        return str(self.d["adapter_id"])

    @property
    def prefix_sha256(self) -> str:
        return str(self.d["prefix_sha256"])

    @property
    def settings_key(self) -> str:
        return str(self.d["settings_key"])

    @property
    def token_ids(self) -> tuple[int, ...]:
        return tuple(int(t) for t in np.frombuffer(self.d["token_ids"], dtype="<i4"))

    @property
    def state(self) -> bytes:
        return bytes(self.d["state"])

    @property
    def n_tokens(self) -> int:
        return int(self.d["n_tokens"])


class _Applier:
    """Pass 2's writes, batch by batch, inside the import's transaction."""

    def __init__(
        self, store: Store, c: Any, cube: Cube, use_vectors: bool, report: ImportReport
    ) -> None:
        self.c = c
        self.cube = cube
        self.use_vectors = use_vectors
        self.report = report
        self.w = cube_rows.ImportWriter(c, store.changelog, cube.id, cube.embed_dim)
        self.done = 0

    def batch(self, batch: list[dict[str, Any]], vecs: np.ndarray[Any, Any]) -> None:
        r = self.report
        ids = [d["id"] for d in batch]
        ex = cube_rows.existing_items(self.c, ids)
        local_versions = cube_rows.version_ids_of(
            self.c, [i for i in ids if i in ex and ex[i][1] == self.cube.id]
        )
        hashes = [content_hash(d["text"]) for d in batch]
        live = cube_rows.live_hashes(self.c, self.cube.id, hashes)
        if self.use_vectors and len(vecs):
            norms = np.linalg.norm(vecs, axis=1, keepdims=True)
            norms[norms == 0] = 1.0
            vecs = np.ascontiguousarray(vecs / norms, dtype=np.float32)
        k = 0
        rowid = cube_rows.next_rowid(self.c)
        adds: list[cube_rows.NewRow] = []
        versions: list[tuple[str, list[dict[str, Any]]]] = []
        # A forged file may repeat an id: within a batch it is caught here, across batches
        # the earlier one is in the table by then (and merges).
        batch_ids: set[str] = set()
        for d, h in zip(batch, hashes, strict=True):
            self.done += 1
            vec: bytes | None = None
            if d["vector"]:
                if self.use_vectors:
                    vec = vecs[k].tobytes()
                k += 1
            model = self.cube.embed_model if vec is not None else ""
            found = ex.get(d["id"])
            if found is not None and found[1] == self.cube.id:
                if self._merge(d, h, found, local_versions.get(d["id"], set()), vec, model):
                    versions.append((d["id"], d["versions"]))
                continue
            if h in live:
                r.skipped += 1
                continue
            if found is not None or d["id"] in batch_ids:
                # The id is taken (by a memory of another cube here, or earlier in this
                # file): this one is a copy, with ids of its own.
                d = {
                    **d,
                    "id": uuid.uuid4().hex,
                    "versions": [{**x, "id": secrets.token_hex(16)} for x in d["versions"]],
                }
            adds.append((rowid, d, h, model, vec))
            versions.append((d["id"], d["versions"]))
            batch_ids.add(d["id"])
            rowid += 1
            r.added += 1
            r.vectors_kept += vec is not None
            live.add(h)
        self.w.add_many(adds)
        r.versions_added += self.w.versions(versions)

    def _merge(
        self,
        d: dict[str, Any],
        h: str,
        found: tuple[int, str, str],
        local: set[str],
        vec: bytes | None,
        model: str,
    ) -> bool:
        """Merge one memory the cube has; True when the file's versions are to be added."""
        r = self.report
        incoming = {x["id"] for x in d["versions"]}
        if incoming <= local:
            r.skipped += 1
            return False
        if local <= incoming or found[2] == h:
            self.w.update(found[0], d, h, model, vec)
            r.updated += 1
            r.vectors_kept += vec is not None
        else:
            r.conflicting += 1
            if len(r.conflicts) < 100:
                r.conflicts.append(d["id"])
        return True
