"""MemReader: conversation -> memories.

Design rules:
- Fast mode runs on every exchange, synchronously: the exchange is stored at once as a raw
  episodic item with its embedding and its source message ids, so nothing said is ever lost,
  whatever happens to extraction later.
- Fine mode runs later (daemon job): the LLM, constrained by a JSON schema, extracts atomic
  memories in the third person with absolute dates. Small models fail often: invalid, empty or
  ungrounded output yields no items (the raw item stays), never an exception that loses data.
- Long conversations are cut into token windows with overlap, so no exchange falls between two.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from memos_desktop.engines.base import ChatEngine, ChatMessage, SamplingParams
from memos_desktop.store.migrations import MEMORY_TYPES
from memos_desktop.store.records import MemoryType, Message, NewMemory, Source

log = logging.getLogger(__name__)

EXTRACT_TYPES = ("fact", "preference", "event", "instruction")

EXTRACTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "memories": {
            "type": "array",
            "maxItems": 12,
            "items": {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "enum": list(EXTRACT_TYPES)},
                    "key": {"type": "string", "maxLength": 60},
                    "text": {"type": "string", "minLength": 3, "maxLength": 300},
                    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                },
                "required": ["type", "key", "text", "confidence"],
            },
        }
    },
    "required": ["memories"],
}

EXTRACTION_PROMPT = """You maintain a personal memory for {user}. From the conversation below,
list the facts, preferences, events and standing instructions about {user} worth remembering
for future conversations. Rules:
- One atomic memory per item, in the third person ("{user} is vegetarian"), self-contained.
- Resolve pronouns to names and relative dates to absolute ones; today is {today}.
- Preferences ("prefers short answers", "is vegetarian") get type "preference".
- Skip greetings, small talk and anything about the assistant itself.
- key: a short snake_case label of what the memory is about, e.g. "home_city", "diet".
If there is nothing worth remembering, return {{"memories": []}}.

Conversation:
{transcript}"""

# Phrases that mark an explicit preference in the user's own words (fast path, no LLM).
_PREFERENCE = re.compile(
    r"\b(i (really )?(prefer|like|love|hate|dislike|enjoy|can't stand|avoid)|"
    r"i'?m (a )?(vegetarian|vegan|allergic)|please (always|never)|i don'?t (like|eat|drink))\b",
    re.IGNORECASE,
)


def day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d")


def message_source(m: Message) -> Source:
    """Provenance of a memory taken from a conversation message."""
    return Source(
        kind="conversation",
        conversation_id=m.conversation_id,
        message_id=m.id,
        role=m.role,
        at=m.created_at,
    )


def exchange_item(user: Message, assistant: Message | None, *, speaker: str = "User") -> NewMemory:
    """The raw episodic item of one exchange (fast mode)."""
    text = f"{speaker}: {user.content.strip()}"
    sources = [message_source(user)]
    if assistant is not None:
        sources.append(message_source(assistant))
    is_pref = bool(_PREFERENCE.search(user.content))
    return NewMemory(
        text=text,
        type="preference" if is_pref else "episode",
        layer="long_term" if is_pref else "working",
        source="conversation",
        importance=0.6 if is_pref else 0.4,
        confidence=1.0,
        sources=tuple(sources),
        created_at=user.created_at,
        valid_from=user.created_at,
    )


@dataclass(frozen=True)
class Window:
    messages: tuple[Message, ...]


def windows(
    messages: Sequence[Message],
    count_tokens: Callable[[str], int],
    max_tokens: int = 1200,
    overlap_messages: int = 2,
) -> list[Window]:
    """Split messages into windows of at most ``max_tokens`` (a single longer message gets a
    window of its own); consecutive windows share up to ``overlap_messages`` messages, as many
    as fit beside the next one."""
    sizes = [count_tokens(m.content) + 8 for m in messages]
    out: list[Window] = []
    cur: list[int] = []
    for i, t in enumerate(sizes):
        if cur and sum(sizes[j] for j in cur) + t > max_tokens:
            out.append(Window(tuple(messages[j] for j in cur)))
            keep = cur[-overlap_messages:] if overlap_messages else []
            while keep and sum(sizes[j] for j in keep) + t > max_tokens:
                keep = keep[1:]
            cur = keep
        cur.append(i)
    if cur:
        out.append(Window(tuple(messages[j] for j in cur)))
    return out


def _transcript(msgs: Sequence[Message], user: str) -> str:
    lines = []
    for m in msgs:
        who = user if m.role == "user" else "Assistant"
        lines.append(f"[{day(m.created_at)}] {who}: {m.content.strip()}")
    return "\n".join(lines)


def _grounded(text: str, window_text: str) -> bool:
    """Reject hallucinated items: at least one content word must appear in the window."""
    words = {w for w in re.findall(r"[a-z0-9]{4,}", text.casefold())}
    source = window_text.casefold()
    return any(w in source for w in words)


class FineReader:
    def __init__(self, engine: ChatEngine, user_name: str = "the user") -> None:
        self.engine = engine
        self.user_name = user_name

    def extract(self, messages: Sequence[Message], today: float) -> list[NewMemory]:
        items: list[NewMemory] = []
        budget = max(256, min(1200, self.engine.n_ctx // 2 - 400))
        for w in windows(messages, self.engine.count_tokens, max_tokens=budget):
            items += self._extract_window(w, today)
        return items

    def _extract_window(self, w: Window, today: float) -> list[NewMemory]:
        transcript = _transcript(w.messages, self.user_name)
        prompt = EXTRACTION_PROMPT.format(
            user=self.user_name, today=day(today), transcript=transcript
        )
        try:
            out = self.engine.complete_json(
                [ChatMessage("user", prompt)],
                EXTRACTION_SCHEMA,
                SamplingParams.greedy(max_tokens=400),
            )
        except Exception as exc:  # small models fail often: keep the raw items, log, move on
            log.warning("fine extraction failed: %s", type(exc).__name__)
            return []
        raw = out.get("memories") if isinstance(out, dict) else None
        if not isinstance(raw, list):
            return []
        sources = tuple(message_source(m) for m in w.messages if m.role == "user")
        items = []
        for r in raw:
            if not isinstance(r, dict):
                continue
            text = str(r.get("text", "")).strip()
            kind = str(r.get("type", "fact"))
            if len(text) < 3 or kind not in MEMORY_TYPES or not _grounded(text, transcript):
                continue
            try:
                conf = min(1.0, max(0.0, float(r.get("confidence", 0.5))))
            except (TypeError, ValueError):
                conf = 0.5
            tags = tuple(str(t) for t in r.get("tags", []) if isinstance(t, str))[:5]
            items.append(
                NewMemory(
                    text=text,
                    type=cast(MemoryType, kind),
                    layer="user" if kind == "preference" else "long_term",
                    key=str(r.get("key", ""))[:60],
                    source="conversation",
                    confidence=conf,
                    importance=0.6,
                    tags=tags,
                    sources=sources,
                    created_at=w.messages[-1].created_at,
                    valid_from=w.messages[0].created_at,
                )
            )
        return items
