"""The conversation half of the facade: list, open, rename, archive, delete, export to
Markdown, and the job queue's counts."""

from __future__ import annotations

import builtins
import datetime as dt

from memos_desktop.api.base import ApiBase, locked
from memos_desktop.errors import InvalidInputError
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
