"""Must show (issue 11): the changeset reader refuses thousands of malformed inputs cleanly
(one SyncError, nothing else) and the store stays exactly as it was (every table dumped and
hashed before and after).

Two kinds of input: a real changeset file damaged byte by byte (truncated, flipped, spliced,
grown), which the signature and the AEAD catch; and payloads that are validly signed and
encrypted with the real keys but malformed inside (a hostile or buggy paired device), which
the entry checks catch before anything is written."""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memos_desktop.errors import SyncError
from memos_desktop.sync import changeset
from memos_desktop.sync.changeset import decode, encode, seal
from memos_desktop.sync.identity import load_identity
from memos_desktop.sync.pairing import devices_dir
from tests.sync.devices import new_device, pair_all


class World:
    def __init__(self, root: Path) -> None:
        folder = root / "folder"
        folder.mkdir()
        self.a = new_device(root, "a", folder)
        self.b = new_device(root, "b", folder)
        pair_all([self.a, self.b])
        self.b.sync.sync_now()
        own = devices_dir(folder) / self.a.store.device_id
        self.files: dict[str, bytes] = {}

        def keep() -> None:
            self.files.update({p.name: p.read_bytes() for p in sorted(own.glob("*.mcs"))})

        ids = [self.a.add(f"fact number {i} about tea", seed=i) for i in range(4)]
        self.a.store.memories.update(ids[0], text="edited fact", tags=["x", "y"])
        self.a.store.memories.forget(ids[1])
        self.a.sync.sync_now()  # a snapshot: the history so far
        keep()
        self.a.store.memories.update(ids[2], importance=0.9)
        self.a.sync.sync_now()  # a changeset
        keep()
        self.a.store.memories.purge([ids[3]])
        self.a.sync.sync_now()  # a changeset with a tombstone, then a compaction
        keep()
        self.b.sync.sync_now()
        self.ident_a = load_identity(self.a.store.db)
        self.key = self.a.sync.sync_key
        assert self.key is not None
        self.peer = next(p for p in self.b.sync.paired() if p.device_id == self.a.store.device_id)
        self.scratch = root / "scratch"
        self.scratch.mkdir()
        self.entries = [
            decode(data, self.peer, self.key, name)[1] for name, data in self.files.items()
        ]
        self.digest = self.b.db_digest()
        self.n = 100
        self.refused = self.applied = 0

    def refuse(self, data: bytes, name: str | None = None) -> None:
        """``data`` as the next file of device a: must be refused, the store untouched."""
        self.n += 1
        name = name or changeset.file_name("changeset", self.n)
        path = self.scratch / name
        path.write_bytes(data)
        files = self.b.file_digest()
        with pytest.raises(SyncError):
            self.b.sync.import_file(path, self.peer, self.key)  # type: ignore[arg-type]
        assert self.b.file_digest() == files  # byte for byte
        assert self.b.db_digest() == self.digest

    def refuse_or_apply(self, data: bytes) -> None:
        """A signed payload may be valid after all: then it applies. Refused: untouched."""
        self.n += 1
        path = self.scratch / changeset.file_name("changeset", self.n)
        path.write_bytes(data)
        try:
            self.b.sync.import_file(path, self.peer, self.key)  # type: ignore[arg-type]
        except SyncError:
            assert self.b.db_digest() == self.digest
            self.refused += 1
        else:
            assert self.b.store.db.integrity_check() == ["ok"]
            self.digest = self.b.db_digest()
            self.applied += 1

    def close(self) -> None:
        for d in (self.a, self.b):
            d.store.close()


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    root = Path(tempfile.mkdtemp(prefix="memos-sync-fuzz-"))
    w = World(root)
    yield w
    w.close()
    shutil.rmtree(root, ignore_errors=True)


def test_the_real_files_apply(world: World) -> None:
    assert sorted(n[:2] for n in world.files) == ["cs", "sn", "sn"]
    assert world.a.dump() == world.b.dump()


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**9), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10**9), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 10**9), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("delete"), st.integers(0, 10**9), st.integers(1, 64)),
    st.tuples(st.just("splice"), st.integers(0, 10**9), st.integers(0, 10**9)),
)


def _mutate(data: bytes, other: bytes, muts: list[tuple[str, int, Any]]) -> bytes:
    b = bytearray(data)
    for kind, pos, arg in muts:
        pos = pos % (len(b) + 1)
        if kind == "flip" and b:
            b[pos % len(b)] ^= arg
        elif kind == "truncate":
            del b[pos:]
        elif kind == "insert":
            b[pos:pos] = arg
        elif kind == "delete":
            del b[pos : pos + arg]
        elif kind == "splice":  # the head of this file, the tail of the other
            b = b[:pos] + other[arg % (len(other) + 1) :]
    return bytes(b)


@settings(
    max_examples=1200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(which=st.integers(0, 2), muts=st.lists(mutation, min_size=1, max_size=4))
def test_damaged_files_are_refused_and_the_store_is_untouched(
    world: World, which: int, muts: list[tuple[str, int, Any]]
) -> None:
    names = list(world.files)
    data = world.files[names[which]]
    bad = _mutate(data, world.files[names[(which + 1) % len(names)]], muts)
    if bad == data:
        return
    world.refuse(bad, names[which])


hostile = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.just(""),
    st.just("\ud800"),
    st.just("0000000000000:000000:../../etc"),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


@settings(
    max_examples=800,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(which=st.integers(0, 2), pick=st.integers(0, 10**6), value=hostile, drop=st.booleans())
def test_signed_but_malformed_payloads_are_refused(
    world: World, which: int, pick: int, value: Any, drop: bool
) -> None:
    entries = copy.deepcopy(world.entries[which])
    paths = [p for p in _paths(entries) if p]
    path = paths[pick % len(paths)]
    parent: Any = entries
    for k in path[:-1]:
        parent = parent[k]
    old = parent[path[-1]]
    if drop and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        if type(value) is type(old) and not isinstance(value, dict | list):
            return  # the same kind of value may well be valid: not this test's subject
        parent[path[-1]] = value
    try:
        data = encode(world.ident_a, world.key, "changeset", world.n + 1, entries)
    except (UnicodeEncodeError, ValueError):
        data = seal(
            world.ident_a,
            world.key,
            "changeset",
            world.n + 1,
            json.dumps({"entries": entries}, allow_nan=True).encode("utf-8", "surrogatepass"),
            len(entries),
        )
    world.refuse_or_apply(data)


def test_most_signed_mutations_were_refused(world: World) -> None:
    assert world.refused > 10 * world.applied and world.refused >= 400


def test_deep_nesting_and_wrong_counts_are_refused(world: World) -> None:
    deep = b'{"entries": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    world.refuse(seal(world.ident_a, world.key, "changeset", world.n + 1, deep, 1))
    world.refuse(seal(world.ident_a, world.key, "changeset", world.n + 1, b"\x80\xff", 0))
    good = json.dumps({"entries": world.entries[1]}).encode()
    world.refuse(seal(world.ident_a, world.key, "changeset", world.n + 1, good, 99))
    world.refuse(seal(world.ident_a, world.key, "snapshot", world.n + 1, good, 2))  # name says cs


def test_a_decompression_bomb_stops_at_the_bound(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(changeset, "MAX_PLAIN", 1 << 20)
    bomb = b'{"entries": [' + b" " * (8 << 20) + b"]}"  # 8 MiB of spaces: 8 KiB compressed
    world.refuse(seal(world.ident_a, world.key, "changeset", world.n + 1, bomb, 0))


def test_a_file_signed_by_another_key_is_refused(world: World, tmp_path: Path) -> None:
    other = new_device(tmp_path, "mallory", tmp_path)
    forged = seal(
        load_identity(other.store.db),
        world.key,
        "changeset",
        world.n + 1,
        json.dumps({"entries": []}).encode(),
        0,
    )
    # The header names mallory, not a: refused for that; with a's id patched in, the
    # signature fails.
    world.refuse(forged)
    patched = forged.replace(other.store.device_id.encode(), world.a.store.device_id.encode())
    world.refuse(patched)
    other.store.close()


def test_a_file_sealed_with_another_sync_key_is_refused(world: World) -> None:
    data = seal(world.ident_a, b"k" * 32, "changeset", world.n + 1, b'{"entries":[]}', 0)
    world.refuse(data)


@pytest.mark.parametrize("value", [1 << 63, -(1 << 63) - 1, 10**30])
def test_an_integer_sqlite_cannot_store_is_refused(value: int) -> None:
    """Found by the fuzz test above: a signed payload with a time of 2**63 reached SQLite's
    binding and raised OverflowError instead of being refused."""
    from memos_desktop.store import sync_merge

    for field in ("created_at", "valid_from", "confidence"):
        with pytest.raises(SyncError):
            sync_merge._check_value(field, value)
    sync_merge._check_value("created_at", (1 << 63) - 1)  # the largest that fits is fine
