"""Hostile cube files never hurt: truncated, tampered (bit flips anywhere), another version, a
wrong passphrase, absurd declared counts, deep JSON nesting, odd names. Each is refused with a
clear CubeFileError and the store's files stay byte-identical. Forged files are made with the
real writer and a real device key (so their crypto and signature are valid and only their
contents are hostile), and a fuzz run feeds thousands of mutations of a real export."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memos_desktop.config import Settings, resolve_paths
from memos_desktop.store.profile import Store, create_profile
from memos_desktop.store.records import NewMemory, Source
from memos_desktop.sync import cubefile
from memos_desktop.sync.cube_export import export_cube
from memos_desktop.sync.cube_import import import_cube
from memos_desktop.sync.cubefile import CubeFileError, CubeWriter, Opening, Sealing
from memos_desktop.sync.identity import load_identity
from tests.conftest import PASSPHRASE

DIM = 8
PW = "file passphrase"


def _store(name: str) -> Store:
    return create_profile(
        resolve_paths(),
        name,
        Settings(),
        method="passphrase",
        passphrase=PASSPHRASE,
        embed_model="test-embed",
        embed_dim=DIM,
    )


@pytest.fixture
def stores() -> Iterator[tuple[Store, Store]]:
    a, b = _store("a"), _store("b")
    cube = a.cubes.list()[0]
    items = [
        NewMemory(f"memory {i} about the garden", tags=("t",), sources=(Source(ref=f"r{i}"),))
        for i in range(12)
    ]
    a.memories.add_many(cube, items, np.random.default_rng(1).normal(size=(12, DIM)))
    load_identity(b.db)  # b has keys (what recipient mode needs), made before the snapshot
    yield a, b
    a.close()
    b.close()


def snapshot(s: Store) -> dict[str, str]:
    out = {}
    for suffix in ("", "-wal"):
        p = s.db.path.with_name(s.db.path.name + suffix)
        out[suffix] = hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else ""
    return out


def attempt(b: Store, path: Path, passphrase: str | None = PW) -> CubeFileError:
    with pytest.raises(CubeFileError) as info:
        import_cube(
            b,
            path,
            Opening(passphrase=passphrase),
            owner=b.users.list()[0],
            embed_model="test-embed",
            embed_dim=DIM,
            name="imported",
        )
    msg = str(info.value)
    assert msg and "Traceback" not in msg and len(msg) < 600
    return info.value


def exported(a: Store, tmp: Path, sealing: Sealing) -> bytes:
    out = tmp / "good.memcube"
    export_cube(a, a.cubes.list()[0], out, sealing)
    return out.read_bytes()


# --- forging ---------------------------------------------------------------------------------


def manifest(a: Store, **over: Any) -> dict[str, Any]:
    ident = load_identity(a.db)
    m: dict[str, Any] = {
        "kind": "memcube-manifest",
        "format_version": 1,
        "cube": {"id": "c1", "name": "forged", "description": "", "owner": "me"},
        "embedding": {"model": "test-embed", "dim": DIM},
        "counts": {"memories": 1, "versions": 0, "activations": 0, "adapters": 0},
        "created_at": 1.0,
        "device_id": ident.device_id,
        "exported_by": str(ident.public),
        "app": "test",
    }
    m.update(over)
    return m


def memory(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": "m1", "text": "a forged memory", "key": "", "type": "fact", "layer": "long_term",
        "status": "active", "source": "user", "confidence": 1.0, "importance": 0.5,
        "pinned": False, "tags": [], "sources": [], "valid_from": None, "valid_to": None,
        "created_at": 1.0, "updated_at": 1.0, "version": 1, "supersedes": None,
        "superseded_by": None, "context": "", "vector": False, "versions": [],
    }  # fmt: skip
    d.update(over)
    return d


def forge(
    a: Store,
    tmp: Path,
    body: Callable[[CubeWriter], None],
    summary: dict[str, int] | None = None,
) -> Path:
    buf = io.BytesIO()
    w = CubeWriter(buf, Sealing(passphrase=PW), load_identity(a.db))
    body(w)
    w.finish(summary or {"memories": 1, "versions": 0, "activations": 0, "adapters": 0})
    p = tmp / "forged.memcube"
    p.write_bytes(buf.getvalue())
    return p


def one_item(a: Store, meta: Any = None, **m: Any) -> Callable[[CubeWriter], None]:
    def body(w: CubeWriter) -> None:
        w.record(cubefile.MANIFEST, manifest(a, **m))
        w.record(cubefile.ITEMS, meta if meta is not None else {"items": [memory()]})

    return body


def test_a_forged_but_well_formed_file_imports(stores: Any, tmp_path: Path) -> None:
    """The control: the forging helpers make files the importer accepts, so each hostile
    variant below is refused for its one hostile part."""
    a, b = stores
    r = import_cube(
        b,
        forge(a, tmp_path, one_item(a)),
        Opening(passphrase=PW),
        owner=b.users.list()[0],
        embed_model="test-embed",
        embed_dim=DIM,
    )
    assert r.added == 1 and r.cube == "forged"


HOSTILE_ITEMS: list[tuple[str, Any]] = [
    ("NaN", {"items": [memory(confidence=float("nan"))]}),
    ("out of range", {"items": [memory(importance=7)]}),
    ("unknown type", {"items": [memory(type="shell")]}),
    ("extra field", {"items": [{**memory(), "__class__": "os.system"}]}),
    ("missing field", {"items": [{k: v for k, v in memory().items() if k != "text"}]}),
    ("empty text", {"items": [memory(text="  ")]}),
    ("NUL in text", {"items": [memory(text="a\x00b")]}),
    ("lone surrogate", {"items": [memory(text="a\ud800b")]}),
    ("id with a path", {"items": [memory(id="../../etc/passwd")]}),
    ("too many tags", {"items": [memory(tags=["x"] * 10_000)]}),
    ("vector without bytes", {"items": [memory(vector=True)]}),
    ("nested source", {"items": [memory(sources=[{"ref": {"deep": [1]}}])]}),
    ("empty batch", {"items": []}),
    ("not a list", {"items": "everything"}),
]


@pytest.mark.parametrize(("what", "meta"), HOSTILE_ITEMS, ids=[w for w, _ in HOSTILE_ITEMS])
def test_hostile_records_are_refused(stores: Any, tmp_path: Path, what: str, meta: Any) -> None:
    a, b = stores
    before = snapshot(b)
    if what == "NaN":
        p = forge(a, tmp_path, lambda w: _raw_nan(a, w))
    elif what == "lone surrogate":
        p = forge(a, tmp_path, lambda w: _raw_items(a, w, json.dumps(meta).encode()))
    else:
        p = forge(a, tmp_path, one_item(a, meta))
    attempt(b, p)
    assert snapshot(b) == before
    assert [c.name for c in b.cubes.list()] == ["personal"]


def _raw_items(a: Store, w: CubeWriter, body: bytes, tail: bytes = b"") -> None:
    w.record(cubefile.MANIFEST, manifest(a))
    w.raw_record(cubefile.ITEMS, body, tail)


def _raw_nan(a: Store, w: CubeWriter) -> None:
    _raw_items(a, w, json.dumps({"items": [memory()]}).replace("1.0", "NaN", 1).encode())


def test_repeated_ids_in_one_file_import_once_each(stores: Any, tmp_path: Path) -> None:
    """A forged file that repeats a memory id (in one batch and across two) and a version id
    imports without a constraint error: the repeat is a copy or a merge, never a crash."""
    a, b = stores
    v = {
        "id": "v1", "version": 1, "text": "a forged memory", "key": "", "type": "fact",
        "layer": "long_term", "status": "active", "confidence": 1.0, "importance": 0.5,
        "tags": [], "valid_from": None, "valid_to": None, "change": "create", "reason": "",
        "changed_at": 1.0, "device_id": "d", "hlc": "h",
    }  # fmt: skip
    twice = {"items": [memory(versions=[v]), memory(text="other text", versions=[v])]}

    def body(w: CubeWriter) -> None:
        counts = {"memories": 3, "versions": 3, "activations": 0, "adapters": 0}
        w.record(cubefile.MANIFEST, manifest(a, counts=counts))
        w.record(cubefile.ITEMS, twice)
        w.record(cubefile.ITEMS, {"items": [memory(text="third", versions=[v])]})

    p = forge(a, tmp_path, body, {"memories": 3, "versions": 3, "activations": 0, "adapters": 0})
    r = import_cube(
        b,
        p,
        Opening(passphrase=PW),
        owner=b.users.list()[0],
        embed_model="test-embed",
        embed_dim=DIM,
    )
    assert r.added == 2 and r.skipped == 1
    assert b.db.integrity_check() == ["ok"]


def test_deep_nesting_huge_numbers_and_zip_bomb_counts(stores: Any, tmp_path: Path) -> None:
    a, b = stores
    before = snapshot(b)
    deep = b"[" * 200_000 + b"]" * 200_000
    attempt(b, forge(a, tmp_path, lambda w: _raw_items(a, w, deep)))
    attempt(
        b, forge(a, tmp_path, lambda w: _raw_items(a, w, b'{"items": 1' + b"9" * 50_000 + b"}"))
    )
    bomb = {"memories": 10**12, "versions": 0, "activations": 0, "adapters": 0}
    err = attempt(b, forge(a, tmp_path, one_item(a, counts=bomb)))
    assert "declares 1000000000000 memories" in str(err)
    # more memories than declared: refused as soon as the batch is read
    two = {"items": [memory(), memory(id="m2", text="another")]}
    err = attempt(b, forge(a, tmp_path, one_item(a, two)))
    assert "more memories than its manifest declares" in str(err)
    # fewer than declared: the signed end record does not match
    few = {"memories": 5, "versions": 0, "activations": 0, "adapters": 0}
    attempt(b, forge(a, tmp_path, one_item(a, counts=few)))
    assert snapshot(b) == before


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "/abs/path", "a\\b", "..", " lead", "x" * 65, "con:", ""]
)
def test_path_tricks_in_names(stores: Any, tmp_path: Path, name: str) -> None:
    a, b = stores
    before = snapshot(b)
    cube = {"id": "c1", "name": name, "description": "", "owner": "me"}
    attempt(b, forge(a, tmp_path, one_item(a, cube=cube)))
    assert snapshot(b) == before


def test_structure_version_passphrase_and_signature(stores: Any, tmp_path: Path) -> None:
    a, b = stores
    good = exported(a, tmp_path, Sealing(passphrase=PW))
    before = snapshot(b)
    p = tmp_path / "bad.memcube"

    def check(data: bytes, match: str, passphrase: str | None = PW) -> None:
        p.write_bytes(data)
        assert match in str(attempt(b, p, passphrase))

    hlen = struct.unpack(">I", good[10:14])[0]
    check(good[:8] + struct.pack(">H", 2) + good[10:], "format version 2")
    check(b"PK\x03\x04" + good[4:], "not a memos-desktop cube file")
    check(good, "wrong passphrase", "guess")
    check(good, "encrypted with a passphrase", None)
    check(good[:-1], "truncated")
    check(good + b"\x00", "after its end record")
    check(good[: 14 + hlen] + b"\xff\xff\xff\xff" + good[18 + hlen :], "declares")
    header = json.loads(good[14 : 14 + hlen])
    header["kdf"]["n"] = 2**30  # an absurd amount of scrypt work: refused before any is done
    raw = json.dumps(header).encode()
    check(good[:10] + struct.pack(">I", len(raw)) + raw + good[14 + hlen :], "refused")
    check(good[:10] + struct.pack(">I", 10**9) + good[14:], "header declares")
    deep = b"[" * 30_000 + b"]" * 30_000  # within the 64 KiB header bound, nested too deep
    check(good[:10] + struct.pack(">I", len(deep)) + deep + good[14 + hlen :], "not valid JSON")
    # a record removed from the middle: the sequence numbers no longer match
    first = 14 + hlen
    n1 = struct.unpack(">I", good[first : first + 4])[0]
    check(good[:first] + good[first + 4 + n1 :], "integrity check")
    # the same content, re-signed by another device than the manifest names
    other = _store("c")
    try:
        buf = io.BytesIO()
        w = CubeWriter(buf, Sealing(passphrase=PW), load_identity(other.db))
        w.record(cubefile.MANIFEST, manifest(a))
        w.record(cubefile.ITEMS, {"items": [memory()]})
        w.finish({"memories": 1, "versions": 0, "activations": 0, "adapters": 0})
        check(buf.getvalue(), "signature does not verify")
    finally:
        other.close()
    assert snapshot(b) == before


# --- fuzz ------------------------------------------------------------------------------------


def _mutations(good: bytes, n: int, seed: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    for i in range(n):
        data = bytearray(good)
        kind = i % 5
        if kind == 0:  # one bit flipped anywhere
            pos = rng.randrange(len(data))
            data[pos] ^= 1 << rng.randrange(8)
        elif kind == 1:  # truncated anywhere
            data = data[: rng.randrange(len(data))]
        elif kind == 2:  # a run of random bytes written over
            pos = rng.randrange(len(data))
            data[pos : pos + rng.randint(1, 64)] = rng.randbytes(rng.randint(1, 64))
        elif kind == 3:  # bytes inserted
            pos = rng.randrange(len(data))
            data[pos:pos] = rng.randbytes(rng.randint(1, 32))
        else:  # a slice deleted
            pos = rng.randrange(len(data))
            del data[pos : pos + rng.randint(1, 256)]
        if bytes(data) != good:
            yield bytes(data)


def test_fuzz_thousands_of_mutations_of_a_real_export(stores: Any, tmp_path: Path) -> None:
    a, b = stores
    good = exported(a, tmp_path, Sealing(recipients=(load_identity(b.db).public,)))
    before = snapshot(b)
    p = tmp_path / "fuzz.memcube"
    n = 0
    for data in _mutations(good, 3000, seed=11):
        p.write_bytes(data)
        attempt(b, p, None)
        n += 1
        if n % 500 == 0:
            assert snapshot(b) == before
    assert n > 2900
    assert snapshot(b) == before
    # and the unmutated file still imports (the refusals were for the mutations)
    p.write_bytes(good)
    r = import_cube(
        b,
        p,
        Opening(),
        owner=b.users.list()[0],
        embed_model="test-embed",
        embed_dim=DIM,
        name="imported",
    )
    assert r.added == 12


def test_fuzz_passphrase_mode_header_and_first_records(stores: Any, tmp_path: Path) -> None:
    """Passphrase files cost a scrypt per attempt, so fewer: flips in the header and the
    first record, where the key derivation and the manifest are."""
    a, b = stores
    good = exported(a, tmp_path, Sealing(passphrase=PW))
    before = snapshot(b)
    p = tmp_path / "fuzz.memcube"
    rng = random.Random(5)
    for _ in range(40):
        data = bytearray(good)
        data[rng.randrange(min(len(data), 600))] ^= 1 << rng.randrange(8)
        p.write_bytes(bytes(data))
        attempt(b, p)
    assert snapshot(b) == before


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.data())
def test_hypothesis_malformed_streams(stores: Any, tmp_path: Path, data: st.DataObject) -> None:
    a, b = stores
    good = _cached_export(a, tmp_path, b)
    before = _cached_snapshot(b)
    choice = data.draw(st.sampled_from(["splice", "random", "prefix"]))
    if choice == "splice":
        start = data.draw(st.integers(0, len(good) - 1))
        junk = data.draw(st.binary(min_size=0, max_size=80))
        end = data.draw(st.integers(start, min(len(good), start + 80)))
        blob = good[:start] + junk + good[end:]
    elif choice == "random":
        blob = cubefile.MAGIC + data.draw(st.binary(min_size=0, max_size=400))
    else:
        blob = good[: data.draw(st.integers(0, len(good) - 1))]
    if blob == good:
        return
    p = tmp_path / "hyp.memcube"
    p.write_bytes(blob)
    attempt(b, p, None)
    assert snapshot(b) == before


_CACHE: dict[str, Any] = {}


def _cached_export(a: Store, tmp: Path, b: Store) -> bytes:
    key = str(a.db.path)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = exported(a, tmp, Sealing(recipients=(load_identity(b.db).public,)))
    return bytes(_CACHE[key])


def _cached_snapshot(b: Store) -> dict[str, str]:
    key = "snap:" + str(b.db.path)
    if key not in _CACHE:
        _CACHE[key] = snapshot(b)
    return dict(_CACHE[key])


def test_adapters_and_kv_states_travel_with_their_model_hashes(stores: Any, tmp_path: Path) -> None:
    """Parametric and activation memory in a cube file: the adapter arrives as a candidate
    (never active) with its base model's hash; a KV state only when asked for, under its
    full key (so it is used only with the same model file)."""
    from memos_desktop.engines.base import KVState

    a, b = stores
    cube = a.cubes.list()[0]
    base = "ab" * 32
    a.adapters.put(
        name="me-v1",
        base_model_sha256=base,
        blob=b"GGUF-lora-bytes",
        cube_id=cube.id,
        metrics={"loss": 0.5},
    )
    state = KVState(base, "", "cd" * 32, "n_ctx=512", (1, 2, 3), b"kv-bytes", 3)
    a.activations.put(state, cube_id=cube.id)
    out = tmp_path / "full.memcube"
    rep = export_cube(a, cube, out, Sealing(passphrase=PW), with_states=True)
    assert (rep.adapters, rep.activations) == (1, 1)

    def imp(name: str, **kw: Any) -> Any:
        return import_cube(
            b,
            out,
            Opening(passphrase=PW),
            owner=b.users.list()[0],
            embed_model="test-embed",
            embed_dim=DIM,
            name=name,
            **kw,
        )

    first = imp("no-states")
    assert (first.adapters, first.activations) == (1, 0) and b.activations.count() == 0
    second = imp("with-states", with_states=True)
    assert second.activations == 1
    got = b.activations.get(base, "", "cd" * 32, "n_ctx=512")
    assert got is not None and got.state == b"kv-bytes" and got.token_ids == (1, 2, 3)
    adapters = b.adapters.list()
    assert {x.status for x in adapters} == {"candidate"}
    assert {x.base_model_sha256 for x in adapters} == {base}
    assert b.adapters.blob(adapters[0].id) == b"GGUF-lora-bytes"

    # a forged adapter whose bytes do not match its checksum is refused, nothing imported
    before = snapshot(b)

    def body(w: CubeWriter) -> None:
        counts = {"memories": 0, "versions": 0, "activations": 0, "adapters": 1}
        w.record(cubefile.MANIFEST, manifest(a, counts=counts))
        meta = {
            "name": "x", "base_model_sha256": base, "format": "gguf-lora", "metrics": {},
            "sha256": "00" * 32,
        }  # fmt: skip
        w.record(cubefile.ADAPTER, meta, b"other bytes")

    p = forge(a, tmp_path, body, {"memories": 0, "versions": 0, "activations": 0, "adapters": 1})
    assert "checksum" in str(attempt(b, p))
    assert snapshot(b) == before


def test_export_reads_vectors_from_vec0_chunks_as_the_virtual_table_has_them(
    stores: Any,
) -> None:
    from memos_desktop.store.cube_rows import VectorReader

    a, _ = stores
    rowids = [int(r[0]) for r in a.db.query("SELECT rowid FROM memory_items")]
    reader = VectorReader(a.db, DIM)
    direct = reader.read(rowids)
    assert reader.direct and len(direct) == 12
    assert direct == reader._virtual(rowids)


def test_a_file_changed_between_verify_and_apply_rolls_back(stores: Any, tmp_path: Path) -> None:
    """Pass 2 reads the file again: if its bytes are not what pass 1 verified (here another
    valid export is swapped in after the verification), nothing stays imported."""
    a, b = stores
    path = tmp_path / "swap.memcube"
    export_cube(a, a.cubes.list()[0], path, Sealing(passphrase=PW))
    other = tmp_path / "other.memcube"
    a.memories.add_many(
        a.cubes.list()[0], [NewMemory("one more memory")], np.ones((1, DIM), dtype=np.float32)
    )
    export_cube(a, a.cubes.list()[0], other, Sealing(passphrase=PW))
    changes = b.db.scalar("SELECT count(*) FROM changes")

    def swap(phase: str, done: int, total: int) -> None:
        if phase == "verify" and done == total:
            # a new file under the name (pass 1 keeps reading the old one it has open)
            os.replace(other, path)
            seen.append(phase)

    seen: list[str] = []
    with pytest.raises(CubeFileError, match=r"integrity check|changed while"):
        import_cube(
            b,
            path,
            Opening(passphrase=PW),
            owner=b.users.list()[0],
            embed_model="test-embed",
            embed_dim=DIM,
            name="imported",
            progress=swap,
        )
    assert seen == ["verify"]  # verified whole: the refusal came from the second read
    assert [c.name for c in b.cubes.list()] == ["personal"]
    assert b.db.scalar("SELECT count(*) FROM changes") == changes
    assert b.db.scalar("SELECT count(*) FROM memory_items") == 0
