"""The daemon's memory jobs (issue 12): extraction, near-duplicate merging, conflict resolution,
episode summaries, decay, and refreshing the stable prefix's KV state; and the sweep that
queues them. Registered on import in ``memory/handlers.py``.

Design rules:
- Nothing is ever deleted. A merged duplicate and a resolved conflict are *superseded*
  (archived, ``superseded_by`` the memory kept, a version in history with the reason); a
  decayed memory is *archived* with its reason; ``restore`` brings any of them back.
- Merging is the reconciler's duplicate test (``reconcile.py``: high cosine AND word overlap AND
  the same numbers, names and negation), never a looser one: "birthday is May 3" and "May 4"
  both stay. The memory kept is the one with more words (so its text holds the other's), a
  pinned one before any other; raw episodes are never merged (they are the record).
- A conflict is two active memories claiming the same single-valued slot (``slots.py``: same
  subject and attribute, ``self:residence``) with different values: the newer (by the time it
  was true from, else created) supersedes the older, as a correction would. A memory making
  several claims (a compound sentence) is left alone: superseding it would archive its other
  facts.
- A summary keeps its sources: one ``summary`` memory per conversation (key
  ``summary:<conversation id>``), its sources the conversation's messages. An instruct model
  writes it; otherwise it is built from what the reader took from the conversation.
- Every handler does its reading and model work first, then writes inside ``ctx.effects()``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from memos_desktop.engines.base import ChatEngine, ChatMessage, SamplingParams
from memos_desktop.errors import EngineError, InvalidInputError
from memos_desktop.memory import slots
from memos_desktop.memory.consolidate import EXTRACT, extract_one
from memos_desktop.memory.handlers import Counts, JobContext, register_handler, register_periodic
from memos_desktop.memory.reader import READ_KEY, FineReader
from memos_desktop.memory.reconcile import MERGEABLE, Reconciler, anchors, jaccard, words
from memos_desktop.memory.scheduler import Scheduler
from memos_desktop.store.jobs import Job
from memos_desktop.store.records import Cube, MemoryItem, NewMemory, SearchFilters, Source

log = logging.getLogger(__name__)

SCAN_LIMIT = 5000  # memories a merge, conflict or decay job looks at per cube and run
WORDS_ONLY_JACCARD = 0.8  # without vectors, a duplicate needs this much word overlap

MERGE = "merge_duplicates"
CONFLICTS = "resolve_conflicts"
SUMMARIES = "summarise_episodes"
DECAY = "decay"
ACTIVATION = "refresh_activation"
SWEEP = "maintenance"
CUBE_JOBS = (MERGE, CONFLICTS, SUMMARIES, DECAY, ACTIVATION)


def _active(ctx: JobContext, cube: Cube, types: tuple[str, ...] = ()) -> list[MemoryItem]:
    f = SearchFilters(cube_ids=(cube.id,), statuses=("active",), types=types)
    return ctx.store.memories.list(f, limit=SCAN_LIMIT, order="created_at ASC")


def _engine_or_none(ctx: JobContext) -> ChatEngine | None:
    """The chat model, or None when none is configured or it cannot load (the jobs that only
    use it when it is there)."""
    try:
        return ctx.engine()
    except (EngineError, InvalidInputError) as exc:
        log.info("no chat model for this job: %s", type(exc).__name__)
        return None


def _cube(ctx: JobContext, job: Job) -> Cube:
    return ctx.store.cubes.get(str(job.payload["cube_id"]))


# --- extraction ---------------------------------------------------------------------------------


def extract(ctx: JobContext, job: Job) -> Counts:
    engine = ctx.engine()
    reader = FineReader(engine, ctx.user_name)
    cube = _cube(ctx, job)
    actions = extract_one(
        ctx.store,
        job,
        reader,
        Reconciler(ctx.store),
        ctx.embedder_for(cube),
        base_model=getattr(engine, "prompt_style", "chat") == "completion",
        effects=ctx.effects,
    )
    if actions is None:
        return {"extraction skipped (base model)": 1}
    out: Counts = {"conversations read": 1}
    for a in actions:
        name = {"add": "added", "update": "updated", "supersede": "superseded"}.get(a)
        if name:
            out[name] = out.get(name, 0) + 1
    if reader.failures:
        out["extraction windows failed"] = sum(reader.failures.values())
    return out


# --- near-duplicates ------------------------------------------------------------------------------


def _keeper(a: MemoryItem, b: MemoryItem) -> tuple[MemoryItem, MemoryItem]:
    """(kept, merged): pinned first, then more words, then the older."""
    rank_a = (a.pinned, len(words(a.text)), -a.created_at)
    rank_b = (b.pinned, len(words(b.text)), -b.created_at)
    return (a, b) if rank_a >= rank_b else (b, a)


def duplicate_pairs(
    items: list[MemoryItem], vectors: dict[int, Any], dup_cosine: float, dup_jaccard: float
) -> list[tuple[MemoryItem, MemoryItem, float]]:
    """Pairs the reconciler would call one memory: same type, same anchors, close enough."""
    out: list[tuple[MemoryItem, MemoryItem, float]] = []
    by_anchor: dict[tuple[str, Any], list[MemoryItem]] = {}
    for it in items:
        by_anchor.setdefault((it.type, anchors(it.text)), []).append(it)
    for group in by_anchor.values():
        if len(group) < 2:
            continue
        vecs = [vectors.get(it.rowid) for it in group]
        have = all(v is not None for v in vecs)
        sims = None
        if have:
            m = np.stack([np.asarray(v, dtype=np.float32) for v in vecs])
            m /= np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-9)
            sims = m @ m.T
        for i in range(len(group)):
            for j in range(i + 1, len(group)):
                jac = jaccard(group[i].text, group[j].text)
                if sims is not None:
                    ok = sims[i, j] >= dup_cosine and jac >= dup_jaccard
                    sim = float(sims[i, j])
                else:
                    ok, sim = jac >= WORDS_ONLY_JACCARD, jac
                if ok:
                    out.append((group[i], group[j], sim))
    return sorted(out, key=lambda p: -p[2])


def merge_duplicates(ctx: JobContext, job: Job) -> Counts:
    cube = _cube(ctx, job)
    items = [i for i in _active(ctx, cube, MERGEABLE) if i.key != READ_KEY]
    vectors = ctx.store.memories.vectors(cube.embed_dim, [i.rowid for i in items])
    t = Reconciler(ctx.store).t
    pairs = duplicate_pairs(items, vectors, t.dup_cosine, t.dup_jaccard)
    gone: set[str] = set()
    merged = 0
    with ctx.effects():
        for a, b, sim in pairs:
            if a.id in gone or b.id in gone:
                continue
            keep, dup = _keeper(a, b)
            ctx.store.memories.supersede(
                dup.id,
                keep.id,
                at=time.time(),
                reason=f"near-duplicate merged by the daemon (similarity {sim:.2f})",
            )
            gone.add(dup.id)
            merged += 1
    return {"merged duplicates": merged} if merged else {}


# --- conflicts ------------------------------------------------------------------------------------


def _claim(item: MemoryItem) -> slots.Claim | None:
    """The one single-valued claim a memory makes, or None (none, several, or multi-valued)."""
    cs = slots.claims(item.text)
    if len(cs) != 1 or cs[0].weak or not slots.single(cs[0].attribute):
        return None
    return cs[0]


def resolve_conflicts(ctx: JobContext, job: Job) -> Counts:
    cube = _cube(ctx, job)
    by_slot: dict[str, list[tuple[MemoryItem, slots.Claim]]] = {}
    for it in _active(ctx, cube, ("fact", "preference", "event")):
        c = _claim(it)
        if c is not None and not c.negated:
            by_slot.setdefault(c.key, []).append((it, c))
    resolved = 0
    with ctx.effects():
        for key, group in by_slot.items():
            values = {slots.clean_value(c.value).casefold() for _, c in group}
            if len(group) < 2 or len(values) < 2:
                continue
            group.sort(key=lambda p: (p[0].valid_from or p[0].created_at, p[0].created_at))
            newest = group[-1][0]
            for old, _ in group[:-1]:
                ctx.store.memories.supersede(
                    old.id,
                    newest.id,
                    at=newest.valid_from or newest.created_at,
                    reason=f"conflict resolved by the daemon: newer value for '{key}'",
                )
                resolved += 1
    return {"resolved conflicts": resolved} if resolved else {}


# --- episode summaries ----------------------------------------------------------------------------


def _summary_text(ctx: JobContext, cube: Cube, conv_id: str, msgs: list[Any]) -> str:
    """An instruct model's one-paragraph summary; else the reader's memories of it joined."""
    engine = _engine_or_none(ctx)
    if engine is not None and getattr(engine, "prompt_style", "chat") == "chat":
        transcript = "\n".join(f"{m.role}: {m.content}" for m in msgs[-40:])
        try:
            text = engine.chat(
                [
                    ChatMessage(
                        "user",
                        f"Summarise in two sentences what {ctx.user_name} said in this "
                        f"conversation (facts about them only):\n\n{transcript}",
                    )
                ],
                SamplingParams.greedy(max_tokens=120),
            ).strip()
            if len(text) >= 10:
                return text
        except Exception as exc:  # a failing model leaves the reader-built summary
            log.info(
                "summary by the model failed (%s); built from the reader's memories",
                type(exc).__name__,
            )
    facts: list[str] = []
    for m in msgs:
        if m.role != "user":
            continue
        for item in ctx.store.memories.citing(cube.id, m.id):
            if item.type != "episode" and item.status == "active" and item.text not in facts:
                facts.append(item.text)
    return "; ".join(facts[:12])


def summarise_episodes(ctx: JobContext, job: Job) -> Counts:
    cube = _cube(ctx, job)
    store = ctx.store
    min_msgs = ctx.settings.daemon.summary_min_messages
    plans: list[tuple[str, NewMemory]] = []
    for user in store.users.list():
        for conv in store.conversations.list(user.id, limit=200):
            if conv.cube_id != cube.id:
                continue
            key = f"summary:{conv.id}"
            msgs = store.conversations.messages(conv.id)
            if len(msgs) < min_msgs or store.memories.by_keys(cube.id, [key]):
                continue
            text = _summary_text(ctx, cube, conv.id, msgs)
            if not text:
                continue
            conv_id = conv.id
            sources = tuple(
                Source(
                    kind="conversation",
                    conversation_id=conv_id,
                    role=m.role,
                    at=m.created_at,
                    message_id=m.id,
                )
                for m in msgs
            )
            plans.append(
                (
                    conv.id,
                    NewMemory(
                        text=text,
                        type="summary",
                        layer="long_term",
                        key=key,
                        source="daemon",
                        importance=0.4,
                        sources=sources,
                        valid_from=msgs[0].created_at,
                    ),
                )
            )
    emb = ctx.embedder_for(cube)
    vecs = emb.embed([n.text for _, n in plans]) if emb is not None and plans else None
    with ctx.effects():
        if plans:
            store.memories.add_many(
                cube,
                [n for _, n in plans],
                None if vecs is None else list(vecs),
                embed_model=emb.model_id if emb is not None else "",
            )
    return {"summarised sessions": len(plans)} if plans else {}


# --- decay ----------------------------------------------------------------------------------------


def decay(ctx: JobContext, job: Job) -> Counts:
    cube = _cube(ctx, job)
    s = ctx.settings.daemon
    cutoff = time.time() - s.decay_days * 86400
    # Unused since it was last written or retrieved: an imported memory's created_at is when
    # it was said (years ago, maybe), not when it came in. Raw episodes are the record: kept.
    stale = [
        it
        for it in _active(ctx, cube)
        if not it.pinned
        and it.layer != "user"
        and it.type != "episode"
        and it.importance <= s.decay_max_importance
        and max(it.last_used_at or 0.0, it.updated_at) < cutoff
    ]
    with ctx.effects():
        for it in stale:
            ctx.store.memories.set_status(
                it.id,
                "archived",
                change="archive",
                reason=f"not used for {s.decay_days:g} days (archived by the daemon)",
            )
    return {"archived stale": len(stale)} if stale else {}


# --- the stable prefix's KV state -----------------------------------------------------------------


def refresh_activation(ctx: JobContext, job: Job) -> Counts:
    """Prefill and save the KV state of each user's current stable prefix, so the next chat
    restores it instead of prefilling (engines without KV states: nothing to do)."""
    cube = _cube(ctx, job)
    engine = _engine_or_none(ctx)
    if engine is None or not callable(getattr(engine, "save_prefix_state", None)):
        return {}
    prefix, _ = Scheduler(ctx.store, engine.count_tokens, style=engine.prompt_style).prefix(cube)
    key = (engine.model_sha256, engine.adapter_id, engine.prefix_sha256(prefix))
    if ctx.store.activations.get(*key, engine.settings_key) is not None:
        return {}
    try:
        state = engine.save_prefix_state(prefix)
    except NotImplementedError:
        return {}
    with ctx.effects():
        ctx.store.activations.put(state, user_id=cube.owner_id, cube_id=cube.id)
        ctx.store.activations.evict_to(ctx.settings.engine.activation_cache_mib * 2**20)
    return {"refreshed KV states": 1}


# --- the sweep ------------------------------------------------------------------------------------


def sweep(ctx: JobContext, job: Job) -> Counts:
    """Queue the per-cube maintenance jobs (each once: dedupe keys)."""
    store = ctx.store
    queued = 0
    with ctx.effects():
        for user in store.users.list():
            for cube in store.cubes.list(user):
                for kind in CUBE_JOBS:
                    if (
                        store.jobs.enqueue(
                            kind, {"cube_id": cube.id}, dedupe_key=f"{kind}:{cube.id}"
                        )
                        is not None
                    ):
                        queued += 1
    return {"queued maintenance jobs": queued} if queued else {}


def register(sweep_interval_s: float = 3600.0) -> None:
    """Register the handlers (idempotent; the daemon calls it with its settings' interval)."""
    register_handler(EXTRACT.name, extract)
    register_handler(MERGE, merge_duplicates, description="merge near-duplicate memories")
    register_handler(
        CONFLICTS, resolve_conflicts, description="supersede the older of two conflicting values"
    )
    register_handler(
        SUMMARIES, summarise_episodes, description="summarise conversations (keeps sources)"
    )
    register_handler(DECAY, decay, description="archive stale, unused, unimportant memories")
    register_handler(
        ACTIVATION, refresh_activation, description="save the stable prefix's KV state"
    )
    register_periodic(
        SWEEP, sweep_interval_s, sweep, description="queue merge/conflict/summary/decay jobs"
    )


register()
