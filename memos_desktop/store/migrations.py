"""Numbered schema migrations, recorded in ``schema_migrations``.

Design rule: a migration is a function that only moves the schema forward, is applied in its own
transaction, and is never edited once released: add a new one instead. Vector tables are not
migrations: there is one ``vec0`` table per embedding dimension (``memory_vec_<dim>``), created
when the first cube of that dimension is.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import apsw

from memos_desktop.errors import MigrationError
from memos_desktop.store import records as models
from memos_desktop.store.db import Database

# Defined with the dataclasses (a light module the front ends import at start-up).
MEMORY_TYPES = models.MEMORY_TYPES
MEMORY_LAYERS = models.MEMORY_LAYERS
MEMORY_STATUSES = models.MEMORY_STATUSES


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def m001_core(c: apsw.Connection) -> None:
    c.execute(
        f"""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;

        CREATE TABLE users (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            display_name TEXT NOT NULL DEFAULT '',
            settings TEXT NOT NULL DEFAULT '{{}}',
            created_at REAL NOT NULL
        ) STRICT;

        CREATE TABLE cubes (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            owner_id TEXT NOT NULL REFERENCES users(id),
            description TEXT NOT NULL DEFAULT '',
            embed_model TEXT NOT NULL,
            embed_dim INTEGER NOT NULL CHECK (embed_dim > 0),
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            UNIQUE (owner_id, name)
        ) STRICT;

        -- rowid is the integer key shared with FTS5 and the vec0 tables.
        CREATE TABLE memory_items (
            rowid INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            cube_id TEXT NOT NULL REFERENCES cubes(id) ON DELETE CASCADE,
            text TEXT NOT NULL,
            key TEXT NOT NULL DEFAULT '',
            type TEXT NOT NULL CHECK (type IN ({_in(MEMORY_TYPES)})),
            layer TEXT NOT NULL CHECK (layer IN ({_in(MEMORY_LAYERS)})),
            status TEXT NOT NULL CHECK (status IN ({_in(MEMORY_STATUSES)})),
            source TEXT NOT NULL DEFAULT 'user',
            confidence REAL NOT NULL DEFAULT 1.0 CHECK (confidence BETWEEN 0 AND 1),
            importance REAL NOT NULL DEFAULT 0.5 CHECK (importance BETWEEN 0 AND 1),
            pinned INTEGER NOT NULL DEFAULT 0,
            tags TEXT NOT NULL DEFAULT '[]',
            sources TEXT NOT NULL DEFAULT '[]',
            valid_from REAL,
            valid_to REAL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            last_used_at REAL,
            use_count INTEGER NOT NULL DEFAULT 0,
            version INTEGER NOT NULL DEFAULT 1,
            supersedes TEXT,
            superseded_by TEXT,
            content_hash TEXT NOT NULL,
            embed_model TEXT NOT NULL DEFAULT '',
            -- Retrieval-only text (e.g. the turn before a conversation turn): indexed and
            -- embedded with the item, never shown as the memory itself.
            context TEXT NOT NULL DEFAULT ''
        ) STRICT;
        CREATE INDEX memory_items_cube_status ON memory_items (cube_id, status, created_at);
        CREATE INDEX memory_items_hash ON memory_items (cube_id, content_hash);

        CREATE TABLE memory_tags (
            item_rowid INTEGER NOT NULL REFERENCES memory_items(rowid) ON DELETE CASCADE,
            tag TEXT NOT NULL,
            PRIMARY KEY (tag, item_rowid)
        ) STRICT, WITHOUT ROWID;

        -- One row per version of an item: the full state as it was written, and why.
        CREATE TABLE memory_versions (
            item_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            text TEXT NOT NULL,
            key TEXT NOT NULL,
            type TEXT NOT NULL,
            layer TEXT NOT NULL,
            status TEXT NOT NULL,
            confidence REAL NOT NULL,
            importance REAL NOT NULL,
            tags TEXT NOT NULL,
            valid_from REAL,
            valid_to REAL,
            change TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            changed_at REAL NOT NULL,
            device_id TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (item_id, version)
        ) STRICT;

        CREATE VIRTUAL TABLE memory_fts USING fts5(
            text, key, tags, context,
            content='memory_items', content_rowid='rowid',
            tokenize='porter unicode61 remove_diacritics 2'
        );
        INSERT INTO memory_fts(memory_fts, rank) VALUES ('secure-delete', 1);
        CREATE TRIGGER memory_items_ai AFTER INSERT ON memory_items BEGIN
            INSERT INTO memory_fts(rowid, text, key, tags, context)
            VALUES (new.rowid, new.text, new.key, new.tags, new.context);
        END;
        CREATE TRIGGER memory_items_ad AFTER DELETE ON memory_items BEGIN
            INSERT INTO memory_fts(memory_fts, rowid, text, key, tags, context)
            VALUES ('delete', old.rowid, old.text, old.key, old.tags, old.context);
        END;
        CREATE TRIGGER memory_items_au AFTER UPDATE OF text, key, tags, context ON memory_items
        BEGIN
            INSERT INTO memory_fts(memory_fts, rowid, text, key, tags, context)
            VALUES ('delete', old.rowid, old.text, old.key, old.tags, old.context);
            INSERT INTO memory_fts(rowid, text, key, tags, context)
            VALUES (new.rowid, new.text, new.key, new.tags, new.context);
        END;

        CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id),
            cube_id TEXT REFERENCES cubes(id) ON DELETE SET NULL,
            title TEXT NOT NULL DEFAULT '',
            temporary INTEGER NOT NULL DEFAULT 0,
            archived INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        ) STRICT;

        CREATE TABLE messages (
            id TEXT PRIMARY KEY,
            conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
            content TEXT NOT NULL,
            created_at REAL NOT NULL,
            meta TEXT NOT NULL DEFAULT '{{}}',
            UNIQUE (conversation_id, seq)
        ) STRICT;
        """
    )


def m002_engines_daemon_sync(c: apsw.Connection) -> None:
    c.execute(
        """
        -- Activation memory: a saved KV state of a prompt prefix. Valid only for the exact
        -- model file, adapter, prefix and state-changing engine settings it was made with.
        CREATE TABLE activation_states (
            id TEXT PRIMARY KEY,
            user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
            cube_id TEXT REFERENCES cubes(id) ON DELETE CASCADE,
            model_sha256 TEXT NOT NULL,
            adapter_id TEXT NOT NULL DEFAULT '',
            prefix_sha256 TEXT NOT NULL,
            settings_key TEXT NOT NULL DEFAULT '',
            n_tokens INTEGER NOT NULL,
            token_ids BLOB NOT NULL,
            state BLOB NOT NULL,
            size_bytes INTEGER NOT NULL,
            created_at REAL NOT NULL,
            last_used_at REAL NOT NULL,
            use_count INTEGER NOT NULL DEFAULT 0,
            UNIQUE (model_sha256, adapter_id, prefix_sha256, settings_key)
        ) STRICT;
        CREATE INDEX activation_states_lru ON activation_states (last_used_at);

        -- Parametric memory: LoRA adapters (GGUF bytes) with their evaluation and lineage.
        CREATE TABLE adapters (
            id TEXT PRIMARY KEY,
            user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
            cube_id TEXT REFERENCES cubes(id) ON DELETE SET NULL,
            name TEXT NOT NULL,
            base_model_sha256 TEXT NOT NULL,
            format TEXT NOT NULL DEFAULT 'gguf-lora',
            blob BLOB NOT NULL,
            size_bytes INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            metrics TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL DEFAULT 'candidate'
                CHECK (status IN ('training', 'candidate', 'active', 'rejected', 'retired')),
            parent_id TEXT,
            created_at REAL NOT NULL,
            activated_at REAL
        ) STRICT;

        -- Durable job queue for the daemon.
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'done', 'failed', 'dead')),
            priority INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL DEFAULT 3,
            run_after REAL NOT NULL,
            dedupe_key TEXT UNIQUE,
            locked_by TEXT,
            locked_at REAL,
            last_error TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        ) STRICT;
        CREATE INDEX jobs_ready ON jobs (status, run_after, priority);

        -- Change log for sync: one row per change, ordered by hybrid logical clock.
        CREATE TABLE changes (
            seq INTEGER PRIMARY KEY,
            hlc TEXT NOT NULL,
            device_id TEXT NOT NULL,
            entity TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            op TEXT NOT NULL,
            fields TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL
        ) STRICT;
        CREATE INDEX changes_hlc ON changes (hlc);
        CREATE INDEX changes_entity ON changes (entity, entity_id);
        """
    )


def m004_job_leases(c: apsw.Connection) -> None:
    """Fenced leases (a token and an expiry per claim) and dedupe keys unique among active jobs
    only. SQLite cannot drop a column's UNIQUE, so the table is rebuilt; every job is kept, and
    a job running at upgrade time gets a lease of 600 s from when it was claimed (as before)."""
    c.execute(
        """
        CREATE TABLE jobs_v4 (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'done', 'failed', 'dead')),
            priority INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL DEFAULT 3,
            run_after REAL NOT NULL,
            dedupe_key TEXT,
            locked_by TEXT,
            locked_at REAL,
            lease_token TEXT,
            lease_until REAL,
            last_error TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        ) STRICT;
        INSERT INTO jobs_v4 (id, kind, payload, status, priority, attempts, max_attempts,
            run_after, dedupe_key, locked_by, locked_at, lease_token, lease_until, last_error,
            created_at, updated_at)
        SELECT id, kind, payload, status, priority, attempts, max_attempts, run_after,
            dedupe_key, locked_by, locked_at,
            CASE WHEN status = 'running' THEN lower(hex(randomblob(16))) END,
            CASE WHEN status = 'running' THEN coalesce(locked_at, 0) + 600 END,
            last_error, created_at, updated_at
        FROM jobs;
        DROP TABLE jobs;
        ALTER TABLE jobs_v4 RENAME TO jobs;
        CREATE INDEX jobs_ready ON jobs (status, run_after, priority);
        CREATE UNIQUE INDEX jobs_active_dedupe ON jobs (dedupe_key)
            WHERE dedupe_key IS NOT NULL AND status IN ('queued', 'running');
        """
    )


def m005_version_ids(c: apsw.Connection) -> None:
    """Version history that two devices can both write: each version gets its own random id
    (the key) and the HLC of its change-log row; ``version`` stays as the display ordinal, no
    longer unique per item. SQLite cannot change a primary key, so the table is rebuilt; every
    version is kept, with a new random id and an empty ``hlc`` (it was written before versions
    were logged)."""
    c.execute(
        """
        CREATE TABLE memory_versions_v5 (
            id TEXT PRIMARY KEY,
            item_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            text TEXT NOT NULL,
            key TEXT NOT NULL,
            type TEXT NOT NULL,
            layer TEXT NOT NULL,
            status TEXT NOT NULL,
            confidence REAL NOT NULL,
            importance REAL NOT NULL,
            tags TEXT NOT NULL,
            valid_from REAL,
            valid_to REAL,
            change TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            changed_at REAL NOT NULL,
            device_id TEXT NOT NULL DEFAULT '',
            hlc TEXT NOT NULL DEFAULT ''
        ) STRICT;
        INSERT INTO memory_versions_v5 (id, item_id, version, text, key, type, layer, status,
            confidence, importance, tags, valid_from, valid_to, change, reason, changed_at,
            device_id, hlc)
        SELECT lower(hex(randomblob(16))), item_id, version, text, key, type, layer, status,
            confidence, importance, tags, valid_from, valid_to, change, reason, changed_at,
            device_id, ''
        FROM memory_versions ORDER BY item_id, version;
        DROP TABLE memory_versions;
        ALTER TABLE memory_versions_v5 RENAME TO memory_versions;
        CREATE INDEX memory_versions_item ON memory_versions (item_id, version);
        """
    )


def m007_sync_state(c: apsw.Connection) -> None:
    """Folder sync (issue 11): this device's sync settings and key, its paired peers, the
    changeset files it applied, and the merge state: the HLC of every memory field's current
    value, the text edits (to see a fork: both sides edited the text), purge tombstones."""
    c.execute(
        """
        CREATE TABLE sync_config (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
        CREATE TABLE sync_peers (
            device_id TEXT PRIMARY KEY,
            identity TEXT NOT NULL,
            paired_at REAL NOT NULL,
            applied_upto INTEGER NOT NULL DEFAULT 0,
            last_seen REAL
        ) STRICT;
        CREATE TABLE sync_applied (
            device_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            applied_at REAL NOT NULL,
            PRIMARY KEY (device_id, seq)
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE sync_fields (
            memory_id TEXT NOT NULL,
            field TEXT NOT NULL,
            hlc TEXT NOT NULL,
            PRIMARY KEY (memory_id, field)
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE sync_text_edits (
            memory_id TEXT NOT NULL,
            hlc TEXT NOT NULL,
            base TEXT NOT NULL,
            PRIMARY KEY (memory_id, hlc)
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE sync_tombstones (memory_id TEXT PRIMARY KEY, hlc TEXT NOT NULL) STRICT;
        """
    )


def m008_mcp_access(c: apsw.Connection) -> None:
    """The MCP server's grants (which client may read or write which cube) and its audit log
    (every tool call, allowed or refused). Device-local like the job queue: neither is in the
    change log, so a grant given on one machine never opens another machine's memory."""
    c.execute(
        """
        CREATE TABLE mcp_grants (
            client TEXT NOT NULL,
            cube_id TEXT NOT NULL,  -- a cube's id, or '*' for every cube of the profile
            access TEXT NOT NULL CHECK (access IN ('read', 'write')),
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (client, cube_id)
        ) STRICT;

        CREATE TABLE mcp_audit (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            client TEXT NOT NULL,
            transport TEXT NOT NULL,
            tool TEXT NOT NULL,
            cube_id TEXT NOT NULL DEFAULT '',
            item_id TEXT NOT NULL DEFAULT '',
            args TEXT NOT NULL DEFAULT '{}',
            outcome TEXT NOT NULL
                CHECK (outcome IN ('started', 'ok', 'refused', 'error')),
            detail TEXT NOT NULL DEFAULT '',
            finished_at REAL
        ) STRICT;
        CREATE INDEX mcp_audit_client ON mcp_audit (client, id);
        """
    )


MIGRATIONS: list[tuple[int, str, Callable[[apsw.Connection], None]]] = [
    (1, "core: users, cubes, memory items, versions, FTS5, conversations", m001_core),
    (2, "activation states, adapters, job queue, change log", m002_engines_daemon_sync),
    # v3 was set aside for the change log while it was developed in parallel; v4 came first,
    # so the change log is v5 and v3 stays unused (numbers need not be contiguous).
    (4, "job leases with tokens; dedupe keys unique among active jobs", m004_job_leases),
    (
        5,
        "memory versions keyed by their own id (two devices can both edit one memory)",
        m005_version_ids,
    ),
    # 6 is unused. 7 (device sync, issue 11) and 8 (the MCP server, issue 13) were built in
    # parallel; the runner applies every missing number, so either order reaches both.
    (7, "sync state: config, peers, applied changesets, field clocks, tombstones", m007_sync_state),
    (8, "MCP client grants and the MCP audit log", m008_mcp_access),
]
LATEST = MIGRATIONS[-1][0]


def current_version(db: Database) -> int:
    exists = db.scalar(
        "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='schema_migrations'"
    )
    if not exists:
        return 0
    return int(db.scalar("SELECT coalesce(max(version), 0) FROM schema_migrations"))


def migrate(db: Database, target: int | None = None) -> list[int]:
    """Apply pending migrations up to ``target`` (default: all). Returns the versions applied."""
    target = LATEST if target is None else target
    with db.write() as c:
        c.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL) STRICT"
        )
    have = current_version(db)
    if have > LATEST:
        raise MigrationError(
            f"the database schema (v{have}) is newer than this memos-desktop knows (v{LATEST})",
            hint="upgrade memos-desktop; the database was not changed",
        )
    # Any missing number is applied, not only those above the highest: migrations landed out
    # of order (8 before 7) must still reach a database that got the higher one first.
    done = {int(r[0]) for r in db.query("SELECT version FROM schema_migrations")}
    applied = []
    for version, name, fn in MIGRATIONS:
        if version in done or version > target:
            continue
        try:
            with db.write() as c:
                fn(c)
                c.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, time.time()),
                )
        except apsw.Error as exc:
            raise MigrationError(
                f"schema migration {version} ({name}) failed: {exc}",
                hint="the database was left at the previous version; report this bug",
            ) from exc
        applied.append(version)
    return applied


def vec_table(dim: int) -> str:
    return f"memory_vec_{int(dim)}"


def ensure_vec_table(c: apsw.Connection, dim: int) -> str:
    """Create the vec0 table for ``dim`` if missing (see search.py for why bit + float)."""
    name = vec_table(dim)
    c.execute(
        f"""
        CREATE VIRTUAL TABLE IF NOT EXISTS {name} USING vec0(
            cube_id TEXT PARTITION KEY,
            embedding float[{int(dim)}] distance_metric=cosine,
            type TEXT,
            layer TEXT,
            status TEXT,
            created_at FLOAT
        )
        """
    )
    return name
