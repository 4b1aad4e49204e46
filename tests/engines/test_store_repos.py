"""The repositories of activation and parametric memory, on a real encrypted profile DB."""

from __future__ import annotations

import time

import pytest

from memos_desktop.engines.base import KVState
from memos_desktop.errors import InvalidInputError, NotFoundError
from memos_desktop.memory.adapters import rollback
from memos_desktop.store.activation import ActivationRepo, pack_tokens, unpack_tokens
from memos_desktop.store.adapters import AdapterRepo
from memos_desktop.store.profile import Store


def kv(prefix: str, size: int = 1000, model: str = "m" * 64, adapter: str = "") -> KVState:
    return KVState(
        model_sha256=model,
        adapter_id=adapter,
        prefix_sha256=prefix,
        settings_key="n_ctx=1024",
        token_ids=(2, 70000, 5),
        state=bytes([len(prefix) % 256]) * size,
        n_tokens=3,
    )


def test_tokens_are_packed_int32_not_pickled() -> None:
    blob = pack_tokens((1, 2, 262143))
    assert blob == b"\x01\0\0\0\x02\0\0\0\xff\xff\x03\0"
    assert unpack_tokens(blob) == (1, 2, 262143)
    with pytest.raises(ValueError):
        unpack_tokens(b"\x01\x02\x03")


def test_put_get_is_exact_and_counts_use(store: Store) -> None:
    repo = ActivationRepo(store.db)
    s = kv("p1")
    sid = repo.put(s, user_id=store.users.get("me").id)
    got = repo.get(*s.key)
    assert got is not None and got.id == sid
    assert KVState.from_record(got) == s
    assert got.use_count == 1 and got.size_bytes == 1000 + 12
    assert repo.get(*s.key).use_count == 2  # type: ignore[union-attr]
    for other in (
        kv("p2").key,
        kv("p1", model="x" * 64).key,
        kv("p1", adapter="a").key,
        (*s.key[:3], "n_ctx=2048"),
    ):
        assert repo.get(*other) is None


def test_put_replaces_on_the_same_key(store: Store) -> None:
    repo = ActivationRepo(store.db)
    first = repo.put(kv("p", size=10))
    second = repo.put(kv("p", size=20))
    assert first == second and repo.count() == 1
    assert repo.total_bytes() == 20 + 12


def test_put_refuses_inconsistent_states(store: Store) -> None:
    with pytest.raises(InvalidInputError):
        ActivationRepo(store.db).put(KVState("m", "", "p", "s", (1, 2), b"x", 3))


def test_evict_to_drops_least_recently_used_first(store: Store) -> None:
    repo = ActivationRepo(store.db)
    for name in ("old", "mid", "new"):
        repo.put(kv(name))
        time.sleep(0.01)
    repo.get(*kv("old").key)  # "old" is now the most recently used
    assert repo.evict_to(10**9) == 0
    assert repo.evict_to(2 * 1012) == 1
    assert repo.get(*kv("mid").key) is None
    assert repo.get(*kv("old").key) is not None and repo.get(*kv("new").key) is not None
    assert repo.evict_to(0) == 2 and repo.total_bytes() == 0


def test_delete_and_delete_where(store: Store) -> None:
    repo = ActivationRepo(store.db)
    sid = repo.put(kv("a"))
    repo.put(kv("b", adapter="ad1"))
    repo.put(kv("c", model="z" * 64))
    assert repo.delete(sid) and not repo.delete(sid)
    assert repo.delete_where(adapter_id="ad1") == 1
    assert repo.delete_where(model_sha256="z" * 64) == 1
    assert repo.count() == 0
    with pytest.raises(InvalidInputError):
        repo.delete_where()


def test_damaged_row_is_a_miss_and_is_dropped(store: Store) -> None:
    repo = ActivationRepo(store.db)
    s = kv("p")
    repo.put(s)
    with store.db.write() as c:
        c.execute("UPDATE activation_states SET token_ids = x'010203'")
    assert repo.get(*s.key) is None
    assert repo.count() == 0


# --- adapters ----------------------------------------------------------------------------------

BASE = "b" * 64


def test_adapter_put_get_blob_list(store: Store) -> None:
    repo = AdapterRepo(store.db)
    me = store.users.get("me").id
    a = repo.put(
        name="weekly", base_model_sha256=BASE, blob=b"GGUF...a", user_id=me, metrics={"loss": 1.5}
    )
    assert a.status == "candidate" and a.size_bytes == 8 and a.metrics == {"loss": 1.5}
    assert repo.blob(a.id) == b"GGUF...a"
    assert [x.id for x in repo.list(user_id=me)] == [a.id]
    assert repo.list(status="active") == []
    assert repo.set_metrics(a.id, {"loss": 1.2, "win_rate": 0.6}).metrics["win_rate"] == 0.6
    with pytest.raises(NotFoundError):
        repo.get("nope")
    with pytest.raises(InvalidInputError):
        repo.put(name="x", base_model_sha256=BASE, blob=b"x", status="active")


def test_damaged_adapter_blob_is_detected(store: Store) -> None:
    repo = AdapterRepo(store.db)
    a = repo.put(name="x", base_model_sha256=BASE, blob=b"GGUF-good")
    with store.db.write() as c:
        c.execute("UPDATE adapters SET blob = x'00' WHERE id = ?", (a.id,))
    with pytest.raises(InvalidInputError, match="damaged"):
        repo.blob(a.id)


def test_activate_retires_the_previous_and_rollback_restores_the_parent(store: Store) -> None:
    repo = AdapterRepo(store.db)
    me = store.users.get("me").id
    v1 = repo.put(name="v1", base_model_sha256=BASE, blob=b"1", user_id=me)
    repo.activate(v1.id)
    v2 = repo.put(name="v2", base_model_sha256=BASE, blob=b"2", user_id=me, parent_id=v1.id)
    other_model = repo.put(name="o", base_model_sha256="c" * 64, blob=b"3", user_id=me)
    repo.activate(other_model.id)
    assert repo.activate(v2.id).status == "active"
    assert repo.get(v1.id).status == "retired"
    assert repo.get(other_model.id).status == "active"  # another base model: untouched
    assert repo.active(me, BASE).id == v2.id  # type: ignore[union-attr]
    back = rollback(store, me, BASE)
    assert back is not None and back.id == v1.id and back.status == "active"
    assert repo.get(v2.id).status == "rejected"
    with pytest.raises(InvalidInputError):
        repo.activate(v2.id)  # a rejected adapter stays rejected
    assert rollback(store, me, BASE) is None  # v1 has no parent: back to the base model
    assert repo.active(me, BASE) is None
    with pytest.raises(NotFoundError):
        rollback(store, me, BASE)


def test_status_changes_and_delete(store: Store) -> None:
    repo = AdapterRepo(store.db)
    a = repo.put(name="t", base_model_sha256=BASE, blob=b"1", status="training")
    assert repo.set_status(a.id, "candidate").status == "candidate"
    with pytest.raises(InvalidInputError):
        repo.set_status(a.id, "active")
    repo.activate(a.id)
    with pytest.raises(InvalidInputError):
        repo.delete(a.id)
    rollback(store, None, BASE)
    assert repo.delete(a.id)
    with pytest.raises(NotFoundError):
        repo.put(name="child", base_model_sha256=BASE, blob=b"2", parent_id=a.id)
