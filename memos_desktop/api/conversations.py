"""The conversation half of the facade: list, open, rename, archive, delete, export to
Markdown, and the job queue's counts."""

from __future__ import annotations

import builtins
import dataclasses
import datetime as dt
from typing import Any

from memos_desktop.api.base import ApiBase, locked
from memos_desktop.errors import InvalidInputError, NotFoundError
from memos_desktop.store.records import Conversation, Message


class ConversationsApi(ApiBase):
    @locked
    def conversations(
        self, *, archived: bool = False, limit: int = 200
    ) -> builtins.list[Conversation]:
        return self.store.conversations.list(self.user.id, archived=archived, limit=limit)

    @locked
    def conversation(self, conv_id: str) -> Conversation:
        return self.store.conversations.get(conv_id)

    @locked
    def find_conversation(self, ref: str | None = None) -> Conversation:
        """The conversation ``ref`` names (its id, or a unique start of it, as ``logs list``
        shows it), or, with no ``ref``, the one most recently added to."""
        if not ref:
            recent = self.store.conversations.list(self.user.id, limit=1)
            if not recent:
                raise NotFoundError(
                    "there is no conversation to continue yet",
                    hint="ask something first (without -c)",
                )
            return recent[0]
        ref = ref.strip().lower()
        found = [
            c
            for archived in (False, True)
            for c in self.store.conversations.list(self.user.id, archived=archived, limit=100000)
            if c.id.startswith(ref)
        ]
        if len(found) == 1 and ref:
            return found[0]
        if not found:
            raise NotFoundError(
                f"no conversation {ref!r}", hint="`memos-desktop logs list` shows their ids"
            )
        raise InvalidInputError(
            f"{ref!r} is the start of {len(found)} conversations' ids",
            hint="give more of the id",
        )

    @locked
    def search_conversations(
        self, text: str, *, limit: int = 50
    ) -> builtins.list[tuple[Conversation, builtins.list[Message]]]:
        """Conversations whose title or messages contain ``text`` (any case), newest first,
        each with its matching messages."""
        if not text.strip():
            raise InvalidInputError("an empty search", hint="give some words to look for")
        return self.store.conversations.search(self.user.id, text.strip(), limit=limit)

    @locked
    def export_json(self, conv_id: str) -> dict[str, Any]:
        """The conversation and its messages as plain data (``logs export --format json``)."""
        conv = self.conversation(conv_id)
        return {
            "conversation": dataclasses.asdict(conv),
            "messages": [dataclasses.asdict(m) for m in self.messages(conv_id)],
        }

    @locked
    def messages(self, conv_id: str) -> builtins.list[Message]:
        return self.store.conversations.messages(conv_id)

    @locked
    def rename_conversation(self, conv_id: str, title: str) -> Conversation:
        if not title.strip():
            raise InvalidInputError("an empty title", hint="give the conversation a name")
        self.store.conversations.update(conv_id, title=title.strip())
        return self.conversation(conv_id)

    @locked
    def archive_conversation(self, conv_id: str, archived: bool = True) -> Conversation:
        self.store.conversations.update(conv_id, archived=archived)
        return self.conversation(conv_id)

    @locked
    def delete_conversation(self, conv_id: str) -> None:
        """Deletes the conversation and its messages. Memories taken from it stay (they are
        listed, with their source, in the memory browser, to forget or purge one by one)."""
        self.conversation(conv_id)  # NotFoundError when unknown
        self.store.conversations.delete(conv_id)

    @locked
    def export_markdown(self, conv_id: str) -> str:
        """The conversation as Markdown, with the memories each answer used."""
        conv = self.conversation(conv_id)
        out = [f"# {conv.title or 'Conversation'}", ""]
        created = dt.datetime.fromtimestamp(conv.created_at).strftime("%Y-%m-%d %H:%M")
        out += [f"_Started {created}_", ""]
        for m in self.messages(conv_id):
            at = dt.datetime.fromtimestamp(m.created_at).strftime("%H:%M")
            who = "You" if m.role == "user" else "Assistant"
            out += [f"## {who} ({at})", "", m.content, ""]
            used = m.meta.get("used") or []
            if used:
                out.append("Memories used:")
                out += [f"- {u.get('text', '')} ({u.get('origin', '')})" for u in used]
                out.append("")
        return "\n".join(out)

    @locked
    def job_counts(self) -> dict[str, int]:
        return self.store.jobs.counts()
