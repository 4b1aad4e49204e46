"""The change log sync can trust (issue 9): one clock per profile, strictly increasing stamps
across processes, every entity logged in the transaction that changes it, versions keyed by
their own id (migration v5), and a vector index that reacts to memory rows only."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from memos_desktop.config import Settings, resolve_paths
from memos_desktop.errors import StoreError
from memos_desktop.memory.adapters import rollback
from memos_desktop.store import keys
from memos_desktop.store.changelog import ENTITIES
from memos_desktop.store.db import Database
from memos_desktop.store.hlc import MAX_COUNTER, HybridClock, Timestamp
from memos_desktop.store.migrations import LATEST, current_version, migrate
from memos_desktop.store.profile import Store, open_profile
from memos_desktop.store.records import NewMemory, SearchFilters
from tests.conftest import PASSPHRASE
from tests.store.conftest import DIM, vec

ROOT = Path(__file__).resolve().parents[2]
TABLES = {
    "user": "users",
    "cube": "cubes",
    "memory": "memory_items",
    "memory_version": "memory_versions",
    "conversation": "conversations",
    "message": "messages",
    "adapter": "adapters",
}
TOMBSTONES = ("purge", "delete")
BASE = "b" * 64

Row = tuple[str, str, str, tuple[str, ...]]  # entity, entity_id, op, fields


def top(store: Store) -> int:
    return int(store.db.scalar("SELECT coalesce(max(seq), 0) FROM changes"))


def since(store: Store, seq: int) -> list[Row]:
    return [
        (str(e), str(i), str(op), tuple(json.loads(f)))
        for e, i, op, f in store.db.query(
            "SELECT entity, entity_id, op, fields FROM changes WHERE seq > ? ORDER BY seq", (seq,)
        )
    ]


class Logged:
    """``with Logged(store) as log: <writes>`` then ``log.rows``: the change rows they wrote."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.rows: list[Row] = []

    def __enter__(self) -> Logged:
        self.start = top(self.store)
        return self

    def __exit__(self, *exc: object) -> None:
        self.rows = since(self.store, self.start)


def versions(store: Store, item_id: str) -> list[str]:
    return [v.id for v in store.memories.history(item_id)]


# --- (a) the clock ----------------------------------------------------------------------------


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.store.changelog_proc", *args],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def owners(s: Store) -> dict[str, str]:
    """entity id -> the tag of the writer process that made it."""
    out: dict[str, str] = {}
    for i, tags in s.db.query("SELECT id, tags FROM memory_items"):
        out[i] = json.loads(tags)[0] if json.loads(tags) else ""
    for vid, item in s.db.query("SELECT id, item_id FROM memory_versions"):
        out[vid] = out.get(item, "")
    for i, title in s.db.query("SELECT id, title FROM conversations"):
        out[i] = title
    for mid, title in s.db.query(
        "SELECT m.id, c.title FROM messages m JOIN conversations c ON c.id = m.conversation_id"
    ):
        out[mid] = title
    return out


def test_two_processes_on_one_profile_stamp_strictly_increasing_hlcs(
    store: Store, tmp_path: Path
) -> None:
    """The TUI and the daemon on one profile: two real processes write at once, one of them
    with its wall clock an hour behind. In commit order (seq) every stamp is strictly greater
    than the one before: no equal stamp, none out of order."""
    start = top(store)
    store.close()
    go = tmp_path / "go"
    procs = [
        spawn("default", "alpha", "150", str(go), "0"),
        spawn("default", "beta", "150", str(go), "3600"),
    ]
    for p in procs:
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line.strip() == "ready", p.stderr.read() if p.stderr else "writer died"
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert out.strip() == "done"
    with open_profile(resolve_paths(), "default", Settings()) as s:
        rows = s.db.query("SELECT seq, hlc, entity, entity_id FROM changes ORDER BY seq")
        hlcs = [str(h) for _, h, _, _ in rows]
        stamps = [Timestamp.parse(h) for h in hlcs]
        assert len(set(hlcs)) == len(hlcs)
        assert all(a < b for a, b in pairwise(hlcs))  # as text (what max(hlc) and sync sort by)
        assert all(
            (a.physical_ms, a.counter) < (b.physical_ms, b.counter) for a, b in pairwise(stamps)
        )
        # both wrote, and their transactions interleaved (so the test tested concurrency)
        own = owners(s)
        by = [own.get(str(i), "") for seq, _, _, i in rows if seq > start]
        assert by.count("alpha") > 250 and by.count("beta") > 250
        mine = [t for t in by if t in ("alpha", "beta")]
        assert sum(a != b for a, b in pairwise(mine)) >= 2
        assert s.db.integrity_check() == ["ok"]


def test_a_second_connection_with_a_wall_clock_behind_still_stamps_later(store: Store) -> None:
    """The bug fixed: a clock seeded once per process stamped below another process's later
    writes. Two connections in one process alternate; the second one's clock is a day behind."""
    c = store.cubes.list()[0]
    other = open_profile(resolve_paths(), "default", Settings())
    try:
        other.changelog.wall = lambda: time.time() - 86400
        for i in range(10):
            w = store if i % 2 else other
            w.memories.add(c, NewMemory(text=f"note {i}"), vec(i))
        hlcs = [str(r[0]) for r in store.db.query("SELECT hlc FROM changes ORDER BY seq")]
        assert all(a < b for a, b in pairwise(hlcs))
    finally:
        other.close()


def test_counter_grows_when_the_wall_clock_stands_still_and_carries_when_full(
    store: Store,
) -> None:
    c = store.cubes.list()[0]
    pt = int(time.time() * 1000) + 60_000  # a stored stamp a minute ahead of this clock
    with store.db.write() as w:
        w.execute(
            "INSERT INTO changes (hlc, device_id, entity, entity_id, op, created_at) "
            "VALUES (?, 'zz', 'cube', 'x', 'update', 0)",
            (str(Timestamp(pt, MAX_COUNTER - 1, "zz")),),
        )
    store.memories.add(c, NewMemory(text="first"), vec(1))  # two rows: the version, the memory
    rows = [
        Timestamp.parse(str(r[0])) for r in store.db.query("SELECT hlc FROM changes ORDER BY seq")
    ]
    dev = store.device_id
    assert rows[-2:] == [Timestamp(pt, MAX_COUNTER, dev), Timestamp(pt + 1, 0, dev)]
    # a frozen wall clock: the counter counts on, transaction after transaction
    store.changelog.wall = lambda: 1.0
    store.memories.add(c, NewMemory(text="second"), vec(2))
    last = [
        Timestamp.parse(str(r[0])) for r in store.db.query("SELECT hlc FROM changes ORDER BY seq")
    ]
    assert last[-2:] == [Timestamp(pt + 1, 1, dev), Timestamp(pt + 1, 2, dev)]
    assert str(last[-1]) > str(Timestamp(pt, MAX_COUNTER, "zz"))
    # the clock object alone: a full counter carries into the millisecond
    clock = HybridClock("d", Timestamp(5, MAX_COUNTER, "d"), wall=lambda: 0.0)
    assert clock.now() == Timestamp(6, 0, "d")
    assert clock.observe(Timestamp(6, MAX_COUNTER, "e")) == Timestamp(7, 0, "d")


def test_logging_outside_a_write_transaction_or_an_unknown_change_is_refused(
    store: Store,
) -> None:
    with pytest.raises(StoreError, match="outside a write transaction"):
        store.changelog.log(store.db.conn, "memory", "x", "create", ("*",))
    with store.db.write() as w, pytest.raises(StoreError, match="unknown change"):
        store.changelog.log(w, "memory", "x", "rename", ())


# --- (b) every entity is logged ----------------------------------------------------------------


def test_every_entity_is_logged_in_the_transaction_that_changes_it(store: Store) -> None:
    personal = store.cubes.list()[0]
    with Logged(store) as log:
        ana = store.users.create("ana")
    assert log.rows == [("user", ana.id, "create", ("*",))]

    with Logged(store) as log:
        work = store.cubes.create(ana, "work", embed_model="test-embed", embed_dim=DIM)
    assert log.rows == [("cube", work.id, "create", ("*",))]
    with Logged(store) as log:
        work = store.cubes.rename(work, "job")
    assert log.rows == [("cube", work.id, "update", ("name",))]

    # memories: add, edit, pin, forget, restore, supersede, purge; each with its version
    with Logged(store) as log:
        a = store.memories.add(work, NewMemory(text="Ana's badge is 4471"), vec(1)).item
    assert log.rows == [
        ("memory_version", versions(store, a.id)[0], "create", ("*",)),
        ("memory", a.id, "create", ("*",)),
    ]
    for write, fields in (
        (
            lambda: store.memories.update(a.id, text="Ana's badge is 5582", embedding=vec(2)),
            ("embedding", "text"),
        ),
        (lambda: store.memories.update(a.id, pinned=True), ("pinned",)),
        (lambda: store.memories.forget(a.id, "wrong"), ("status", "superseded_by", "valid_to")),
        (lambda: store.memories.restore(a.id), ("status", "superseded_by", "valid_to")),
    ):
        with Logged(store) as log:
            write()
        assert log.rows == [
            ("memory_version", versions(store, a.id)[-1], "create", ("*",)),
            ("memory", a.id, "update", fields),
        ]
    b = store.memories.add(work, NewMemory(text="Ana's badge is 6693"), vec(3)).item
    with Logged(store) as log:
        store.memories.supersede(a.id, b.id, reason="new badge")
    assert log.rows == [
        ("memory_version", versions(store, a.id)[-1], "create", ("*",)),
        ("memory", a.id, "update", ("status", "superseded_by", "valid_to")),
        ("memory", b.id, "update", ("supersedes",)),  # the back-link
    ]
    p = store.memories.add(personal, NewMemory(text="Ana's PIN is 1234"), vec(4)).item
    store.memories.update(p.id, importance=0.9)
    p_versions = versions(store, p.id)
    with Logged(store) as log:
        store.memories.purge([p.id])
    assert log.rows == [
        *[("memory_version", v, "purge", ()) for v in p_versions],
        ("memory", p.id, "purge", ()),
    ]
    store.memories.add(personal, NewMemory(text="Ana likes figs"), vec(5))  # one that stays

    # conversations and messages
    with Logged(store) as log:
        conv = store.conversations.create(ana.id, work.id, title="plans")
    assert log.rows == [("conversation", conv.id, "create", ("*",))]
    with Logged(store) as log:
        m = store.conversations.add_message(conv.id, "user", "Let's go to Porto")
    assert log.rows == [
        ("message", m.id, "create", ("*",)),
        ("conversation", conv.id, "update", ("updated_at",)),
    ]
    with Logged(store) as log:
        store.conversations.update(conv.id, title="holiday plans")
        store.conversations.update(conv.id, archived=True)
    assert log.rows == [
        ("conversation", conv.id, "update", ("title",)),
        ("conversation", conv.id, "update", ("archived",)),
    ]
    gone = store.conversations.create(ana.id, None, title="scratch")
    msgs = [store.conversations.add_message(gone.id, "user", t).id for t in ("one", "two")]
    with Logged(store) as log:
        store.conversations.delete(gone.id)
    assert log.rows == [
        *[("message", i, "delete", ()) for i in msgs],
        ("conversation", gone.id, "delete", ()),
    ]

    # adapters: register, metrics, activate, a child retires it, rollback, status, delete
    with Logged(store) as log:
        parent = store.adapters.put(
            name="p", base_model_sha256=BASE, blob=b"gguf-p", user_id=ana.id, cube_id=work.id
        )
    assert log.rows == [("adapter", parent.id, "create", ("*",))]
    with Logged(store) as log:
        store.adapters.set_metrics(parent.id, {"loss": 1.5})
        store.adapters.activate(parent.id)
    assert log.rows == [
        ("adapter", parent.id, "update", ("metrics",)),
        ("adapter", parent.id, "update", ("activated_at", "status")),
    ]
    child = store.adapters.put(
        name="c", base_model_sha256=BASE, blob=b"gguf-c", user_id=ana.id, parent_id=parent.id
    )
    with Logged(store) as log:
        store.adapters.activate(child.id)
    assert log.rows == [
        ("adapter", parent.id, "update", ("status",)),  # retired
        ("adapter", child.id, "update", ("activated_at", "status")),
    ]
    with Logged(store) as log:
        assert rollback(store, ana.id, BASE).id == parent.id  # type: ignore[union-attr]
    assert log.rows == [
        ("adapter", child.id, "update", ("status",)),  # rejected
        ("adapter", parent.id, "update", ("activated_at", "status")),
    ]
    with Logged(store) as log:
        store.adapters.set_status(child.id, "retired")
        store.adapters.delete(child.id)
    assert log.rows == [
        ("adapter", child.id, "update", ("status",)),
        ("adapter", child.id, "delete", ()),
    ]

    # a cube delete logs everything it removes or changes, then the cube's tombstone
    doomed = {a.id: versions(store, a.id), b.id: versions(store, b.id)}
    with Logged(store) as log:
        assert store.cubes.delete(work) == 2
    assert sorted(log.rows) == sorted(
        [
            *[("memory_version", v, "purge", ()) for vs in doomed.values() for v in vs],
            *[("memory", i, "purge", ()) for i in doomed],
            ("conversation", conv.id, "update", ("cube_id",)),
            ("adapter", parent.id, "update", ("cube_id",)),
            ("cube", work.id, "delete", ()),
        ]
    )
    assert log.rows[-1] == ("cube", work.id, "delete", ())
    assert store.conversations.get(conv.id).cube_id is None
    assert store.adapters.get(parent.id).cube_id is None

    check_log_covers_every_row(store, ["badge", "PIN", "Porto", "holiday", "figs"])


def check_log_covers_every_row(store: Store, secrets: list[str]) -> None:
    """Every row of every logged table has a create in the log (and no tombstone after it);
    every logged id whose row is gone ends with a tombstone; fields name real columns and the
    log holds no value."""
    ops: dict[tuple[str, str], list[str]] = defaultdict(list)
    for e, i, op, fields in since(store, 0):
        ops[(e, i)].append(op)
        assert op in ENTITIES[e]
        cols = {str(r[1]) for r in store.db.query(f"PRAGMA table_info({TABLES[e]})")}
        assert set(fields) <= cols | {"*", "embedding"}, (e, fields)
        if op in TOMBSTONES:
            assert fields == ()
    for entity, table in TABLES.items():
        live = {str(r[0]) for r in store.db.query(f"SELECT id FROM {table}")}
        assert live, table  # the workload touched it
        for i in live:
            assert ops[(entity, i)][0] == "create", (entity, i)
            assert ops[(entity, i)][-1] not in TOMBSTONES, (entity, i)
        for (e, i), seq in ops.items():
            if e == entity and i not in live:
                assert seq[-1] in TOMBSTONES, (e, i, seq)
    dump = repr(store.db.query("SELECT * FROM changes"))
    for secret in secrets:
        assert secret not in dump


def test_a_rolled_back_unit_of_work_leaves_no_change_row(store: Store) -> None:
    c = store.cubes.list()[0]
    user = store.users.list()[0]
    conv = store.conversations.create(user.id, c.id)
    before = store.db.scalar("SELECT count(*) FROM changes")
    with pytest.raises(RuntimeError), store.unit_of_work():
        store.memories.add(c, NewMemory(text="never"), vec(1))
        store.conversations.add_message(conv.id, "user", "never")
        raise RuntimeError("crash between the writes")
    assert store.db.scalar("SELECT count(*) FROM changes") == before
    assert store.conversations.messages(conv.id) == []


# --- (c) version keys and migration v5 ---------------------------------------------------------


def test_two_devices_can_both_write_version_n_of_one_memory(store: Store) -> None:
    c = store.cubes.list()[0]
    it = store.memories.add(c, NewMemory(text="Bo likes tea"), vec(1)).item
    store.memories.update(it.id, text="Bo likes green tea", embedding=vec(2))
    mine = store.memories.history(it.id)[-1]
    assert mine.version == 2 and re.fullmatch(r"[0-9a-f]{32}", mine.id)
    assert mine.hlc == store.db.scalar(
        "SELECT hlc FROM changes WHERE entity = 'memory_version' AND entity_id = ?", (mine.id,)
    )
    # another device's version 2 of the same memory, as a sync would store it
    theirs = Timestamp(Timestamp.parse(mine.hlc).physical_ms, 0, "zzdevice")
    with store.db.write() as w:
        w.execute(
            "INSERT INTO memory_versions (id, item_id, version, text, key, type, layer, status, "
            "confidence, importance, tags, change, changed_at, device_id, hlc) "
            "SELECT 'v-from-b', item_id, version, 'Bo likes black tea', key, type, layer, "
            "status, confidence, importance, tags, change, changed_at, 'zzdevice', ? "
            "FROM memory_versions WHERE id = ?",
            (str(theirs), mine.id),
        )
    h = store.memories.history(it.id)
    assert [v.version for v in h] == [1, 2, 2]
    assert sorted(v.hlc for v in h[1:]) == [v.hlc for v in h[1:]]  # same ordinal: HLC order
    assert {v.text for v in h[1:]} == {"Bo likes green tea", "Bo likes black tea"}


def _v4_profile_with_data(store: Store) -> tuple[Path, bytes]:
    """Replace the fixture's database with one at schema v4 (before this change) holding users,
    cubes, memories with several versions, conversations, messages, change rows and a job."""
    path = store.db.path
    key = keys.unwrap_key(keys.read_keyfile(store.dir / "key.json"), PASSPHRASE)
    store.close()
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    old = Database(path, key, create=True)
    assert migrate(old, target=4) == [1, 2, 4] and current_version(old) == 4
    now = 1_700_000_000.0
    with old.write() as c:
        c.execute("INSERT INTO meta VALUES ('profile_id', 'p'), ('device_id', 'dev1')")
        c.execute("INSERT INTO users (id, name, created_at) VALUES ('u1', 'me', ?)", (now,))
        c.execute(
            "INSERT INTO cubes (id, name, owner_id, embed_model, embed_dim, created_at, "
            "updated_at) VALUES ('c1', 'personal', 'u1', 'test-embed', 384, ?, ?)",
            (now, now),
        )
        texts = {
            "i1": ["Ivan collects stamps", "Ivan collects coins", "Ivan collects shells"],
            "i2": ["Mia is a nurse"],
            "i3": ["Leo lives in Oslo", "Leo lives in Bergen"],
        }
        seq = 0
        for n, (item, vs) in enumerate(texts.items(), start=1):
            c.execute(
                "INSERT INTO memory_items (rowid, id, cube_id, text, type, layer, status, "
                "created_at, updated_at, version, content_hash) VALUES (?, ?, 'c1', ?, 'fact', "
                "'long_term', 'active', ?, ?, ?, ?)",
                (n, item, vs[-1], now, now + len(vs), len(vs), f"h{n}"),
            )
            for v, text in enumerate(vs, start=1):
                c.execute(
                    "INSERT INTO memory_versions (item_id, version, text, key, type, layer, "
                    "status, confidence, importance, tags, change, reason, changed_at, "
                    "device_id) VALUES (?, ?, ?, '', 'fact', 'long_term', 'active', 1.0, 0.5, "
                    "'[\"t\"]', ?, 'why', ?, 'dev1')",
                    (item, v, text, "create" if v == 1 else "update", now + v),
                )
                seq += 1
                c.execute(
                    "INSERT INTO changes (hlc, device_id, entity, entity_id, op, fields, "
                    "created_at) VALUES (?, 'dev1', 'memory', ?, ?, '[\"*\"]', ?)",
                    (
                        str(Timestamp(int(now * 1000) + seq, 0, "dev1")),
                        item,
                        "create" if v == 1 else "update",
                        now,
                    ),
                )
        c.execute(
            "INSERT INTO conversations (id, user_id, cube_id, title, created_at, updated_at) "
            "VALUES ('k1', 'u1', 'c1', 'chat', ?, ?)",
            (now, now),
        )
        for s, (role, text) in enumerate([("user", "hi"), ("assistant", "hello Ivan")]):
            c.execute(
                "INSERT INTO messages (id, conversation_id, seq, role, content, created_at) "
                "VALUES (?, 'k1', ?, ?, ?, ?)",
                (f"m{s}", s, role, text, now),
            )
        c.execute(
            "INSERT INTO jobs (kind, run_after, created_at, updated_at) "
            "VALUES ('consolidate', 0, ?, ?)",
            (now, now),
        )
    old.close()
    return path, key


def _dump(db: Database, table: str, cols: str = "*") -> list[tuple[Any, ...]]:
    return sorted(db.query(f"SELECT {cols} FROM {table}"), key=repr)


OLD_VERSION_COLS = (
    "item_id, version, text, key, type, layer, status, confidence, importance, tags, "
    "valid_from, valid_to, change, reason, changed_at, device_id"
)
KEPT_TABLES = (
    "meta",
    "users",
    "cubes",
    "memory_items",
    "memory_tags",
    "conversations",
    "messages",
    "changes",
    "jobs",
    "adapters",
    "activation_states",
)


def test_migration_v5_keeps_every_row_and_gives_versions_unique_keys(store: Store) -> None:
    path, key = _v4_profile_with_data(store)
    db = Database(path, key)
    before = {t: _dump(db, t) for t in KEPT_TABLES}
    before_versions = _dump(db, "memory_versions", OLD_VERSION_COLS)
    assert len(before_versions) == 6
    db.close()

    with open_profile(resolve_paths(), "default", Settings()) as s:
        assert current_version(s.db) == LATEST == 7
        for t in KEPT_TABLES:
            assert _dump(s.db, t) == before[t], t
        assert _dump(s.db, "memory_versions", OLD_VERSION_COLS) == before_versions
        ids = [str(r[0]) for r in s.db.query("SELECT id FROM memory_versions")]
        assert len(set(ids)) == len(ids) == 6
        assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
        assert {r[0] for r in s.db.query("SELECT hlc FROM memory_versions")} == {""}
        assert [v.text for v in s.memories.history("i1")] == [
            "Ivan collects stamps",
            "Ivan collects coins",
            "Ivan collects shells",
        ]
        assert s.db.integrity_check() == ["ok"]
        assert s.db.scalar("PRAGMA foreign_key_check") is None
        # the migrated profile takes new writes: the next version's stamp is after every
        # stamp written before the upgrade, and its key is new
        old_top = s.db.scalar("SELECT max(hlc) FROM changes")
        up = s.memories.update("i1", text="Ivan collects fossils")
        h = s.memories.history("i1")
        assert [v.version for v in h] == [1, 2, 3, 4] and up.version == 4
        assert h[-1].id not in ids and h[-1].hlc > old_top
        assert s.searcher.fts("fossils", SearchFilters(), 5)[0][0] == 1
    # idempotent: opening again applies nothing
    db = Database(path, key)
    assert migrate(db) == []
    db.close()


# --- (d) the vector index reacts to memory rows only ------------------------------------------


def test_vector_index_skips_other_entities_and_follows_memory_rows(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = store.cubes.list()[0]
    store.searcher.resident = True
    a = store.memories.add(c, NewMemory(text="alpha"), vec(1)).item
    b = store.memories.add(c, NewMemory(text="beta"), vec(2)).item
    idx = store.searcher.index(DIM)
    everywhere = SearchFilters()
    assert [r for r, _, _ in idx.knn(vec(1), everywhere, 2)] == [a.rowid, b.rowid]
    loads: list[list[int] | None] = []
    real = idx._load_rows

    def spy(rowids: list[int] | None) -> None:
        loads.append(rowids)
        real(rowids)

    monkeypatch.setattr(idx, "_load_rows", spy)
    # a chat turn, a new user and cube, an adapter: the index reloads nothing
    ana = store.users.create("ana")
    work = store.cubes.create(ana, "work", embed_model="test-embed", embed_dim=DIM)
    store.cubes.rename(work, "job")
    conv = store.conversations.create(ana.id, work.id)
    store.conversations.add_message(conv.id, "user", "hello")
    store.conversations.update(conv.id, title="greeting")
    store.adapters.put(name="p", base_model_sha256=BASE, blob=b"x", user_id=ana.id)
    assert [r for r, _, _ in idx.knn(vec(1), everywhere, 2)] == [a.rowid, b.rowid]
    assert loads == []
    # a memory write is picked up, row by row
    store.memories.update(a.id, embedding=vec(3))
    assert idx.knn(vec(3), everywhere, 1)[0][0] == a.rowid
    assert loads == [[a.rowid]]
    # a cube delete removes its memories from the index (from their purge rows), no full reload
    w = store.memories.add(work, NewMemory(text="gamma"), vec(4)).item
    assert idx.knn(vec(4), everywhere, 1)[0][0] == w.rowid
    store.cubes.delete(work)
    assert w.rowid not in [r for r, _, _ in idx.knn(vec(4), everywhere, 5)]
    assert len(idx) == 2 and None not in loads
