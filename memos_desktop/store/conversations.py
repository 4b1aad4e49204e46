"""Conversations and their messages, and the durable job queue the daemon drains."""

from __future__ import annotations

import builtins
import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

from memos_desktop.errors import NotFoundError
from memos_desktop.store.db import Database
from memos_desktop.store.models import Conversation, Job, Message

_CONV = "id, user_id, cube_id, title, temporary, archived, created_at, updated_at"
_MSG = "id, conversation_id, seq, role, content, created_at, meta"


def _conv(r: Sequence[Any]) -> Conversation:
    return Conversation(r[0], r[1], r[2], r[3], bool(r[4]), bool(r[5]), r[6], r[7])


def _msg(r: Sequence[Any]) -> Message:
    return Message(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]))


class ConversationRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self, user_id: str, cube_id: str | None, title: str = "", *, temporary: bool = False
    ) -> Conversation:
        now = time.time()
        c = Conversation(uuid.uuid4().hex, user_id, cube_id, title, temporary, False, now, now)
        with self.db.write() as w:
            w.execute(
                f"INSERT INTO conversations ({_CONV}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (c.id, c.user_id, c.cube_id, c.title, int(c.temporary), 0, now, now),
            )
        return c

    def get(self, conv_id: str) -> Conversation:
        r = self.db.query_one(f"SELECT {_CONV} FROM conversations WHERE id = ?", (conv_id,))
        if r is None:
            raise NotFoundError(f"no conversation {conv_id!r}")
        return _conv(r)

    def list(self, user_id: str, *, archived: bool = False, limit: int = 100) -> list[Conversation]:
        return [
            _conv(r)
            for r in self.db.query(
                f"SELECT {_CONV} FROM conversations WHERE user_id = ? AND archived = ? "
                "ORDER BY updated_at DESC LIMIT ?",
                (user_id, int(archived), limit),
            )
        ]

    def update(
        self, conv_id: str, *, title: str | None = None, archived: bool | None = None
    ) -> None:
        with self.db.write() as w:
            if title is not None:
                w.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conv_id))
            if archived is not None:
                w.execute(
                    "UPDATE conversations SET archived = ? WHERE id = ?", (int(archived), conv_id)
                )

    def delete(self, conv_id: str) -> None:
        with self.db.write() as w:
            w.execute("DELETE FROM conversations WHERE id = ?", (conv_id,))

    def add_message(
        self,
        conv_id: str,
        role: str,
        content: str,
        *,
        at: float | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Message:
        at = time.time() if at is None else at
        with self.db.write() as w:
            seq = int(
                self.db.scalar(
                    "SELECT coalesce(max(seq), -1) + 1 FROM messages WHERE conversation_id = ?",
                    (conv_id,),
                )
            )
            m = Message(uuid.uuid4().hex, conv_id, seq, role, content, at, dict(meta or {}))
            w.execute(
                f"INSERT INTO messages ({_MSG}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (m.id, conv_id, seq, role, content, at, json.dumps(m.meta)),
            )
            w.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (at, conv_id))
        return m

    def set_message_meta(self, message_id: str, meta: dict[str, Any]) -> None:
        with self.db.write() as w:
            w.execute("UPDATE messages SET meta = ? WHERE id = ?", (json.dumps(meta), message_id))

    def messages(self, conv_id: str, *, last: int | None = None) -> builtins.list[Message]:
        if last is None:
            rows = self.db.query(
                f"SELECT {_MSG} FROM messages WHERE conversation_id = ? ORDER BY seq", (conv_id,)
            )
        else:
            rows = self.db.query(
                f"SELECT {_MSG} FROM (SELECT {_MSG} FROM messages WHERE conversation_id = ? "
                "ORDER BY seq DESC LIMIT ?) ORDER BY seq",
                (conv_id, last),
            )
        return [_msg(r) for r in rows]


class JobRepo:
    """A durable queue: jobs survive restarts; a claimed job whose worker died is retried."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        priority: int = 0,
        run_after: float | None = None,
        dedupe_key: str | None = None,
        max_attempts: int = 3,
    ) -> int | None:
        now = time.time()
        with self.db.write() as w:
            w.execute(
                "INSERT OR IGNORE INTO jobs (kind, payload, priority, run_after, dedupe_key, "
                "max_attempts, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    kind,
                    json.dumps(payload),
                    priority,
                    run_after or now,
                    dedupe_key,
                    max_attempts,
                    now,
                    now,
                ),
            )
            if self.db.conn.changes() == 0:
                return None
            return int(self.db.conn.last_insert_rowid())

    def claim(self, worker: str, kinds: Sequence[str] = (), lease_s: float = 600.0) -> Job | None:
        now = time.time()
        kind_sql = f"AND kind IN ({','.join('?' * len(kinds))})" if kinds else ""
        with self.db.write() as w:
            r = self.db.query_one(
                "SELECT id, kind, payload, status, priority, attempts, max_attempts, run_after, "
                "last_error FROM jobs WHERE run_after <= ? AND (status = 'queued' OR "
                f"(status = 'running' AND locked_at < ?)) {kind_sql} "
                "ORDER BY priority DESC, run_after, id LIMIT 1",
                (now, now - lease_s, *kinds),
            )
            if r is None:
                return None
            w.execute(
                "UPDATE jobs SET status = 'running', locked_by = ?, locked_at = ?, "
                "attempts = attempts + 1, updated_at = ? WHERE id = ?",
                (worker, now, now, r[0]),
            )
            return Job(r[0], r[1], json.loads(r[2]), "running", r[4], r[5] + 1, r[6], r[7], r[8])

    def finish(self, job_id: int) -> None:
        with self.db.write() as w:
            w.execute(
                "UPDATE jobs SET status = 'done', updated_at = ?, locked_by = NULL WHERE id = ?",
                (time.time(), job_id),
            )

    def fail(self, job_id: int, error: str, retry_in_s: float = 30.0) -> None:
        now = time.time()
        with self.db.write() as w:
            w.execute(
                "UPDATE jobs SET status = CASE WHEN attempts >= max_attempts THEN 'dead' "
                "ELSE 'queued' END, last_error = ?, run_after = ?, updated_at = ?, "
                "locked_by = NULL WHERE id = ?",
                (error[:2000], now + retry_in_s, now, job_id),
            )

    def counts(self) -> dict[str, int]:
        return {
            str(s): int(n)
            for s, n in self.db.query("SELECT status, count(*) FROM jobs GROUP BY status")
        }
