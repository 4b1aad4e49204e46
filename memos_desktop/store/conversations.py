"""Conversations and their messages (the job queue is in ``store/jobs.py``).

Every write is logged in the change log in its own transaction: a conversation's create, rename,
archive and delete, each message, and the conversation's ``updated_at`` that a new message moves.
A delete logs a tombstone for each of its messages before the conversation's own.
"""

from __future__ import annotations

import builtins
import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

from memos_desktop.errors import NotFoundError
from memos_desktop.store.changelog import changelog_for
from memos_desktop.store.db import Database
from memos_desktop.store.records import Conversation, Message

_CONV = "id, user_id, cube_id, title, temporary, archived, created_at, updated_at"
_MSG = "id, conversation_id, seq, role, content, created_at, meta"


def _conv(r: Sequence[Any]) -> Conversation:
    return Conversation(r[0], r[1], r[2], r[3], bool(r[4]), bool(r[5]), r[6], r[7])


def _msg(r: Sequence[Any]) -> Message:
    return Message(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]))


class ConversationRepo:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.changes = changelog_for(db)

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
            self.changes.log(w, "conversation", c.id, "create", ("*",))
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
            fields = []
            if title is not None:
                w.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conv_id))
                fields.append("title")
            if archived is not None:
                w.execute(
                    "UPDATE conversations SET archived = ? WHERE id = ?", (int(archived), conv_id)
                )
                fields.append("archived")
            if fields and w.changes():
                self.changes.log(w, "conversation", conv_id, "update", fields)

    def delete(self, conv_id: str) -> None:
        with self.db.write() as w:
            messages = [
                str(r[0])
                for r in w.execute("SELECT id FROM messages WHERE conversation_id = ?", (conv_id,))
            ]
            w.execute("DELETE FROM conversations WHERE id = ?", (conv_id,))  # messages cascade
            if w.changes():
                self.changes.log_many(w, "message", messages, "delete")
                self.changes.log(w, "conversation", conv_id, "delete")

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
            self.changes.log(w, "message", m.id, "create", ("*",))
            self.changes.log(w, "conversation", conv_id, "update", ("updated_at",))
        return m

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

    def search(
        self, user_id: str, text: str, *, limit: int = 50
    ) -> builtins.list[tuple[Conversation, builtins.list[Message]]]:
        """Conversations of ``user_id`` whose title or messages contain ``text`` (any case),
        most recently updated first, each with its matching messages."""
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        convs = [
            _conv(r)
            for r in self.db.query(
                f"SELECT {_CONV} FROM conversations c WHERE user_id = ? AND (title LIKE ? "
                "ESCAPE '\\' OR EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id "
                "AND m.content LIKE ? ESCAPE '\\')) ORDER BY updated_at DESC LIMIT ?",
                (user_id, like, like, limit),
            )
        ]
        out = []
        for c in convs:
            rows = self.db.query(
                f"SELECT {_MSG} FROM messages WHERE conversation_id = ? AND content LIKE ? "
                "ESCAPE '\\' ORDER BY seq",
                (c.id, like),
            )
            out.append((c, [_msg(r) for r in rows]))
        return out
