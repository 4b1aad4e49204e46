"""Typed results of the store: frozen dataclasses, no ORM, no pickle."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Literal

MEMORY_TYPES = ("fact", "preference", "event", "episode", "summary", "instruction")
MEMORY_LAYERS = ("working", "long_term", "user")
MEMORY_STATUSES = ("active", "archived", "deleted")

# How search should rank a memory by its type, as data (a multiplier for the lead's fusion):
# raw episodes are the record of what was said and rank below the memories read from them.
TYPE_WEIGHT: dict[str, float] = {
    "fact": 1.0,
    "preference": 1.0,
    "instruction": 1.0,
    "event": 1.0,
    "summary": 0.9,
    "episode": 0.6,
}
# What a memory list shows by default: everything but the raw episodes (a filter shows them).
LISTED_TYPES = tuple(t for t in MEMORY_TYPES if t != "episode")

MemoryType = Literal["fact", "preference", "event", "episode", "summary", "instruction"]
MemoryLayer = Literal["working", "long_term", "user"]
MemoryStatus = Literal["active", "archived", "deleted"]

_WS = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """The form used for content hashes: NFKC, case-folded, whitespace collapsed."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def content_hash(text: str) -> str:
    return hashlib.sha256(normalize_text(text).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Source:
    """Where a memory came from (MemOS: source + sources with role, chat time, message id)."""

    kind: str = "user"  # conversation, user, file, system, import, sync, retrieved
    conversation_id: str | None = None
    message_id: str | None = None
    role: str | None = None
    at: float | None = None
    ref: str | None = None  # free reference: a file path, a LoCoMo dia_id, a URL the user gave

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @staticmethod
    def from_json(d: dict[str, Any]) -> Source:
        kwargs: dict[str, Any] = {k: d[k] for k in Source.__dataclass_fields__ if k in d}
        return Source(**kwargs)


@dataclass(frozen=True)
class User:
    id: str
    name: str
    display_name: str
    created_at: float


@dataclass(frozen=True)
class Cube:
    id: str
    name: str
    owner_id: str
    description: str
    embed_model: str
    embed_dim: int
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class NewMemory:
    """What a caller gives to add a memory; the store fills in ids, times, hash and version."""

    text: str
    type: MemoryType = "fact"
    layer: MemoryLayer = "long_term"
    key: str = ""
    source: str = "user"
    confidence: float = 1.0
    importance: float = 0.5
    pinned: bool = False
    tags: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()
    valid_from: float | None = None
    valid_to: float | None = None
    created_at: float | None = None  # defaults to now; importers pass the original time
    supersedes: str | None = None
    context: str = ""  # retrieval-only text (indexed and embedded, not shown)


@dataclass(frozen=True)
class MemoryItem:
    rowid: int
    id: str
    cube_id: str
    text: str
    key: str
    type: MemoryType
    layer: MemoryLayer
    status: MemoryStatus
    source: str
    confidence: float
    importance: float
    pinned: bool
    tags: tuple[str, ...]
    sources: tuple[Source, ...]
    valid_from: float | None
    valid_to: float | None
    created_at: float
    updated_at: float
    last_used_at: float | None
    use_count: int
    version: int
    supersedes: str | None
    superseded_by: str | None
    content_hash: str
    embed_model: str
    context: str = ""

    @property
    def type_weight(self) -> float:
        """Search weight of this memory's type (``TYPE_WEIGHT``): episodes below facts."""
        return TYPE_WEIGHT.get(self.type, 1.0)

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.pop("rowid")
        d["tags"] = list(self.tags)
        d["sources"] = [s.to_json() for s in self.sources]
        return d


@dataclass(frozen=True)
class MemoryVersion:
    item_id: str
    version: int
    text: str
    key: str
    type: str
    layer: str
    status: str
    confidence: float
    importance: float
    tags: tuple[str, ...]
    valid_from: float | None
    valid_to: float | None
    change: str
    reason: str
    changed_at: float
    device_id: str
    # Its own globally unique key (two devices may both write version n of one memory) and the
    # stamp of its change-log row; "" for versions written before schema v5.
    id: str = ""
    hlc: str = ""

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["tags"] = list(self.tags)
        return d


@dataclass(frozen=True)
class SearchFilters:
    """Filters for list and search. Empty tuples mean "any"."""

    cube_ids: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    layers: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ("active",)
    tags: tuple[str, ...] = ()  # any of these tags
    since: float | None = None  # created_at >= since
    until: float | None = None  # created_at < until
    valid_at: float | None = None  # valid_from <= t < valid_to (open ends allowed)
    pinned: bool | None = None


@dataclass(frozen=True)
class SearchHit:
    item: MemoryItem
    score: float
    fts_rank: int | None  # 0-based rank in the BM25 list, None if not matched
    vec_rank: int | None  # 0-based rank in the vector list
    bm25: float | None
    distance: float | None  # cosine distance
    components: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "fts_rank": self.fts_rank,
            "vec_rank": self.vec_rank,
            "bm25": self.bm25,
            "distance": self.distance,
            "components": self.components,
            "item": self.item.to_json(),
        }


@dataclass(frozen=True)
class Conversation:
    id: str
    user_id: str
    cube_id: str | None
    title: str
    temporary: bool
    archived: bool
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Message:
    id: str
    conversation_id: str
    seq: int
    role: str
    content: str
    created_at: float
    meta: dict[str, Any]


@dataclass(frozen=True)
class ActivationState:
    id: str
    model_sha256: str
    adapter_id: str
    prefix_sha256: str
    settings_key: str
    n_tokens: int
    token_ids: tuple[int, ...]
    state: bytes
    size_bytes: int
    created_at: float
    last_used_at: float
    use_count: int


@dataclass(frozen=True)
class Adapter:
    id: str
    user_id: str | None
    cube_id: str | None
    name: str
    base_model_sha256: str
    format: str
    size_bytes: int
    sha256: str
    metrics: dict[str, Any]
    status: str
    parent_id: str | None
    created_at: float
    activated_at: float | None
