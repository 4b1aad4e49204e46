"""MemReader: conversation -> memories.

Design rules:
- Fast mode runs on every exchange, synchronously, with no model: the exchange is stored at
  once as a raw episode (the record of what was said: low importance, ``EPISODE_IMPORTANCE``,
  hidden from the default memory list) and the rule reader (``memory/statements.py``) turns
  what the person said into typed memories (fact, preference, event, instruction) in the
  person's own first-person words ("I live in Porto"), each with its attribute slot as key
  (``self:residence``). Questions, greetings and small talk make no memory.
- Fine mode runs later (daemon job): the LLM, constrained by a JSON schema, extracts atomic
  memories in the same first-person form. Small models fail often: invalid, empty or
  ungrounded output yields no items (the raw item stays), never an exception that loses data,
  and every failure is counted (``FineReader.failures``) so reports never say "0 failed".
- Both readers pass the same grounding test (``grounded``): every name and number, and most
  content words, of a memory must be in what the person said.
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
from memos_desktop.memory import statements
from memos_desktop.store.migrations import MEMORY_TYPES
from memos_desktop.store.records import MemoryLayer, MemoryType, Message, NewMemory, Source

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

EXTRACTION_MAX_TOKENS = 400  # the structured answer's budget per conversation window
EXTRACTION_PROMPT = """You maintain a personal memory for {user}. From the conversation below,
list the facts, preferences, events and standing instructions about {user} worth remembering
for future conversations. Rules:
- One atomic memory per item, in {user}'s own words in the first person ("I am vegetarian",
  "My sister Ana lives in Lisbon"), self-contained, using only what {user} said.
- Resolve pronouns to names and relative dates to absolute ones; today is {today}.
- Preferences ("I prefer short answers", "I am vegetarian") get type "preference".
- Skip questions, greetings, small talk and anything about the assistant itself.
- key: a short snake_case label of what the memory is about, e.g. "home_city", "diet".
If there is nothing worth remembering, return {{"memories": []}}.

Conversation:
{transcript}"""

# Importance of the kinds of memory the reader makes. The raw episode is the record of what
# was said, ranked below the memories read from it (search's importance boost honours this;
# ``store.records.TYPE_WEIGHT`` is the same order as data).
IMPORTANCE: dict[str, float] = {
    "instruction": 0.75,
    "fact": 0.7,
    "preference": 0.65,
    "event": 0.6,
    "episode": 0.2,
}
EPISODE_IMPORTANCE = IMPORTANCE["episode"]
# The key of a raw episode the reader made typed memories of. Those memories stand for it in
# an answer's prompt: the episode keeps what was said, word for word, so after a correction it
# still says the old value ("User: I live in Porto" beside "I moved to Braga"), and beside its
# own fact it is the same note twice. It stays the record (history, sources, search). No slot
# key has this form (slot keys are "<subject>:<attribute>" of words).
READ_KEY = "episode:read"
# Always in the prompt's core profile (layer "user"): who the person is. Everything else is
# retrieved when relevant, so the stable prefix (and its saved KV state) rarely changes.
_PROFILE_KEYS = re.compile(r"^self:(?:name|nickname)$")


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


def layer_for(kind: str, key: str = "") -> MemoryLayer:
    """Instructions and the person's name go to the core profile (in every prompt); other
    memories are retrieved when relevant."""
    if kind == "instruction" or _PROFILE_KEYS.match(key):
        return "user"
    return "working" if kind == "episode" else "long_term"


def exchange_item(
    user: Message, assistant: Message | None, *, speaker: str = "User", read: bool = False
) -> NewMemory:
    """The raw episodic item of one exchange (fast mode): the record, not a fact. ``read``:
    the reader made typed memories of it, so they stand for it in a prompt (``READ_KEY``)."""
    text = f"{speaker}: {user.content.strip()}"
    sources = [message_source(user)]
    if assistant is not None:
        sources.append(message_source(assistant))
    return NewMemory(
        text=text,
        type="episode",
        key=READ_KEY if read else "",
        layer="working",
        source="conversation",
        importance=EPISODE_IMPORTANCE,
        confidence=1.0,
        sources=tuple(sources),
        created_at=user.created_at,
        valid_from=user.created_at,
    )


@dataclass(frozen=True)
class Read:
    """A memory the rule reader made, with the attribute claims it was read with."""

    memory: NewMemory
    statement: statements.Statement


def read_message(user: Message, assistant: Message | None = None) -> list[Read]:
    """The typed memories in what the person said (fast mode, rules only): questions,
    greetings and small talk make none."""
    if user.role != "user":
        return []
    sources = (message_source(user),)
    out = []
    for st in statements.read(user.content):
        if not grounded(st.text, user.content):
            log.debug("rule reader: an ungrounded statement was dropped")
            continue
        out.append(
            Read(
                NewMemory(
                    text=st.text,
                    type=st.type,
                    layer=layer_for(st.type, st.key),
                    key=st.key,
                    source="conversation",
                    confidence=0.9,
                    importance=IMPORTANCE[st.type],
                    sources=sources,
                    created_at=user.created_at,
                    valid_from=user.created_at,
                ),
                st,
            )
        )
    return out


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


FUNCTION_WORDS = frozenset(
    """
    i me my mine we us our you your he him his she her they them their it its the a an and or
    but of to in on at for with from by as is am are was were be been being have has had do
    does did not no now also very really just so that this these those there here who which
    what when where user person name named called cannot will would
    """.split()
)


def stem(w: str) -> str:
    for suf in ("ing", "ed", "es", "s"):
        if len(w) > len(suf) + 2 and w.endswith(suf):
            return w[: -len(suf)]
    return w


def grounded(text: str, source: str, *, also: str = "") -> bool:
    """Is ``text`` supported by ``source`` (what the person said)? Every number and every
    capitalised name in it must appear there, and at least 60% of its content words (by
    stem). ``also``: words allowed besides (the person's name in an LLM's output)."""
    src = source.casefold()
    src_stems = {stem(w) for w in re.findall(r"[\w'-]+", src)} | {
        stem(w) for w in re.findall(r"[\w'-]+", also.casefold())
    }
    for num in re.findall(r"\d+", text):
        if num not in src:
            return False
    names = [m.group() for m in re.finditer(r"\b[A-Z][a-z][\w'-]*", text) if m.start() > 0]
    if any(n.casefold() not in src and n.casefold() not in also.casefold() for n in names):
        return False
    words = [w for w in re.findall(r"[\w'-]+", text.casefold()) if w not in FUNCTION_WORDS]
    if not words:
        return False
    found = sum(1 for w in words if stem(w) in src_stems or w in src)
    return found / len(words) >= 0.6


class FineReader:
    def __init__(self, engine: ChatEngine, user_name: str = "the user") -> None:
        self.engine = engine
        self.user_name = user_name
        self.failures: dict[str, int] = {}  # error kind -> windows the model failed on
        self.rejected = 0  # items dropped by the grounding test or as invalid
        self.windows = 0  # windows the model was asked to read

    def extract(self, messages: Sequence[Message], today: float) -> list[NewMemory]:
        items: list[NewMemory] = []
        budget = max(256, min(1200, self.engine.n_ctx // 2 - 400))
        for w in windows(messages, self.engine.count_tokens, max_tokens=budget):
            self.windows += 1
            items += self._extract_window(w, today)
        return items

    def _failed(self, kind: str) -> None:
        self.failures[kind] = self.failures.get(kind, 0) + 1

    def _extract_window(self, w: Window, today: float) -> list[NewMemory]:
        transcript = _transcript(w.messages, self.user_name)
        prompt = EXTRACTION_PROMPT.format(
            user=self.user_name, today=day(today), transcript=transcript
        )
        try:
            out = self.engine.complete_json(
                [ChatMessage("user", prompt)],
                EXTRACTION_SCHEMA,
                SamplingParams.greedy(max_tokens=EXTRACTION_MAX_TOKENS),
            )
        except Exception as exc:  # small models fail often: keep the raw items, log, count
            log.warning("fine extraction failed: %s", type(exc).__name__)
            self._failed(type(exc).__name__)
            return []
        raw = out.get("memories") if isinstance(out, dict) else None
        if not isinstance(raw, list):
            self._failed("InvalidOutput")
            return []
        sources = tuple(message_source(m) for m in w.messages if m.role == "user")
        said = "\n".join(m.content for m in w.messages if m.role == "user")
        items = []
        for r in raw:
            if not isinstance(r, dict):
                self.rejected += 1
                continue
            text = str(r.get("text", "")).strip()
            kind = str(r.get("type", "fact"))
            if (
                len(text) < 3
                or kind not in MEMORY_TYPES
                or kind == "episode"
                or text.endswith("?")
                or not grounded(text, said, also=self.user_name)
            ):
                self.rejected += 1
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
                    layer=layer_for(kind),
                    key=str(r.get("key", ""))[:60],
                    source="conversation",
                    confidence=conf,
                    importance=IMPORTANCE.get(kind, 0.6),
                    tags=tags,
                    sources=sources,
                    created_at=w.messages[-1].created_at,
                    valid_from=w.messages[0].created_at,
                )
            )
        return items
