from __future__ import annotations

import pytest

from memos_desktop.errors import InvalidInputError, ItemNotFoundError
from memos_desktop.store.profile import Store
from memos_desktop.store.records import NewMemory, SearchFilters, Source
from tests.store.conftest import vec


def cube(store: Store):
    return store.cubes.list()[0]


def test_add_get_and_fields_roundtrip(store: Store) -> None:
    c = cube(store)
    src = Source(kind="conversation", conversation_id="c1", message_id="m1", role="user", at=1.0)
    r = store.memories.add(
        c,
        NewMemory(
            text="  Alice is vegetarian ",
            type="preference",
            layer="user",
            key="diet",
            tags=("Food", "food", "health"),
            importance=0.9,
            confidence=0.8,
            sources=(src,),
            valid_from=100.0,
        ),
        vec(1),
    )
    assert r.created
    it = store.memories.get(r.item.id)
    assert it.text == "Alice is vegetarian"
    assert it.type == "preference" and it.layer == "user" and it.key == "diet"
    assert it.tags == ("food", "health")
    assert it.sources == (src,)
    assert it.valid_from == 100.0 and it.valid_to is None
    assert it.version == 1 and it.status == "active"
    assert it.embed_model == "test-embed"
    assert store.memories.get(it.id[:8]).id == it.id  # short ids work


def test_content_hash_dedupes_case_and_whitespace(store: Store) -> None:
    c = cube(store)
    a = store.memories.add(c, NewMemory(text="Bob lives in Paris"), vec(1))
    b = store.memories.add(c, NewMemory(text="bob   lives in PARIS "), vec(2))
    assert a.created and not b.created
    assert b.item.id == a.item.id
    batch = store.memories.add_many(
        c,
        [NewMemory(text="x one"), NewMemory(text="X  one"), NewMemory(text="x two")],
        [vec(3), vec(4), vec(5)],
    )
    assert [r.created for r in batch] == [True, False, True]
    assert batch[1].item.id == batch[0].item.id
    assert store.memories.count(SearchFilters(cube_ids=(c.id,))) == 3


def test_update_versions_and_history(store: Store) -> None:
    c = cube(store)
    it = store.memories.add(c, NewMemory(text="Carol works at Acme"), vec(1)).item
    up = store.memories.update(
        it.id, text="Carol works at Globex", embedding=vec(2), reason="job change"
    )
    assert up.version == 2 and up.text == "Carol works at Globex"
    up2 = store.memories.update(it.id, importance=0.9, tags=("work",))
    assert up2.version == 3
    h = store.memories.history(it.id)
    assert [v.version for v in h] == [1, 2, 3]
    assert [v.change for v in h] == ["create", "update", "update"]
    assert h[0].text == "Carol works at Acme" and h[1].reason == "job change"
    # an unchanged update writes no version
    assert store.memories.update(it.id, importance=0.9).version == 3


def test_text_change_without_embedding_leaves_vector_index(store: Store) -> None:
    c = cube(store)
    it = store.memories.add(c, NewMemory(text="Dan likes tea"), vec(1)).item
    assert store.memories.vectors(c.embed_dim, [it.rowid])
    up = store.memories.update(it.id, text="Dan likes coffee")
    assert up.embed_model == ""
    assert not store.memories.vectors(c.embed_dim, [it.rowid])


def test_forget_restore_supersede(store: Store) -> None:
    c = cube(store)
    old = store.memories.add(c, NewMemory(text="Eve lives in Rome"), vec(1)).item
    new = store.memories.add(c, NewMemory(text="Eve lives in Berlin"), vec(2)).item
    archived = store.memories.supersede(old.id, new.id, at=1000.0, reason="moved")
    assert archived.status == "archived" and archived.valid_to == 1000.0
    assert archived.superseded_by == new.id
    assert store.memories.get(new.id).supersedes == old.id
    gone = store.memories.forget(new.id, "wrong")
    assert gone.status == "deleted"
    assert store.memories.count(SearchFilters(cube_ids=(c.id,))) == 0
    back = store.memories.restore(new.id)
    assert back.status == "active"
    assert [v.change for v in store.memories.history(old.id)] == ["create", "supersede"]
    assert [v.change for v in store.memories.history(new.id)] == ["create", "delete", "restore"]


def test_purge_removes_item_history_and_vectors(store: Store) -> None:
    c = cube(store)
    it = store.memories.add(c, NewMemory(text="Frank's PIN is 4321"), vec(1)).item
    store.memories.update(it.id, text="Frank's PIN is 9999", embedding=vec(2))
    assert store.memories.purge([it.id]) == 1
    with pytest.raises(ItemNotFoundError):
        store.memories.get(it.id)
    assert store.db.scalar("SELECT count(*) FROM memory_versions WHERE item_id = ?", (it.id,)) == 0
    assert not store.memories.vectors(c.embed_dim, [it.rowid])
    assert store.searcher.fts("PIN", SearchFilters(statuses=()), 10) == []
    # the change log keeps a tombstone without text
    ops = store.db.query("SELECT op, fields FROM changes WHERE entity_id = ?", (it.id,))
    assert ops[-1][0] == "purge"
    assert all("PIN" not in f for _, f in ops)


def test_invalid_input_is_rejected_clearly(store: Store) -> None:
    c = cube(store)
    with pytest.raises(InvalidInputError, match="needs some text"):
        store.memories.add(c, NewMemory(text="   "), vec(1))
    with pytest.raises(InvalidInputError, match="unknown memory type"):
        store.memories.add(c, NewMemory(text="x", type="gossip"), vec(1))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="384 dimensions"):
        store.memories.add(c, NewMemory(text="x"), [0.1, 0.2])
    with pytest.raises(ItemNotFoundError):
        store.memories.get("nope")


def test_list_filters_and_order(store: Store) -> None:
    c = cube(store)
    store.memories.add_many(
        c,
        [
            NewMemory(text="a fact", type="fact", tags=("x",), created_at=100.0),
            NewMemory(text="a pref", type="preference", layer="user", created_at=200.0),
            NewMemory(text="an event", type="event", tags=("x", "y"), created_at=300.0),
        ],
        [vec(1), vec(2), vec(3)],
    )
    f = SearchFilters(cube_ids=(c.id,))
    assert [i.text for i in store.memories.list(f)] == ["an event", "a pref", "a fact"]
    assert [i.text for i in store.memories.list(SearchFilters(tags=("x",)))] == [
        "an event",
        "a fact",
    ]
    assert [i.text for i in store.memories.list(SearchFilters(types=("preference",)))] == ["a pref"]
    assert [i.text for i in store.memories.list(SearchFilters(layers=("user",)))] == ["a pref"]
    assert [i.text for i in store.memories.list(SearchFilters(since=150, until=300))] == ["a pref"]


def test_change_log_orders_by_hlc(store: Store) -> None:
    c = cube(store)
    it = store.memories.add(c, NewMemory(text="g"), vec(1)).item
    store.memories.update(it.id, importance=0.7)
    rows = store.db.query("SELECT hlc, op FROM changes WHERE entity_id = ? ORDER BY seq", (it.id,))
    assert [op for _, op in rows] == ["create", "update"]
    assert rows[0][0] < rows[1][0]
