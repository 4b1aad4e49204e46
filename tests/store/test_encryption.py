"""Privacy: no plaintext memory text on disk, anywhere, at any step."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import apsw

from memos_desktop.config import resolve_paths, setup_logging
from memos_desktop.memory.search import HybridSearch
from memos_desktop.store.db import DB_FILENAME
from memos_desktop.store.doctor import PLAINTEXT_HEADER
from memos_desktop.store.profile import Store
from memos_desktop.store.records import NewMemory, SearchFilters
from tests.store.conftest import DIM, vec

CANARY = "Zanzibar-canary-7Q4 my bank PIN is 8812"
CANARY2 = "Quetzalcoatl-canary-9K2 secret diary entry"


def forms(text: str) -> list[bytes]:
    words = [w for w in text.split() if len(w) >= 8]
    out = []
    for s in [text, *words]:
        out += [
            s.encode("utf-8"),
            s.encode("utf-16-le"),
            s.encode("utf-16-be"),
            s.lower().encode("utf-8"),
        ]
    return out


def files_under(*roots: Path) -> list[Path]:
    return [p for r in roots if r.exists() for p in r.rglob("*") if p.is_file()]


def assert_no_plaintext(roots: list[Path], *texts: str) -> int:
    checked = 0
    for p in files_under(*roots):
        data = p.read_bytes()
        checked += 1
        for t in texts:
            for f in forms(t):
                assert f not in data, f"plaintext {f[:20]!r} found in {p}"
    return checked


def test_no_plaintext_in_any_file_through_add_edit_search_delete(
    store: Store, isolated_home: Path, tmp_path: Path, monkeypatch
) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))
    setup_logging(resolve_paths(), level=logging.DEBUG)
    roots = [isolated_home, tmpdir]
    c = store.cubes.list()[0]
    filler = [NewMemory(text=f"filler note number {i} about gardening") for i in range(300)]
    store.memories.add_many(c, filler, [vec(100 + i) for i in range(300)])
    it = store.memories.add(c, NewMemory(text=CANARY, tags=("canary",)), vec(1)).item
    it2 = store.memories.add(c, NewMemory(text=CANARY2), vec(2)).item
    assert_no_plaintext(roots, CANARY, CANARY2)  # WAL holds the fresh pages: still encrypted
    store.memories.update(it.id, text=CANARY + " updated", embedding=vec(3))
    hits = HybridSearch(store.searcher, store.memories).search(
        "Zanzibar PIN", vec(3), DIM, SearchFilters(cube_ids=(c.id,))
    )
    assert hits and hits[0].item.id == it.id
    store.memories.forget(it2.id)
    store.db.checkpoint()
    n = assert_no_plaintext(roots, CANARY, CANARY2)
    assert n >= 2  # the DB and at least the key file / log were checked
    store.memories.purge([it.id, it2.id])
    store.db.vacuum()
    assert_no_plaintext(roots, CANARY, CANARY2)
    db = store.db.path
    assert db.read_bytes()[:16] != PLAINTEXT_HEADER
    for suffix in ("-wal", "-shm"):
        p = db.with_name(DB_FILENAME + suffix)
        assert not p.exists() or CANARY.encode() not in p.read_bytes()
    log_text = "".join(p.read_text(errors="replace") for p in (isolated_home / "logs").glob("*"))
    assert "Zanzibar" not in log_text


def _decrypted_copy(store: Store, dest: Path) -> bytes:
    """Decrypt a copy of the DB (rekey to no key) to look inside it as an attacker with the key
    would: the test's own copy, removed afterwards."""
    store.db.checkpoint()
    shutil.copy(store.db.path, dest)
    key = store.db.conn  # noqa: F841 - the key is held by the open connection, not exposed
    from memos_desktop.store import keys

    rec = keys.read_keyfile(store.dir / "key.json")
    raw = keys.unwrap_key(rec, os.environ["MEMOS_DESKTOP_PASSPHRASE"])
    c = apsw.Connection(str(dest))
    c.pragma("cipher", "chacha20")
    c.pragma("hexkey", raw.hex())
    c.pragma("journal_mode", "delete")
    c.pragma("hexrekey", "")
    c.close()
    data = dest.read_bytes()
    dest.unlink()
    return data


def test_purge_really_removes_the_text_from_the_database_pages(
    store: Store, tmp_path: Path
) -> None:
    c = store.cubes.list()[0]
    store.memories.add_many(
        c,
        [NewMemory(text=f"unrelated memory {i}") for i in range(200)],
        [vec(i) for i in range(200)],
    )
    it = store.memories.add(c, NewMemory(text=CANARY), vec(999)).item
    store.memories.update(it.id, importance=0.9)  # a second version in the history table
    plain = _decrypted_copy(store, tmp_path / "before.db")
    assert plain[:16] == PLAINTEXT_HEADER
    assert CANARY.encode() in plain  # sanity: the decrypted copy does show live text
    store.memories.forget(it.id)
    assert CANARY.encode() in _decrypted_copy(store, tmp_path / "forgot.db")  # soft delete keeps it
    store.memories.purge([it.id])
    plain = _decrypted_copy(store, tmp_path / "after.db")
    for f in forms(CANARY):
        assert f not in plain
