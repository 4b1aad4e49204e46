"""Search variants the retrieval benches share: the hybrid with one part of issue 14's ranking
off at a time, and the fusion it replaced (diagnostics, not targets)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from memos_desktop.config import SearchSettings

NO_TIME = {"time_weight": 0.0, "ended_weight": 1.0, "ended_past_boost": 0.0}

PARTS_OFF: dict[str, Callable[[SearchSettings], SearchSettings]] = {
    "hybrid, no relevance floor": lambda s: replace(s, relevance_floor=0.0),
    "hybrid, fixed BM25 weight (no lexical evidence)": lambda s: replace(
        s, fts_weight_min=s.fts_weight
    ),
    "hybrid, no time or validity": lambda s: replace(s, **NO_TIME),
    "hybrid, no preference channel": lambda s: replace(s, preference_slots=0),
    "hybrid, previous fusion (fixed 1.0 / 0.5, no floor, time, channel)": lambda s: replace(
        s,
        fts_weight=1.0,
        fts_weight_min=1.0,
        vec_weight=0.5,
        relevance_floor=0.0,
        preference_slots=0,
        **NO_TIME,
    ),
}
