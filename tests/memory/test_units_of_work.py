"""Units of work, on real parts: a chat turn's records and a consolidation job's effects with its
completion land all together or not at all, even when the process is SIGKILLed between them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from memos_desktop.api import MemosAPI
from memos_desktop.config import Settings, resolve_paths
from memos_desktop.memory.consolidate import EXTRACT, run_pending
from memos_desktop.store.profile import Store, open_profile
from memos_desktop.store.records import SearchFilters
from tests.conftest import new_profile
from tests.memory.scripted import MEMORIES, TRANSCRIPT, ScriptedExtractor

ROOT = Path(__file__).resolve().parents[2]
FACTS = SearchFilters(types=("fact",))


def child(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.memory.unit_child", *args],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def reopen() -> Store:
    return open_profile(resolve_paths(), "default", Settings())


def turn_records(s: Store) -> tuple[int, int, int]:
    return (
        int(s.db.scalar("SELECT count(*) FROM messages")),
        int(s.db.scalar("SELECT count(*) FROM memory_items")),
        int(s.db.scalar("SELECT count(*) FROM jobs")),
    )


def test_a_chat_turn_killed_between_its_writes_leaves_none_of_them(
    tiny_path: Path, sha_cache: Path
) -> None:
    new_profile().close()
    killed = child("chat", str(tiny_path), str(sha_cache), "--die-after-first-write")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert "first write returned" in killed.stdout  # it died inside _record, not before
    with reopen() as s:
        assert s.db.integrity_check() == ["ok"]
        assert turn_records(s) == (0, 0, 0)  # not the question without its answer
    # the same turn, not killed, leaves all of them
    ok = child("chat", str(tiny_path), str(sha_cache))
    assert ok.returncode == 0, ok.stderr
    with reopen() as s:
        assert turn_records(s) == (2, 2, 1)  # the raw episode and the fact read from it
        assert [m.text for m in s.memories.list(FACTS)] == ["I keep bees on the roof"]
        conv = [
            c for c in s.conversations.list(s.users.list()[0].id) if s.conversations.messages(c.id)
        ]
        assert [m.role for m in s.conversations.messages(conv[0].id)] == ["user", "assistant"]
        assert s.jobs.counts() == {"queued": 1}


def test_a_job_killed_between_its_effects_leaves_none_and_runs_again(
    tiny_path: Path, sha_cache: Path
) -> None:
    store = new_profile()
    me = store.users.list()[0]
    cube = store.cubes.create(me, "personal", embed_model="none", embed_dim=384)
    conv = store.conversations.create(me.id, cube.id)
    for role, text in TRANSCRIPT:
        store.conversations.add_message(conv.id, role, text)
    jid = store.jobs.enqueue(EXTRACT.name, {"conversation_id": conv.id, "cube_id": cube.id})
    assert jid is not None
    store.close()

    killed = child("consolidate", str(tiny_path), str(sha_cache), "--die-after-first-write")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert "first write returned" in killed.stdout  # one memory was written, then the kill
    with reopen() as s:
        assert s.db.integrity_check() == ["ok"]
        assert s.memories.list(FACTS) == []
        job = s.jobs.get(jid)
        assert job.status == "running" and job.attempts == 1  # not done without its effects
        assert job.lease_until is not None
        wait = job.lease_until - time.time()
    time.sleep(max(0.0, wait) + 0.1)  # the dead worker's lease runs out

    ok = child("consolidate", str(tiny_path), str(sha_cache))
    assert ok.returncode == 0, ok.stderr
    assert "done=1" in ok.stdout and "added=2" in ok.stdout
    with reopen() as s:
        assert sorted(m.text for m in s.memories.list(FACTS)) == sorted(m["text"] for m in MEMORIES)
        job = s.jobs.get(jid)
        assert job.status == "done" and job.attempts == 2


def test_a_consolidation_job_that_lost_its_lease_saves_nothing(api: MemosAPI) -> None:
    api.add([{"role": r, "content": t} for r, t in TRANSCRIPT])
    read = api.list(FACTS)  # what the rule reader took from the messages at once
    thief = reopen()
    stolen = []

    def stall_then_get_reclaimed() -> None:
        time.sleep(0.3)  # past the 0.2 s lease
        stolen.append(thief.jobs.claim("thief", kinds=(EXTRACT.name,)))

    try:
        slow = ScriptedExtractor(api.engine, before=stall_then_get_reclaimed)  # type: ignore[arg-type]
        report = run_pending(api.store, slow, api.embedder, lease_s=0.2)  # type: ignore[arg-type]
        assert report.done == 0 and report.failed == 0 and report.added == 0
        assert api.list(FACTS) == read
        job = stolen[0]
        assert job is not None and thief.jobs.get(job.id).locked_by == "thief"
        # the worker that holds the lease does the job: its effects and finish commit together
        thief.jobs.fail(job, job.lease_token, "handing it back", retry_in_s=0)
        report = run_pending(api.store, ScriptedExtractor(api.engine), api.embedder)  # type: ignore[arg-type]
        assert report.done == 1 and report.added + report.unchanged == 2
        facts = {m.text for m in api.list(FACTS)}
        assert facts >= {m["text"] for m in MEMORIES} | {m.text for m in read}
        assert len(facts) == len(read) + report.added and api.store.jobs.counts() == {"done": 1}
    finally:
        thief.close()
