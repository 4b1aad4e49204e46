"""Corrections in plain words ("I moved to Berlin in May"): which memory a correction
replaces, and what is stored.

Design rules:
- The correction is read like anything the person says (``memory/statements.py``): its
  memories are stored, and the memory it contradicts (``memory/targets.py``: same subject and
  attribute, else a clear winner by meaning) is superseded, with history on both sides.
- Never a guess: when several memories could be meant, nothing is written and
  :class:`AmbiguousError` lists them; the caller asks the person and comes back with
  ``target`` (an id) or ``replace_nothing``.
- A compound memory loses only the part the correction is about: the other parts are stored
  as memories of their own, with the old memory's sources, before it is archived.
- Candidates: the API's hybrid search (passed in) and every active memory with the same
  attribute key; raw episodes are never candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from memos_desktop.errors import AmbiguousError, InvalidInputError
from memos_desktop.memory import reader, slots, statements, targets
from memos_desktop.memory.statements import Statement
from memos_desktop.store.profile import Store
from memos_desktop.store.records import (
    Cube,
    MemoryItem,
    NewMemory,
    SearchFilters,
    SearchHit,
    Source,
)

CANDIDATES = 20  # search hits considered
TYPES = targets.TARGET_TYPES  # what a correction replaces (never a raw episode)

Search = Callable[[SearchFilters, int], Sequence[SearchHit]]


def check(text: str) -> str:
    t = text.strip()
    if not t:
        raise InvalidInputError("an empty correction", hint="say what is true now")
    if t.endswith("?"):
        raise InvalidInputError(
            "a correction says what is true now; this is a question",
            hint='say it as a statement, e.g. "I moved to Berlin in May"',
        )
    return t


def read(text: str) -> list[Statement]:
    """The statements of a correction; a correction the rules do not read as a memory is
    still stored as the person wrote it (they asked for it)."""
    st = statements.read(text)
    if st:
        return st
    clause, replaces = statements._normalise(text)
    return [Statement(clause or text.strip(), "fact", slots.claims(clause), replaces)]


def candidates(
    store: Store, cube: Cube, new: Sequence[Statement], search: Search
) -> list[targets.Candidate]:
    hits = search(SearchFilters(cube_ids=(cube.id,), types=TYPES), CANDIDATES)
    out = [
        targets.Candidate(h.item, None if h.distance is None else 1.0 - h.distance) for h in hits
    ]
    keys = [c.key for s in new for c in s.claims]
    have = {c.item.id for c in out}
    out += [
        targets.Candidate(it) for it in store.memories.by_keys(cube.id, keys) if it.id not in have
    ]
    return out


def plan(
    store: Store,
    cube: Cube,
    new: Sequence[Statement],
    search: Search,
    *,
    target: str | None = None,
    replace_nothing: bool = False,
) -> targets.Decision:
    if replace_nothing:
        return targets.Decision("none", reason="the person chose to replace nothing")
    if target is not None:
        item = store.memories.get(target)
        if item.cube_id != cube.id or item.status != "active" or item.type == "episode":
            raise InvalidInputError(
                f"memory {item.id[:8]} cannot be corrected (it is {item.status}, {item.type})",
                hint="choose an active fact, preference, event or instruction",
            )
        d = targets.decide(new, [targets.Candidate(item, 1.0)], fallback=False)
        if d.action == "supersede":
            return d
        return targets.Decision("supersede", targets=(item,), reason="chosen by the person")
    return targets.decide(new, candidates(store, cube, new, search))


def ambiguous(text: str, d: targets.Decision) -> AmbiguousError:
    lines = "\n".join(f"  {it.id[:8]}  {it.text}" for it in d.candidates)
    return AmbiguousError(
        f"{d.reason or 'several memories could be meant'}; nothing was changed:\n{lines}",
        hint="choose one: correct TEXT --target ID (or --none to replace nothing)",
        candidates=tuple((it.id, it.text) for it in d.candidates),
    )


def correct(
    store: Store,
    cube: Cube,
    text: str,
    embed: Callable[[list[str]], Any] | None,
    embed_model: str,
    search: Search,
    *,
    target: str | None = None,
    replace_nothing: bool = False,
) -> tuple[MemoryItem, MemoryItem | None]:
    """Store the correction and supersede its target; returns (new, the target as now).
    Raises :class:`AmbiguousError` (nothing written) when it cannot tell which memory."""
    text = check(text)
    new = read(text)
    d = plan(store, cube, new, search, target=target, replace_nothing=replace_nothing)
    if d.action == "ask":
        raise ambiguous(text, d)
    old = d.targets[0] if d.targets else None
    items = [_memory(s, old) for s in new]
    kept = [targets.kept_memory(t, part) for t in d.targets for part in d.keep.get(t.id, ())]
    texts = [n.text for n in items + kept]
    vectors = embed(texts) if embed is not None else None
    with store.unit_of_work():
        added = store.memories.add_many(
            cube, [*items, *kept], vectors, embed_model=embed_model, dedupe=False
        )
        main = added[_main(new, d.targets)].item
        for t in d.targets:
            why = f"corrected: {text}"
            if d.keep.get(t.id):
                why += f" (kept apart: {'; '.join(d.keep[t.id])})"
            store.memories.supersede(t.id, main.id, reason=why)
    return store.memories.get(main.id), store.memories.get(old.id) if old else None


def _memory(s: Statement, old: MemoryItem | None) -> NewMemory:
    key = s.key or (old.key if old is not None else "")
    return NewMemory(
        text=s.text,
        type=s.type,
        layer=reader.layer_for(s.type, key),
        key=key,
        source="user",
        importance=max(reader.IMPORTANCE[s.type], old.importance if old else 0.0),
        sources=(Source(kind="user"),),
    )


def _main(new: Sequence[Statement], olds: Sequence[MemoryItem]) -> int:
    """Which of the new statements replaces the target: the first positive claim about the
    target's attribute, else the first."""
    if not olds:
        return 0
    old_claims = [c for p in targets.parts(olds[0]) for c in p.claims]
    for i, s in enumerate(new):
        if any(slots.conflicts(c, o) and not c.negated for c in s.claims for o in old_claims):
            return i
    return 0
