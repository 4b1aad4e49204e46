"""A writer killed with SIGKILL loses nothing it acknowledged; two writers never see "database
is locked"."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from memos_desktop.config import Settings, resolve_paths
from memos_desktop.store.profile import Store, open_profile
from memos_desktop.store.records import SearchFilters

ROOT = Path(__file__).resolve().parents[2]


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.store.writer_proc", *args],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_mid_batch_keeps_every_acknowledged_write(store: Store) -> None:
    store.close()
    proc = spawn("default", "crash", "100000", "50")
    acked: list[int] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while len(acked) < 12 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else "writer died"
        acked.append(int(line.split()[1]))
    time.sleep(0.013)  # land inside a later batch
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    with open_profile(resolve_paths(), "default", Settings()) as s:
        assert s.db.integrity_check() == ["ok"]
        texts = {i.text for i in s.memories.list(SearchFilters(tags=("crash",)), limit=10**6)}
        for b in acked:
            for i in range(50):
                assert f"crash batch {b} item {i}" in texts
        # batches are atomic: whatever landed, landed whole
        assert len(texts) % 50 == 0
        assert s.db.scalar("PRAGMA foreign_key_check") is None


def test_two_processes_write_at_once_without_lock_errors(store: Store) -> None:
    store.close()
    procs = [spawn("default", tag, "60", "5") for tag in ("alpha", "beta")]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "locked" not in err and "busy" not in err.lower()
        assert out.count("ack") == 60
    with open_profile(resolve_paths(), "default", Settings()) as s:
        assert s.memories.count(SearchFilters(tags=("alpha",))) == 300
        assert s.memories.count(SearchFilters(tags=("beta",))) == 300
        assert s.db.integrity_check() == ["ok"]


def test_disk_full_is_a_clear_error_and_loses_nothing(store: Store) -> None:
    """SQLITE_FULL, provoked with max_page_count (the same error a full disk gives)."""
    import numpy as np
    import pytest

    from memos_desktop.errors import DiskFullError
    from memos_desktop.store.records import NewMemory

    cube = store.cubes.list()[0]
    kept = store.memories.add(cube, NewMemory(text="Quinn speaks Welsh"), np.ones(384)).item
    pages = int(store.db.scalar("PRAGMA page_count"))
    store.db.conn.pragma("max_page_count", pages + 2)
    big = [NewMemory(text=f"filler {i} " + "x" * 2000) for i in range(200)]
    with pytest.raises(DiskFullError, match="disk is full") as ei:
        store.memories.add_many(cube, big, np.ones((200, 384)))
    assert ei.value.exit_code == 6 and "free some disk space" in str(ei.value)
    assert store.memories.get(kept.id).text == "Quinn speaks Welsh"
    assert store.memories.count(SearchFilters()) == 1  # the failed batch left nothing half-done
    store.db.conn.pragma("max_page_count", 2**30)
    assert len(store.memories.add_many(cube, big, np.ones((200, 384)))) == 200
    assert store.db.integrity_check() == ["ok"]
