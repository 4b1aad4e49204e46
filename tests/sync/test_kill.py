"""Must show (issue 11): a device killed (SIGKILL, a real process) in the middle of a sync
recovers: its database is sound, it holds no half-applied file, and the next sync ends in
the same state as its peer."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

from memos_desktop.sync.pairing import devices_dir
from tests.sync.devices import new_device, pair_all, reopen

ROOT = Path(__file__).resolve().parents[2]


def _kill_mid_sync(home: Path, delay: float) -> bool:
    """Run a sync in a child process and SIGKILL it ``delay`` s after it started syncing.
    True if it was killed before it finished."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen(
        [sys.executable, "-m", "tests.sync.sync_child", str(home)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "syncing"
    time.sleep(delay)
    p.kill()
    rest = p.stdout.read()
    p.wait()
    return "done" not in rest


def test_a_device_killed_mid_sync_recovers(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    a, b = new_device(tmp_path, "a", folder), new_device(tmp_path, "b", folder)
    pair_all([a, b])
    b.sync.sync_now()
    a.sync.sync_now()
    for r in range(60):  # 60 changesets for b to apply, each its own transaction
        ids = [a.add(f"round {r} fact {i} tea", seed=r * 10 + i) for i in range(8)]
        a.store.memories.update(ids[0], text=f"round {r} edited", tags=[f"r{r}"])
        if r % 7 == 3:
            a.store.memories.purge([ids[1]])
        a.sync.sync_now()
    for i in range(30):
        b.add(f"b's own note {i}", seed=1000 + i)
    b.store.close()

    rnd = random.Random(11)
    killed = [_kill_mid_sync(b.home, rnd.uniform(0.005, 0.12)) for _ in range(4)]
    assert any(killed), "no kill landed mid-sync: the test proved nothing"

    b.store = reopen(b.home)
    assert b.store.db.integrity_check() == ["ok"]
    for f in folder.rglob("*"):  # leftovers of a killed write included: ciphertext only
        if f.is_file():
            data = f.read_bytes()
            assert b"own note" not in data and b"fact 3 tea" not in data, f
    b.sync.sync_now()
    assert not list((devices_dir(folder) / b.store.device_id).glob(".tmp-*"))
    a.sync.sync_now()
    b.sync.sync_now()
    a.sync.sync_now()
    assert a.dump() == b.dump()
    assert len(a.live_ids()) == 60 * 8 - 9 + 30
    for d in (a, b):
        d.store.close()
