"""Activation memory at rest: saved KV states of prompt prefixes, in the encrypted database.

Design rules:
- A state is found only by its full key (model file sha256, adapter id, prefix sha256, settings
  key); there is no "closest match". The engine checks the key again before restoring.
- Token ids are stored as packed little-endian int32 and the state as raw bytes: no pickle.
- The bytes live only in the encrypted profile DB: never in a plaintext file, temp file or log.
- States are a cache: a damaged row is deleted and reported as a miss, and the total size is
  bounded by evicting the least recently used states first.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from typing import Any, Protocol

import numpy as np

from memos_desktop.errors import InvalidInputError
from memos_desktop.store.db import Database
from memos_desktop.store.records import ActivationState

log = logging.getLogger(__name__)

_COLS = (
    "id, model_sha256, adapter_id, prefix_sha256, settings_key, n_tokens, token_ids, state, "
    "size_bytes, created_at, last_used_at, use_count"
)


class KVStateLike(Protocol):
    """What the repository needs from a KV state (``engines.base.KVState`` is one)."""

    @property
    def model_sha256(self) -> str: ...
    @property
    def adapter_id(self) -> str: ...
    @property
    def prefix_sha256(self) -> str: ...
    @property
    def settings_key(self) -> str: ...
    @property
    def token_ids(self) -> tuple[int, ...]: ...
    @property
    def state(self) -> bytes: ...
    @property
    def n_tokens(self) -> int: ...


def pack_tokens(token_ids: tuple[int, ...] | list[int]) -> bytes:
    return np.asarray(token_ids, dtype="<i4").tobytes()


def unpack_tokens(blob: bytes) -> tuple[int, ...]:
    if len(blob) % 4:
        raise ValueError("token blob length is not a multiple of 4")
    return tuple(int(t) for t in np.frombuffer(blob, dtype="<i4"))


class ActivationRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def put(self, s: KVStateLike, *, user_id: str | None = None, cube_id: str | None = None) -> str:
        """Insert or replace the state under its key; returns the row id (kept on replace)."""
        if s.n_tokens <= 0 or s.n_tokens != len(s.token_ids) or not s.state:
            raise InvalidInputError("a KV state needs tokens, matching n_tokens, and state bytes")
        tokens = pack_tokens(s.token_ids)
        size = len(s.state) + len(tokens)
        now = time.time()
        with self.db.write() as c:
            c.execute(
                """
                INSERT INTO activation_states (id, user_id, cube_id, model_sha256, adapter_id,
                    prefix_sha256, settings_key, n_tokens, token_ids, state, size_bytes,
                    created_at, last_used_at, use_count)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)
                ON CONFLICT (model_sha256, adapter_id, prefix_sha256, settings_key) DO UPDATE SET
                    user_id = coalesce(excluded.user_id, user_id),
                    cube_id = coalesce(excluded.cube_id, cube_id),
                    n_tokens = excluded.n_tokens, token_ids = excluded.token_ids,
                    state = excluded.state, size_bytes = excluded.size_bytes,
                    created_at = excluded.created_at, last_used_at = excluded.last_used_at
                """,
                (
                    uuid.uuid4().hex,
                    user_id,
                    cube_id,
                    s.model_sha256,
                    s.adapter_id,
                    s.prefix_sha256,
                    s.settings_key,
                    s.n_tokens,
                    tokens,
                    s.state,
                    size,
                    now,
                    now,
                ),
            )
            rows = list(
                c.execute(
                    "SELECT id FROM activation_states WHERE model_sha256 = ? AND adapter_id = ? "
                    "AND prefix_sha256 = ? AND settings_key = ?",
                    (s.model_sha256, s.adapter_id, s.prefix_sha256, s.settings_key),
                )
            )
        return str(rows[0][0])

    def get(
        self, model_sha256: str, adapter_id: str, prefix_sha256: str, settings_key: str
    ) -> ActivationState | None:
        """The state with exactly this key, or None. A hit counts as a use (for eviction)."""
        row = self.db.query_one(
            f"SELECT {_COLS} FROM activation_states WHERE model_sha256 = ? AND adapter_id = ? "
            "AND prefix_sha256 = ? AND settings_key = ?",
            (model_sha256, adapter_id, prefix_sha256, settings_key),
        )
        if row is None:
            return None
        # Read first, then touch only the small columns. SQLite overwrites a record in place
        # (only the changed pages) when its size is unchanged, so this costs ~10 ms for a
        # 13 MiB state; an UPDATE ... RETURNING took 57-290 ms. The record still grows, and is
        # rewritten whole, when use_count's varint does (uses 2, 128, 32768); keeping the blobs
        # in a table of their own would avoid even that.
        now = time.time()
        with self.db.write() as c:
            c.execute(
                "UPDATE activation_states SET last_used_at = ?, use_count = use_count + 1 "
                "WHERE id = ?",
                (now, row[0]),
            )
        try:
            state = _state(row)
            return dataclasses.replace(state, last_used_at=now, use_count=state.use_count + 1)
        except ValueError:
            log.warning("dropping a damaged activation state (id %s)", row[0])
            self.delete(str(row[0]))
            return None

    def total_bytes(self) -> int:
        return int(self.db.scalar("SELECT coalesce(sum(size_bytes), 0) FROM activation_states"))

    def count(self) -> int:
        return int(self.db.scalar("SELECT count(*) FROM activation_states"))

    def evict_to(self, max_bytes: int) -> int:
        """Delete least recently used states until the total is at most ``max_bytes``.
        Returns how many were deleted."""
        with self.db.write() as c:
            rows = [
                (str(r[0]), int(r[1]))
                for r in c.execute(
                    "SELECT id, size_bytes FROM activation_states ORDER BY last_used_at, id"
                )
            ]
            total = sum(size for _, size in rows)
            doomed: list[str] = []
            for sid, size in rows:
                if total <= max_bytes:
                    break
                doomed.append(sid)
                total -= size
            c.executemany("DELETE FROM activation_states WHERE id = ?", [(d,) for d in doomed])
        return len(doomed)

    def delete(self, state_id: str) -> bool:
        with self.db.write() as c:
            c.execute("DELETE FROM activation_states WHERE id = ?", (state_id,))
            return bool(c.changes())

    def delete_where(
        self,
        *,
        model_sha256: str | None = None,
        adapter_id: str | None = None,
        user_id: str | None = None,
    ) -> int:
        """Drop every state of a model file, an adapter or a user (e.g. after a rollback)."""
        conds: list[str] = []
        args: list[Any] = []
        for col, val in (
            ("model_sha256", model_sha256),
            ("adapter_id", adapter_id),
            ("user_id", user_id),
        ):
            if val is not None:
                conds.append(f"{col} = ?")
                args.append(val)
        if not conds:
            raise InvalidInputError("say which states to delete (model, adapter or user)")
        with self.db.write() as c:
            c.execute(f"DELETE FROM activation_states WHERE {' AND '.join(conds)}", args)
            return int(c.changes())


def _state(r: Any) -> ActivationState:
    tokens = unpack_tokens(bytes(r[6]))
    if len(tokens) != int(r[5]):
        raise ValueError("token count does not match n_tokens")
    return ActivationState(
        id=str(r[0]),
        model_sha256=r[1],
        adapter_id=r[2],
        prefix_sha256=r[3],
        settings_key=r[4],
        n_tokens=int(r[5]),
        token_ids=tokens,
        state=bytes(r[7]),
        size_bytes=int(r[8]),
        created_at=float(r[9]),
        last_used_at=float(r[10]),
        use_count=int(r[11]),
    )
