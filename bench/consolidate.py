"""The daemon's consolidation on LoCoMo-ingested memory (issue 12), and the answer latency it
costs the person.

Usage: .venv/bin/python bench/consolidate.py [--conversations 1-2] [--questions 12] [--no-write]

1. A slice of LoCoMo (``../shared/data/locomo``) is ingested as a person would feed it: each
   session through ``MemosAPI.add`` as a conversation (speaker A as the person, B as the other
   side), so the rule reader makes memories from every exchange and raw episodes keep what
   was said. Every memory's sources map back to LoCoMo dia_ids (message id -> dia_id).
2. Before and after the daemon's jobs (merge near-duplicates, resolve conflicts, summarise,
   decay; no chat model, so summaries are built from the reader's memories): the duplicate
   rate (active non-episode memories that the merge job's test pairs with another, as a share
   of all of them), and LoCoMo turn-level R@10 (categories 1-4, the README recipe) through
   ``MemosAPI.search``. Jobs/s is the run of those jobs, in this process, one at a time.
3. TTFT of answers (the packaged Gemma, the TUI's API in this process) with no daemon, with a
   real daemon process busy on a queue of jobs and yielding (``[daemon]`` defaults: it pauses
   while an answer streams and for ``idle_s`` after), and with one that does not yield
   (``idle_s = 0``, ``nice = 0``). Median over the questions; each condition asks the same.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import git_rev, machine, write_section
from bench.locomo import CATEGORIES, DATA, clean_evidence, parse_when
from bench.locomo import turns as locomo_turns
from memos_desktop.api import MemosAPI, open_api
from memos_desktop.config import (
    DaemonSettings,
    ModelSettings,
    Settings,
    resolve_paths,
    save_settings,
)
from memos_desktop.engines.loader import load_embedder
from memos_desktop.memory import maintenance
from memos_desktop.memory.reader import READ_KEY
from memos_desktop.memory.reconcile import MERGEABLE, Reconciler
from memos_desktop.store.profile import create_profile
from memos_desktop.store.records import NewMemory, SearchFilters, Source

PASS = "bench"


def sessions(conv: dict[str, Any]) -> list[tuple[list[dict[str, Any]], list[str]]]:
    c = conv["conversation"]
    a = c["speaker_a"]
    out = []
    n = 1
    while f"session_{n}" in c:
        when = parse_when(c[f"session_{n}_date_time"])
        msgs, dids = [], []
        for i, t in enumerate(c[f"session_{n}"]):
            text = t["text"] + (
                f" [shared image: {t['blip_caption']}]" if t.get("blip_caption") else ""
            )
            msgs.append(
                {
                    "role": "user" if t["speaker"] == a else "assistant",
                    "content": text,
                    "time": when + i,
                }
            )
            dids.append(t["dia_id"])
        out.append((msgs, dids))
        n += 1
    return out


def dup_rate(api: MemosAPI, cube_ids: list[str]) -> tuple[float, int, int]:
    t = Reconciler(api.store).t
    dups = total = 0
    for cid in cube_ids:
        cube = api.store.cubes.get(cid)
        f = SearchFilters(cube_ids=(cid,), statuses=("active",), types=MERGEABLE)
        items = [i for i in api.store.memories.list(f, limit=100000) if i.key != READ_KEY]
        vecs = api.store.memories.vectors(cube.embed_dim, [i.rowid for i in items])
        pairs = maintenance.duplicate_pairs(items, vecs, t.dup_cosine, t.dup_jaccard)
        dups += len({x.id for p in pairs for x in p[:2]})
        total += len(items)
    return (dups / total if total else 0.0), dups, total


def recall10(
    api: MemosAPI, qs: list[tuple[str, str, list[str]]], did_of: dict[str, str] | None
) -> float:
    """``did_of``: message id -> dia_id (conversations); None: the sources' refs (turns)."""
    scores = []
    for cid, q, gold in qs:
        hits = api.search(q, top_k=10, cube=cid).hits
        # A summary takes its rank but its sources (every message of a session) do not count:
        # they would credit it with every turn.
        got = {
            (did_of.get(s.message_id or "") if did_of is not None else s.ref)
            for h in hits
            if h.item.type != "summary"
            for s in h.item.sources
        }
        scores.append(len(set(gold) & got) / len(gold))
    return statistics.mean(scores) if scores else 0.0


def run_jobs(
    api: MemosAPI, cube_ids: list[str], kinds: tuple[str, ...] = maintenance.CUBE_JOBS
) -> tuple[int, float, dict[str, int]]:
    for cid in cube_ids:
        for kind in kinds:
            api.store.jobs.enqueue(kind, {"cube_id": cid}, dedupe_key=f"{kind}:{cid}")
    ctx = api.job_context()
    n, counts = 0, {}
    t0 = time.perf_counter()
    while (out := api.run_next_job("bench", ctx, kinds=kinds)) is not None:
        n += 1
        for k, v in out.counts.items():
            counts[k] = counts.get(k, 0) + v
    return n, time.perf_counter() - t0, counts


def ttfts(api: MemosAPI, questions: list[str]) -> list[float]:
    out = []
    for q in questions:
        turn = api.chat(q)
        for _ in turn:
            pass
        if turn.stats is not None and turn.stats.ttft_s is not None:
            out.append(turn.stats.ttft_s)
    return out


def busy_daemon(home: str, cube_ids: list[str], *, yielding: bool) -> subprocess.Popen[bytes]:
    paths = resolve_paths()
    d = DaemonSettings() if yielding else DaemonSettings(yield_to_answers=False, nice=0)
    save_settings(paths, Settings(daemon=d, models=ModelSettings(chat="no-model-for-the-daemon")))
    env = {
        **os.environ,
        "MEMOS_DESKTOP_HOME": home,
        "MEMOS_DESKTOP_PASSPHRASE": PASS,
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "memos_desktop.daemon", "run", "--profile", "bench"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--conversations", default="1-2")
    ap.add_argument("--questions", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    lo, _, hi = args.conversations.partition("-")
    data = json.loads(DATA.read_text())[int(lo) - 1 : int(hi or lo)]

    home = tempfile.mkdtemp(prefix="memos-consolidate-")
    os.environ["MEMOS_DESKTOP_HOME"] = home
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    paths = resolve_paths()
    embedder = load_embedder(paths, "all-minilm-l6-v2")
    create_profile(
        paths,
        "bench",
        Settings(),
        method="passphrase",
        passphrase=PASS,
        embed_model=embedder.model_id,
        embed_dim=embedder.dim,
    ).close()
    os.environ["MEMOS_DESKTOP_PASSPHRASE"] = PASS
    api = open_api(
        paths, Settings(), profile="bench", embedder_factory=lambda: embedder, resident_index=True
    )

    did_of: dict[str, str] = {}
    qs: list[tuple[str, str, list[str]]] = []
    cube_ids: list[str] = []
    t0 = time.perf_counter()
    n_turns = 0
    for conv in data:
        cube = api.create_cube(conv["sample_id"])
        cube_ids.append(cube.id)
        known: set[str] = set()
        for msgs, dids in sessions(conv):
            had = {c.id for c in api.store.conversations.list(api.user.id, limit=100000)}
            api.add(msgs, cube=cube.id)
            (conv_id,) = {
                c.id for c in api.store.conversations.list(api.user.id, limit=100000)
            } - had
            recorded = api.store.conversations.messages(conv_id)
            for m, did in zip(recorded, dids, strict=True):
                did_of[m.id] = did
            known |= set(dids)
            n_turns += len(dids)
        for q in conv["qa"]:
            if int(q["category"]) in CATEGORIES:
                gold = clean_evidence(q.get("evidence", []), known)
                if gold:
                    qs.append((cube.id, q["question"], gold))
    ingest_s = time.perf_counter() - t0
    print(f"ingested {n_turns} turns in {ingest_s:.1f} s; {len(qs)} questions", flush=True)

    rate0, d0, n0 = dup_rate(api, cube_ids)
    r0 = recall10(api, qs, did_of)
    print(f"before: duplicate rate {rate0:.1%} ({d0}/{n0}); R@10 {r0:.3f}", flush=True)
    jobs, secs, counts = run_jobs(api, cube_ids)
    rate1, d1, n1 = dup_rate(api, cube_ids)
    r1 = recall10(api, qs, did_of)
    print(f"jobs {jobs} in {secs:.2f} s ({jobs / secs:.1f}/s): {counts}", flush=True)
    print(f"after: duplicate rate {rate1:.1%} ({d1}/{n1}); R@10 {r1:.3f}", flush=True)
    archived = api.store.memories.count(SearchFilters(statuses=("archived",)))

    # B: the same turns imported as plain memories (one fact per turn, its dia_id as source
    # ref), the case with real near-duplicates; only the merge and conflict jobs.
    turn_cubes: list[str] = []
    turn_qs: list[tuple[str, str, list[str]]] = []
    for conv in data:
        cube = api.create_cube(conv["sample_id"] + "-turns")
        turn_cubes.append(cube.id)
        items = [
            NewMemory(
                text=t,
                source="import",
                created_at=when,
                valid_from=when,
                sources=(Source(kind="import", ref=did, at=when),),
            )
            for did, t, when in locomo_turns(conv)
        ]
        for i in range(0, len(items), 256):
            api.add(items[i : i + 256], cube=cube.id)
        turn_qs += [(cube.id, q, g) for c, q, g in qs if c == cube_ids[len(turn_cubes) - 1]]
    rate_b0, db0, nb0 = dup_rate(api, turn_cubes)
    rb0 = recall10(api, turn_qs, None)
    jobs_b, secs_b, counts_b = run_jobs(api, turn_cubes, (maintenance.MERGE, maintenance.CONFLICTS))
    rate_b1, db1, nb1 = dup_rate(api, turn_cubes)
    rb1 = recall10(api, turn_qs, None)
    print(f"turns: dup {rate_b0:.1%} -> {rate_b1:.1%}; R@10 {rb0:.3f} -> {rb1:.3f}; {counts_b}")

    # TTFT: the packaged Gemma answering in this process (the TUI's API)
    from memos_desktop.api import default_engine_factory

    api.set_engine_factory(default_engine_factory(paths, Settings()))
    questions = [q for _, q, _ in qs[: args.questions]]
    api.use_cube(cube_ids[0])
    ttfts(api, questions[:1])  # warm up: model load, first KV state
    # The conditions take turns (two rounds): the machine's other load falls on all of them.
    conditions = (
        ("daemon off", None),
        ("daemon busy, yielding (defaults)", True),
        ("daemon busy, not yielding (yield_to_answers false, nice 0)", False),
    )
    results: dict[str, list[float]] = {label: [] for label, _ in conditions}
    ran: dict[str, int] = {label: 0 for label, _ in conditions}
    for _round in range(args.rounds):
        for label, yielding in conditions:
            if yielding is None:
                results[label] += ttfts(api, questions)
                continue
            for i in range(2000):
                api.store.jobs.enqueue(
                    maintenance.MERGE if i % 2 else maintenance.CONFLICTS,
                    {"cube_id": cube_ids[i % len(cube_ids)]},
                )
            proc = busy_daemon(home, cube_ids, yielding=yielding)
            time.sleep(6.0)  # up, and into its queue
            before = api.store.jobs.counts().get("done", 0)
            results[label] += ttfts(api, questions)
            ran[label] += api.store.jobs.counts().get("done", 0) - before
            proc.terminate()
            proc.wait(timeout=30)
            print(f"{label}: {ran[label]} jobs done while answering", flush=True)
    api.close()

    med = {k: statistics.median(v) for k, v in results.items() if v}
    base = med.get("daemon off", 0.0)
    lines = [
        "## Issue 12: the daemon's consolidation (bench/consolidate.py)",
        "",
        f"Machine: {machine()}; commit {git_rev()}. Command: "
        "`.venv/bin/python bench/consolidate.py "
        f"--conversations {args.conversations} --questions {args.questions} "
        f"--rounds {args.rounds}`. "
        "LoCoMo conversations "
        f"{args.conversations}: {n_turns} turns ingested as conversations through `MemosAPI.add` "
        f"(rule reader + raw episodes) in {ingest_s:.1f} s, {len(qs)} questions (categories 1-4).",
        "",
        "| | before | after the daemon's jobs |",
        "|---|---|---|",
        f"| duplicate rate (active non-episode memories with a near-duplicate) | {rate0:.1%} "
        f"({d0} of {n0}) | {rate1:.1%} ({d1} of {n1}) |",
        f"| LoCoMo R@10 (turn level, `MemosAPI.search`) | {r0:.3f} | {r1:.3f} |",
        f"| B: turns imported as memories: duplicate rate | {rate_b0:.1%} ({db0} of {nb0}) | "
        f"{rate_b1:.1%} ({db1} of {nb1}) |",
        f"| B: turns imported as memories: LoCoMo R@10 | {rb0:.3f} | {rb1:.3f} |",
        "",
        "A: LoCoMo as conversations (the reader's memories + raw episodes, which are never "
        'merged). B: every turn imported as a plain memory (`"{speaker}: {text}"`, its dia_id '
        f"as source), merge and conflict jobs only ({jobs_b} jobs in {secs_b:.2f} s: "
        f"{', '.join(f'{k} {v}' for k, v in sorted(counts_b.items())) or 'nothing'}). A merged "
        "memory's sources stay on it (archived, linked to the one kept), so a question whose "
        "evidence was only the merged turn can lose it: R@10 shows what that costs. A summary's "
        "sources (every message of its session) are not counted as hits.",
        "",
        f"Jobs: {jobs} maintenance jobs (merge, conflicts, summaries, decay, KV refresh per cube) "
        f"in {secs:.2f} s = **{jobs / secs:.1f} jobs/s** (in process, one at a time; per cube "
        f"they scan every active memory). What they did: "
        f"{', '.join(f'{k} {v}' for k, v in sorted(counts.items())) or 'nothing'}; "
        f"{archived} memories archived in all (none deleted).",
        "",
        "Answer TTFT (packaged Gemma 270M, the TUI's API in this process, "
        f"{len(questions)} LoCoMo questions x {args.rounds} rounds each, median):",
        "",
        "| condition | TTFT median | vs daemon off | daemon jobs done while answering |",
        "|---|---|---|---|",
    ]
    for k, v in med.items():
        rel = f"{(v / base - 1) * 100:+.0f}%" if base else "-"
        jobs_ran = str(ran[k]) if k != "daemon off" else "-"
        lines.append(f"| {k} | {v * 1000:.0f} ms | {rel} | {jobs_ran} |")
    lines += [
        "",
        "The busy daemon is a real process (`python -m memos_desktop.daemon run`) on a queue of "
        "2,000 merge/conflict jobs over these cubes per block; the conditions take turns, "
        f"{args.rounds} rounds. Target: within 10% of the daemon off. The machine is shared "
        "with other work (2 cores), so the figures carry its noise.",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("consolidate", body)


if __name__ == "__main__":
    main()
