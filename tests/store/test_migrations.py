from __future__ import annotations

import time

import pytest

from memos_desktop.config import Settings, resolve_paths
from memos_desktop.errors import MigrationError
from memos_desktop.store import keys
from memos_desktop.store.db import Database
from memos_desktop.store.migrations import LATEST, MIGRATIONS, current_version, migrate
from memos_desktop.store.profile import Store, open_profile
from memos_desktop.store.records import SearchFilters
from tests.conftest import PASSPHRASE


def tables(db: Database) -> set[str]:
    return {r[0] for r in db.query("SELECT name FROM sqlite_master WHERE type IN ('table')")}


def test_blank_database_migrates_to_latest(tmp_path) -> None:
    db = Database(tmp_path / "m.db", b"k" * 32, create=True)
    assert current_version(db) == 0
    assert migrate(db) == [v for v, _, _ in MIGRATIONS]
    assert current_version(db) == LATEST
    assert {
        "memory_items",
        "memory_versions",
        "memory_fts",
        "cubes",
        "users",
        "conversations",
        "messages",
        "activation_states",
        "adapters",
        "jobs",
        "changes",
    } <= tables(db)
    assert migrate(db) == []  # idempotent
    db.close()


def test_upgrade_from_v1_keeps_data(store: Store) -> None:
    """An old profile (schema v1, before activation/adapters/jobs/changes) upgrades in place."""
    path, key = (
        store.db.path,
        keys.unwrap_key(keys.read_keyfile(store.dir / "key.json"), PASSPHRASE),
    )
    store.close()
    path.unlink()
    # A profile from before the high-water mark (issue 15) has no memos.mark.
    (path.parent / "memos.mark").unlink()
    old = Database(path, key, create=True)
    migrate(old, target=1)
    assert current_version(old) == 1 and "jobs" not in tables(old)
    now = time.time()
    with old.write() as c:
        c.execute("INSERT INTO meta VALUES ('profile_id', 'p'), ('device_id', 'dev1')")
        c.execute("INSERT INTO users (id, name, created_at) VALUES ('u1', 'me', ?)", (now,))
        c.execute(
            "INSERT INTO cubes (id, name, owner_id, embed_model, embed_dim, created_at, "
            "updated_at) VALUES ('c1', 'personal', 'u1', 'test-embed', 384, ?, ?)",
            (now, now),
        )
        c.execute(
            "INSERT INTO memory_items (id, cube_id, text, type, layer, status, created_at, "
            "updated_at, content_hash) VALUES ('i1', 'c1', 'Ivan collects stamps', 'fact', "
            "'long_term', 'active', ?, ?, 'h')",
            (now, now),
        )
    old.close()
    with open_profile(resolve_paths(), "default", Settings()) as s:
        assert current_version(s.db) == LATEST
        assert s.memories.get("i1").text == "Ivan collects stamps"
        assert [h[0] for h in s.searcher.fts("stamps", SearchFilters(), 5)] == [1]
        assert "jobs" in tables(s.db)


def test_newer_schema_is_refused_without_change(tmp_path) -> None:
    db = Database(tmp_path / "n.db", b"k" * 32, create=True)
    migrate(db)
    with db.write() as c:
        c.execute("INSERT INTO schema_migrations VALUES (?, 'from the future', 0)", (LATEST + 1,))
    with pytest.raises(MigrationError, match="newer than this memos-desktop"):
        migrate(db)
    db.close()


def test_a_migration_landed_out_of_order_is_still_applied(tmp_path) -> None:
    """A database that got the newest migration before an older number existed (two branches
    released in either order) still gets the older one."""
    db = Database(tmp_path / "m.db", b"k" * 32, create=True)
    *_, (skipped, _, _), (newest, name, fn) = MIGRATIONS
    migrate(db, target=skipped - 1)
    with db.write() as c:  # as if this build had only the newest one above ``skipped - 1``
        fn(c)
        c.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (newest, name, time.time()),
        )
    assert migrate(db) == [skipped]
    have = {r[0] for r in db.query("SELECT version FROM schema_migrations")}
    assert have == {v for v, _, _ in MIGRATIONS}
    db.close()
