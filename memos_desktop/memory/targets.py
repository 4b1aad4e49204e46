"""Which memory a new statement contradicts: the decision shared by ``correct`` and the
reconciler.

Design rules:
- First the attribute model (``memory/slots.py``): a memory whose claim has the same subject
  and attribute as the new one (and for a multi-valued attribute, the same object) is a
  target. One target: supersede it. Several that disagree (two sisters for "my sister is a
  teacher now", two homes) or a subject the words do not settle: **ask**, never guess.
- Only when the new statement has no claim the patterns know, the fallback is embedding
  similarity with a margin, and only over memories that have no known claim of their own (a
  memory known to be about something else is never a target): a clear winner is superseded,
  a close call is asked, nothing similar replaces nothing.
- A memory is read clause by clause, so a compound memory ("My name is Dana and I live in
  Porto") names the parts a correction leaves alone: they are kept as memories of their own.
- Raw episodes (what was said) are the record and never a target.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from memos_desktop.memory import reader, slots, statements
from memos_desktop.memory.slots import Claim
from memos_desktop.memory.statements import Statement
from memos_desktop.store.records import MemoryItem, NewMemory

Action = Literal["supersede", "ask", "none"]
TARGET_TYPES = ("fact", "preference", "event", "instruction", "summary")

# Fallback by meaning (MiniLM cosine), tuned on bench/data/corrections_dev.jsonl.
SUPERSEDE_COSINE = 0.72
ASK_COSINE = 0.5
MARGIN = 0.1
WEAK_COSINE = 0.45  # a generic claim ("my flat is ...") also needs this much similarity


@dataclass(frozen=True)
class Candidate:
    item: MemoryItem
    similarity: float | None = None  # cosine to the new statement, when known


@dataclass(frozen=True)
class Part:
    text: str
    claims: tuple[Claim, ...]


@dataclass(frozen=True)
class Decision:
    action: Action
    targets: tuple[MemoryItem, ...] = ()
    candidates: tuple[MemoryItem, ...] = ()  # for "ask": the memories to choose from
    keep: dict[str, tuple[str, ...]] = field(default_factory=dict)  # target id -> parts kept
    reason: str = ""


_SPEAKER = re.compile(r"^(?:User|Me|Assistant|[A-Z][\w]*): ")


def parts(item: MemoryItem) -> list[Part]:
    """An item's clauses with their claims (the speaker label of an old raw item dropped)."""
    text = _SPEAKER.sub("", item.text.strip())
    out: list[Part] = []
    for raw, asked in statements.clauses(text):
        if asked:
            continue
        clause, _ = statements._normalise(raw)
        if clause:
            claims = slots.claims(clause)
            out.append(Part(statements.canonical(clause, claims), claims))
    if item.key and not any(p.claims for p in out):
        keyed = slots.parse_key(item.key)
        if keyed is not None and out:
            out = [Part(" ".join(p.text for p in out), (keyed,))]
    return out


def new_claims(new: Sequence[Statement]) -> tuple[tuple[Claim, ...], tuple[str, ...]]:
    claims = tuple(c for s in new for c in s.claims)
    replaces = tuple(v for s in new for v in s.replaces)
    return claims, replaces


def decide(
    new: Sequence[Statement],
    candidates: Sequence[Candidate],
    *,
    fallback: bool = True,
    exact_subject: bool = False,
) -> Decision:
    """``fallback``: use similarity when the patterns know nothing (``correct``; the
    reconciler of chat turns does not). ``exact_subject``: "my sister" matches only "my
    sister", not "my sister Ana" (the reconciler, which cannot ask), while a name settles
    who it is ("Leo" is "my son Leo")."""
    claims, replaces = new_claims(new)
    strong = [c for c in claims if not c.weak]
    if not claims and new and all(statements.hedged(s.text) for s in new):
        return Decision("none", reason="a possibility, not a change")
    seen: set[str] = set()
    cands = []
    for c in candidates:
        if c.item.id in seen or c.item.type not in TARGET_TYPES or c.item.status != "active":
            continue
        seen.add(c.item.id)
        cands.append((c, parts(c.item)))

    matches: list[tuple[Candidate, list[int], list[Claim]]] = []
    for cand, ps in cands:
        hit_parts, hit_claims = [], []
        for i, p in enumerate(ps):
            hits = [
                old
                for old in p.claims
                for nc in strong
                if not old.weak
                and slots.conflicts(nc, old)
                and (not exact_subject or slots.same_person(nc.subject, old.subject))
            ]
            if hits:
                hit_parts.append(i)
                hit_claims.extend(hits)
        if hit_parts:
            matches.append((cand, hit_parts, hit_claims))

    if matches:
        return _by_claims(matches, cands, replaces)
    weak = [c for c in claims if c.weak]
    if weak:
        wm = [
            cand
            for cand, ps in cands
            if (cand.similarity or 0.0) >= WEAK_COSINE
            and any(slots.conflicts(w, o) for p in ps for o in p.claims for w in weak)
        ]
        if len(wm) == 1:
            return _supersede([(wm[0], [0], [])], cands, "same attribute, similar wording")
        if len(wm) > 1:
            return Decision("ask", candidates=tuple(c.item for c in wm), reason="several match")
    if not fallback:
        return Decision("none", reason="no memory about the same attribute")
    # Meaning only, over memories the patterns know nothing about.
    open_ = [
        cand
        for cand, ps in cands
        if cand.similarity is not None
        and not (strong and any(not o.weak for p in ps for o in p.claims))
    ]
    open_.sort(key=lambda c: -(c.similarity or 0.0))
    if not open_ or (open_[0].similarity or 0.0) < ASK_COSINE:
        return Decision("none", reason="nothing related enough")
    best = open_[0].similarity or 0.0
    second = (open_[1].similarity or 0.0) if len(open_) > 1 else 0.0
    if best >= SUPERSEDE_COSINE and best - second >= MARGIN:
        return _supersede([(open_[0], [], [])], cands, f"closest in meaning ({best:.2f})")
    close = [c.item for c in open_ if (c.similarity or 0.0) >= ASK_COSINE][:3]
    return Decision("ask", candidates=tuple(close), reason="close in meaning, not certain")


def _by_claims(
    matches: list[tuple[Candidate, list[int], list[Claim]]],
    cands: list[tuple[Candidate, list[Part]]],
    replaces: tuple[str, ...],
) -> Decision:
    if len(matches) == 1:
        return _supersede(matches, cands, "same subject and attribute")
    if replaces:  # "I live in Berlin now, not Porto": the one that says Porto
        named = [m for m in matches if any(o.value in replaces or o.obj in replaces for o in m[2])]
        if len(named) == 1:
            return _supersede(named, cands, "the value the correction names")
    subjects = {o.subject for m in matches for o in m[2]}
    values = {(o.subject, o.attribute, o.value, o.obj) for m in matches for o in m[2]}
    if len(subjects) == 1 and len(values) == 1:
        # The same fact stored twice (e.g. said, then typed): both are replaced.
        return _supersede(matches, cands, "same subject and attribute")
    return Decision(
        "ask",
        candidates=tuple(m[0].item for m in matches),
        reason="several memories are about this; which one changed?",
    )


def _supersede(
    chosen: list[tuple[Candidate, list[int], list[Claim]]],
    cands: list[tuple[Candidate, list[Part]]],
    reason: str,
) -> Decision:
    all_parts = {c.item.id: ps for c, ps in cands}
    keep: dict[str, tuple[str, ...]] = {}
    for cand, hit_parts, hit_claims in chosen:
        ps = all_parts.get(cand.item.id, [])
        if not hit_parts:
            continue
        stale: set[str] = set()
        for o in hit_claims:
            stale |= slots.replaced_with(o.attribute)
        kept: list[str] = []
        for i, p in enumerate(ps):
            if i in hit_parts:
                kept.extend(
                    statements.render(o)
                    for o in p.claims
                    if o.attribute not in stale and not o.weak
                )
            elif statements.classify(p.text) is not None:
                kept.append(p.text)
        if kept:
            keep[cand.item.id] = tuple(kept)
    return Decision(
        "supersede", targets=tuple(c.item for c, _, _ in chosen), keep=keep, reason=reason
    )


def kept_memory(old: MemoryItem, text: str) -> NewMemory:
    """A part of a compound memory that a correction leaves true, as a memory of its own
    (with the old memory's sources and times)."""
    cl = slots.claims(text)
    kind = statements.classify(text) or old.type
    key = cl[0].key if cl else ""
    return NewMemory(
        text=text,
        type=kind,
        layer=reader.layer_for(kind, key),
        key=key,
        source=old.source,
        confidence=old.confidence,
        importance=old.importance,
        tags=old.tags,
        sources=old.sources,
        valid_from=old.valid_from,
        created_at=old.created_at,
    )
