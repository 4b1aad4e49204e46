"""The data types and constants front ends use, re-exported so that they import nothing
below ``memos_desktop.api``. Cheap to import (dataclasses only: no numpy, crypto or database),
so a front end may import it at module level; the heavier types (engine, chat turn) are on
``memos_desktop.api`` itself, loaded when first used."""

from __future__ import annotations

from memos_desktop.engines.catalog import Kind, ModelEntry, human_size
from memos_desktop.store.records import (
    LISTED_TYPES,
    MEMORY_LAYERS,
    MEMORY_STATUSES,
    MEMORY_TYPES,
    Conversation,
    Cube,
    MemoryItem,
    MemoryLayer,
    MemoryStatus,
    MemoryType,
    MemoryVersion,
    Message,
    NewMemory,
    SearchFilters,
    SearchHit,
    Source,
    User,
)

__all__ = [
    "LISTED_TYPES",
    "MEMORY_LAYERS",
    "MEMORY_STATUSES",
    "MEMORY_TYPES",
    "Conversation",
    "Cube",
    "Kind",
    "MemoryItem",
    "MemoryLayer",
    "MemoryStatus",
    "MemoryType",
    "MemoryVersion",
    "Message",
    "ModelEntry",
    "NewMemory",
    "SearchFilters",
    "SearchHit",
    "Source",
    "User",
    "human_size",
]
