"""Export one cube to a ``.memcube`` file, streamed: one page of memories (with their versions
and vectors) in memory at a time, whatever the size of the cube.

Design rules:
- The file is written beside its destination under a temporary name and renamed when whole,
  so a failed or interrupted export never leaves a half file with the final name. The
  temporary file holds only ciphertext.
- Forgotten (soft-deleted) memories and device-local counters (use count, last used) are not
  exported; versions, sources and vectors are.
- KV states are a per-model cache and optional (``with_states``); adapters travel with the
  cube by default (parametric memory), each with its base model's hash.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memos_desktop import __version__
from memos_desktop.errors import InvalidInputError
from memos_desktop.store import cube_rows
from memos_desktop.store.profile import Store
from memos_desktop.store.records import Cube
from memos_desktop.sync.cube_schema import MAX_BATCH
from memos_desktop.sync.cubefile import (
    ACTIVATION,
    ADAPTER,
    FORMAT_VERSION,
    ITEMS,
    MANIFEST,
    MAX_RECORD,
    SUFFIX,
    CubeWriter,
    Sealing,
)
from memos_desktop.sync.identity import load_identity

Progress = Callable[[int, int], None]  # (done, total) memories

_VERSION_KEYS = (
    "item_id", "version", "text", "key", "type", "layer", "status", "confidence", "importance",
    "tags", "valid_from", "valid_to", "change", "reason", "changed_at", "device_id", "id", "hlc",
)  # fmt: skip


@dataclass(frozen=True)
class ExportReport:
    path: Path
    cube: str
    memories: int
    versions: int
    activations: int
    adapters: int
    skipped_blobs: int
    bytes: int
    seconds: float


def _version(r: tuple[Any, ...]) -> dict[str, Any]:
    d = dict(zip(_VERSION_KEYS, r, strict=True))
    d.pop("item_id")
    d["tags"] = json.loads(d["tags"])
    return d


def _item(r: tuple[Any, ...], versions: list[tuple[Any, ...]], has_vector: bool) -> dict[str, Any]:
    """One memory's JSON from its row (``store.memory_rows.ITEM_COLUMNS`` order)."""
    return {
        "id": r[1],
        "text": r[3],
        "key": r[4],
        "type": r[5],
        "layer": r[6],
        "status": r[7],
        "source": r[8],
        "confidence": r[9],
        "importance": r[10],
        "pinned": bool(r[11]),
        "tags": json.loads(r[12]),
        "sources": json.loads(r[13]),
        "valid_from": r[14],
        "valid_to": r[15],
        "created_at": r[16],
        "updated_at": r[17],
        "version": r[20],
        "supersedes": r[21],
        "superseded_by": r[22],
        "context": r[25],
        "vector": has_vector,
        "versions": [_version(v) for v in versions],
    }


def export_cube(
    store: Store,
    cube: Cube,
    dest: Path,
    sealing: Sealing,
    *,
    with_states: bool = False,
    with_adapters: bool = True,
    progress: Progress | None = None,
    batch: int = 1000,
) -> ExportReport:
    """Write ``cube`` to ``dest`` (``.memcube`` is added when it has no suffix)."""
    t0 = time.perf_counter()
    dest = Path(dest).expanduser()
    if not dest.suffix:
        dest = dest.with_suffix(SUFFIX)
    if dest.is_dir():
        raise InvalidInputError(f"{dest} is a folder", hint="give the path of the file to write")
    if not dest.parent.is_dir():
        raise InvalidInputError(
            f"the folder {dest.parent} does not exist", hint="create it or choose another path"
        )
    batch = max(1, min(batch, MAX_BATCH))
    identity = load_identity(store.db)
    owner = store.db.scalar("SELECT name FROM users WHERE id = ?", (cube.owner_id,)) or ""
    manifest: dict[str, Any] = {
        "kind": "memcube-manifest",
        "format_version": FORMAT_VERSION,
        "cube": {
            "id": cube.id,
            "name": cube.name,
            "description": cube.description,
            "owner": str(owner),
        },
        "embedding": {"model": cube.embed_model, "dim": cube.embed_dim},
        "counts": {},  # read in the export's snapshot, below
        "created_at": time.time(),
        "device_id": identity.device_id,
        "exported_by": str(identity.public),
        "app": f"memos-desktop {__version__}",
    }
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    done = versions = states = adapters = skipped = 0
    try:
        with open(tmp, "wb") as fp:
            w = CubeWriter(fp, sealing, identity)
            # The counts a reader checks are what is written, so read them in one snapshot.
            with cube_rows.read_snapshot(store.db):
                counts = cube_rows.counts(store.db, cube.id)
                if not with_states:
                    counts["activations"] = 0
                if not with_adapters:
                    counts["adapters"] = 0
                manifest["counts"] = counts
                w.record(MANIFEST, manifest)
                vectors = cube_rows.VectorReader(store.db, cube.embed_dim)
                for page in cube_rows.item_pages(store.db, cube.id, batch):
                    vs = cube_rows.versions_of(store.db, [r[1] for r in page])
                    vecs = vectors.read([r[0] for r in page if r[24]])
                    has = [r[0] in vecs and r[24] == cube.embed_model for r in page]
                    meta: dict[str, Any] = {
                        "items": [
                            _item(r, vs.get(r[1], []), h) for r, h in zip(page, has, strict=True)
                        ]
                    }
                    tail = b"".join(vecs[r[0]] for r, h in zip(page, has, strict=True) if h)
                    w.record(ITEMS, meta, tail)
                    done += len(page)
                    versions += sum(len(v) for v in vs.values())
                    if progress is not None:
                        progress(done, counts["memories"])
                if with_states:
                    for r in cube_rows.activation_rows(store.db, cube.id):
                        tail = bytes(r[5]) + bytes(r[6])
                        if len(tail) + 1024 > MAX_RECORD:
                            skipped += 1
                            continue
                        keys = ("model_sha256", "adapter_id", "prefix_sha256", "settings_key")
                        smeta = {**dict(zip(keys, r[:4], strict=True)), "n_tokens": int(r[4])}
                        w.record(ACTIVATION, smeta, tail)
                        states += 1
                if with_adapters:
                    for r in cube_rows.adapter_rows(store.db, cube.id):
                        if len(r[5]) + 4096 > MAX_RECORD:
                            skipped += 1
                            continue
                        metrics = {
                            k: float(v)
                            for k, v in json.loads(r[3]).items()
                            if isinstance(v, int | float) and not isinstance(v, bool)
                        }
                        ameta = {
                            "name": r[0],
                            "base_model_sha256": r[1],
                            "format": r[2],
                            "metrics": metrics,
                            "sha256": r[4],
                        }
                        w.record(ADAPTER, ameta, bytes(r[5]))
                        adapters += 1
            w.finish(
                {
                    "memories": done,
                    "versions": versions,
                    "activations": states,
                    "adapters": adapters,
                }
            )
            fp.flush()
            os.fsync(fp.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if counts["memories"] != done or counts["versions"] != versions:
        raise AssertionError("export counts changed inside one snapshot")  # pragma: no cover
    return ExportReport(
        dest,
        cube.name,
        done,
        versions,
        states,
        adapters,
        skipped,
        dest.stat().st_size,
        time.perf_counter() - t0,
    )
