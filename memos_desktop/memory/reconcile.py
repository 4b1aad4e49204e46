"""Reconciliation: decide ADD / UPDATE / SUPERSEDE / NOOP for a new memory against what the cube
already holds, and apply the decision.

Design rules:
- Never silently hard-delete. UPDATE writes a new version (the old one stays in history);
  SUPERSEDE archives the old item with ``valid_to`` and links both ways; NOOP records nothing new.
- Near-duplicate thresholds cause false merges ("birthday is May 3" vs "May 4" embed almost the
  same), so a duplicate needs high cosine AND high word overlap AND the same numbers and names;
  the thresholds are measured by ``bench/reconcile.py`` (BENCHMARKS.md).
- A statement the reader made carries its attribute claims (``memory/slots.py``): a memory
  about exactly the same subject and attribute is superseded by it ("I moved to Braga" after
  "I live in Porto"), through the same decision as ``correct`` (``memory/targets.py``) but
  with no similarity fallback and no loose subjects, since a chat turn cannot ask; when in
  doubt the new memory is just added.
- Raw episodes (what was said) are never merged or superseded: they are the record.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from memos_desktop.memory import targets
from memos_desktop.memory.statements import Statement
from memos_desktop.store.profile import Store
from memos_desktop.store.records import Cube, MemoryItem, NewMemory, SearchFilters

Action = Literal["add", "update", "supersede", "noop"]
_WORD = re.compile(r"\w+")
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_NAME = re.compile(r"\b[A-Z][a-z]+")
MERGEABLE = ("fact", "preference", "instruction", "summary", "event")


@dataclass(frozen=True)
class Thresholds:
    dup_cosine: float = 0.90
    dup_jaccard: float = 0.5
    supersede_cosine: float = 0.70


@dataclass(frozen=True)
class Plan:
    action: Action
    new: NewMemory
    target: MemoryItem | None
    similarity: float
    reason: str
    others: tuple[MemoryItem, ...] = ()  # further items the new one supersedes
    keep: tuple[NewMemory, ...] = ()  # parts of a superseded compound memory kept apart


def words(text: str) -> set[str]:
    return set(_WORD.findall(text.casefold()))


def jaccard(a: str, b: str) -> float:
    wa, wb = words(a), words(b)
    return len(wa & wb) / len(wa | wb) if wa | wb else 0.0


_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve twenty thirty hundred "
    "thousand first second third fourth fifth sixth seventh eighth ninth tenth once twice "
    "half dozen".split()
)
_NEGATIONS = frozenset(
    "not no never nor none nothing nobody n't dont doesnt didnt isnt "
    "wasnt cant wont stopped quit".split()
)


def anchors(text: str) -> tuple[frozenset[str], frozenset[str], bool]:
    """Numbers (digits or words), capitalised names and negation: two texts that differ in any
    of these say different things, however close their embeddings are."""
    names = [m.group() for m in _NAME.finditer(text) if m.start() > 0]  # not the first word
    low = text.casefold().replace("n't", " n't").replace("’", "'")
    toks = set(_WORD.findall(low)) | ({"n't"} if "n't" in low else set())
    numbers = set(_NUMBER.findall(text)) | (toks & _NUMBER_WORDS)
    return frozenset(numbers), frozenset(names), bool(toks & _NEGATIONS)


class Reconciler:
    def __init__(self, store: Store, thresholds: Thresholds = Thresholds()) -> None:
        self.store = store
        self.t = thresholds

    def neighbours(self, cube: Cube, vector: Any, k: int = 5) -> list[tuple[MemoryItem, float]]:
        f = SearchFilters(cube_ids=(cube.id,), types=MERGEABLE)
        raw = self.store.searcher.knn(vector, cube.embed_dim, f, k)
        items = self.store.memories.get_many([r for r, _, _ in raw])
        return [(items[r], 1.0 - d) for r, d, _ in raw if r in items]

    def plan(
        self, cube: Cube, new: NewMemory, vector: Any | None, statement: Statement | None = None
    ) -> Plan:
        """``statement``: what the reader read ``new`` from (its claims decide supersedes)."""
        existing = self.store.memories.by_hash(cube.id, new.text)
        if existing is not None and existing.status == "active":
            return Plan("noop", new, existing, 1.0, "same text already remembered")
        if new.type == "episode":
            return Plan("add", new, None, 0.0, "new")
        near = (
            self.neighbours(cube, np.asarray(vector, dtype=np.float32))
            if vector is not None
            else []
        )
        for item, sim in near:
            same_anchors = anchors(item.text) == anchors(new.text)
            if (
                sim >= self.t.dup_cosine
                and same_anchors
                and (jaccard(item.text, new.text) >= self.t.dup_jaccard)
            ):
                if words(new.text) > words(item.text):
                    return Plan("update", new, item, sim, "adds detail to a known memory")
                return Plan("noop", new, item, sim, "near-duplicate of a known memory")
            if (
                new.key
                and item.key == new.key
                and item.type == new.type
                and sim >= self.t.supersede_cosine
                and not same_anchors
            ):
                return Plan("supersede", new, item, sim, f"newer value for '{new.key}'")
        if statement is not None and statement.claims:
            plan = self._by_claims(cube, new, statement, near)
            if plan is not None:
                return plan
        return Plan("add", new, None, 0.0, "new")

    def _by_claims(
        self,
        cube: Cube,
        new: NewMemory,
        statement: Statement,
        near: list[tuple[MemoryItem, float]],
    ) -> Plan | None:
        keyed = self.store.memories.by_keys(cube.id, [c.key for c in statement.claims])
        cands = [targets.Candidate(it, sim) for it, sim in near] + [
            targets.Candidate(it) for it in keyed
        ]
        d = targets.decide([statement], cands, fallback=False, exact_subject=True)
        if d.action != "supersede":
            return None
        first, *rest = d.targets
        keep = tuple(targets.kept_memory(t, p) for t in d.targets for p in d.keep.get(t.id, ()))
        sim = next((s for it, s in near if it.id == first.id), 0.0)
        return Plan("supersede", new, first, sim, d.reason, tuple(rest), keep)

    def apply(
        self,
        cube: Cube,
        plan: Plan,
        vector: Any | None,
        embed_model: str,
        embed: Callable[[list[str]], Any] | None = None,
    ) -> MemoryItem:
        """Write the plan in one unit of work (a supersede's add and archive land together).
        ``embed`` embeds the parts of a split compound memory (None: full-text only)."""
        mem = self.store.memories
        if plan.action == "noop":
            assert plan.target is not None
            return plan.target
        with self.store.unit_of_work():
            if plan.action == "update":
                assert plan.target is not None
                return mem.update(
                    plan.target.id,
                    text=plan.new.text,
                    embedding=vector,
                    change="merge",
                    reason=plan.reason,
                )
            added = mem.add_many(
                cube,
                [plan.new],
                None if vector is None else [vector],
                embed_model=embed_model,
                dedupe=False,  # an archived memory may hold the same text: this one is new
            )[0].item
            if plan.action == "supersede":
                assert plan.target is not None
                if plan.keep:
                    texts = [k.text for k in plan.keep]
                    mem.add_many(
                        cube,
                        list(plan.keep),
                        embed(texts) if embed is not None else None,
                        embed_model=embed_model if embed is not None else "",
                        dedupe=False,
                    )
                for old in (plan.target, *plan.others):
                    mem.supersede(old.id, added.id, at=plan.new.valid_from, reason=plan.reason)
        return added
