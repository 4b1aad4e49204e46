"""Pairing through the folder, and the merge rules one at a time (issue 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from memos_desktop.api import sync_ops
from memos_desktop.api.facade import MemosAPI
from memos_desktop.errors import SyncError
from memos_desktop.sync.pairing import devices_dir
from tests.sync.devices import Device, new_device, pair_all


def _two(tmp_path: Path) -> tuple[Device, Device, Path]:
    folder = tmp_path / "folder"
    folder.mkdir()
    return new_device(tmp_path, "a", folder), new_device(tmp_path, "b", folder), folder


def _round(*devices: Device) -> None:
    for _ in range(2):
        for d in devices:
            assert not d.sync.sync_now().refused


def test_pairing_needs_the_code_both_devices_show(tmp_path: Path) -> None:
    a, b, _ = _two(tmp_path)
    assert a.sync.setup(a.folder) is True  # the first device makes the sync key
    assert b.sync.setup(b.folder) is False
    code = a.sync.code(b.store.device_id)
    assert b.sync.code(a.store.device_id) == code
    wrong = "000 000" if code != "000 000" else "111 111"
    with pytest.raises(SyncError, match="does not match"):
        a.sync.pair(b.store.device_id, wrong)
    assert a.sync.paired() == []
    with pytest.raises(SyncError, match="no device"):
        a.sync.pair("ffff", code)
    a.sync.pair(b.store.device_id[:6], code)
    assert b.sync.sync_now().waiting.startswith("no sync key")  # b trusts no one yet
    b.sync.pair(a.store.device_id, code)
    assert b.sync.sync_key is None
    b.sync.sync_now()
    assert b.sync.sync_key == a.sync.sync_key  # granted through the folder, to b's key only


def test_a_folder_holding_the_profile_is_refused(tmp_path: Path) -> None:
    a, _, _ = _two(tmp_path)
    for bad in (a.store.dir, a.store.dir / "sub", a.home):
        bad.mkdir(exist_ok=True)
        with pytest.raises(SyncError, match="live database"):
            a.sync.setup(bad)
    assert a.sync.folder is None


def test_two_devices_that_each_made_a_key_agree_on_one(tmp_path: Path) -> None:
    a, b, _ = _two(tmp_path)
    (tmp_path / "fa").mkdir()
    (tmp_path / "fb").mkdir()
    assert a.sync.setup(tmp_path / "fa") and b.sync.setup(tmp_path / "fb")  # not replicated
    a.sync.setup(a.folder)
    b.sync.setup(b.folder)
    assert a.sync.sync_key != b.sync.sync_key
    pair_all([a, b])
    _round(a, b)
    assert a.sync.sync_key == b.sync.sync_key
    x = a.add("tea from a")
    _round(a, b)
    assert x in b.live_ids()


def test_files_of_an_unpaired_device_are_ignored(tmp_path: Path) -> None:
    a, b, folder = _two(tmp_path)
    pair_all([a, b])
    _round(a, b)
    c = new_device(tmp_path, "c", folder)
    c.sync.setup(folder)
    c.sync.pair(a.store.device_id, c.sync.code(a.store.device_id))  # c trusts a; a does not
    c.add("an intruder's memory")
    c.sync.sync_now()
    assert c.sync.sync_key is None  # a never granted it a key: it can write nothing
    assert not list((devices_dir(folder) / c.store.device_id).glob("*.mcs"))
    _round(a, b)
    assert all("intruder" not in t for t in a.texts())


def test_concurrent_text_edits_are_a_visible_conflict_until_edited_again(
    tmp_path: Path,
) -> None:
    a, b, _ = _two(tmp_path)
    pair_all([a, b])
    x = a.add("I like green tea")
    _round(a, b)
    a.store.memories.update(x, text="I like black tea")
    b.store.memories.update(x, text="I like oolong tea")
    _round(a, b)
    assert a.dump() == b.dump()
    ((mid, kept, edits),) = a.sync.status().conflicts
    assert mid == x and len(edits) == 2
    assert kept == a.store.memories.get(x).text == b.store.memories.get(x).text
    line = sync_ops.status_line(MemosAPI(a.store, None))
    assert line.startswith("sync just now (1 device)") and line.endswith("1 conflict")
    history = {v.text for v in b.store.memories.history(x)}
    assert {"I like black tea", "I like oolong tea"} <= history  # the other text is kept
    b.store.memories.update(x, text="I like both teas")  # seen both: resolves it
    _round(a, b)
    assert a.sync.status().conflicts == [] == b.sync.status().conflicts
    assert a.store.memories.get(x).text == "I like both teas"


def test_edits_to_different_fields_both_survive(tmp_path: Path) -> None:
    a, b, _ = _two(tmp_path)
    pair_all([a, b])
    x = a.add("I like green tea")
    _round(a, b)
    a.store.memories.update(x, importance=0.9)
    b.store.memories.update(x, tags=["drinks"])
    _round(a, b)
    for d in (a, b):
        item = d.store.memories.get(x)
        assert item.importance == 0.9 and item.tags == ("drinks",)
    assert a.sync.status().conflicts == []


def test_a_purge_beats_a_concurrent_edit_everywhere(tmp_path: Path) -> None:
    a, b, _ = _two(tmp_path)
    pair_all([a, b])
    x = a.add("my old address is 12 Elm Street")
    _round(a, b)
    b.store.memories.update(x, text="my old address is 14 Elm Street")
    a.store.memories.purge([x])
    _round(a, b)
    for d in (a, b):
        assert x not in d.live_ids()
        assert not d.store.db.scalar("SELECT count(*) FROM memory_fts WHERE memory_fts MATCH 'Elm'")
        assert not d.store.db.scalar("SELECT count(*) FROM memory_versions WHERE item_id = ?", (x,))
    # Compacted after the purge: no file of either device still holds the text, only the
    # tombstone.
    entries = [e for d in (a, b) for e in d.sync_entries()]
    assert all("Elm" not in str(e) for e in entries)
    assert [e for e in entries if e["id"] == x] and all(
        set(e) == {"id", "purged"} for e in entries if e["id"] == x
    )


def test_a_new_device_catches_up_from_a_snapshot(tmp_path: Path) -> None:
    a, b, folder = _two(tmp_path)
    a.compact_every = 3
    pair_all([a, b])
    _round(a, b)
    ids = []
    for r in range(8):
        ids.append(a.add(f"fact {r}"))
        a.sync.sync_now()
    own = sorted(p.name for p in (devices_dir(folder) / a.store.device_id).glob("*.mcs"))
    assert any(n.startswith("snap-") for n in own) and len(own) < 8  # compacted
    c = new_device(tmp_path, "c", folder)
    pair_all([a, b, c])
    _round(a, b, c)
    assert set(ids) <= set(c.live_ids())
    assert a.dump() == b.dump() == c.dump()
