"""A chat engine whose JSON answers are scripted: the real tiny model for everything else.

The tiny random-weight model never writes a grounded memory, so a consolidation job run on it
has no effects to test; this engine answers the extraction prompt with fixed memories (taken
from the transcript, so the reader's grounding check passes) and can run a callback first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from memos_desktop.engines.llamacpp import LlamaCppEngine

MEMORIES = [  # first person, as the extraction prompt asks
    {"text": "I keep bees on the roof", "type": "fact", "key": "hobby", "confidence": 0.9},
    {"text": "My sister Lena lives in Porto", "type": "fact", "key": "family"},
]
TRANSCRIPT = [
    ("user", "I keep bees on the roof, three hives now."),
    ("assistant", "Lovely! Do they make much honey?"),
    ("user", "Some. My sister Lena in Porto gets most of it."),
]


class ScriptedExtractor:
    def __init__(self, engine: LlamaCppEngine, before: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self.before = before

    @property
    def n_ctx(self) -> int:
        return self.engine.n_ctx

    def count_tokens(self, text: str) -> int:
        return self.engine.count_tokens(text)

    def complete_json(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if self.before is not None:
            self.before()
        return {"memories": [dict(m) for m in MEMORIES]}
