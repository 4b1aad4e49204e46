"""A writer process for the two-process change-log test (run with ``python -m``).

usage: python -m tests.store.changelog_proc PROFILE TAG WRITES GO_FILE SKEW_S
Opens the profile, prints "ready", waits for GO_FILE to exist (so both writers start together),
then makes WRITES writes, each its own transaction with a short pause after it: a memory add,
a message, a memory edit, in turn. SKEW_S sets this process's wall clock that many seconds
back (a wrong clock). The memories are tagged TAG and the conversation is titled TAG, so the
parent can tell whose rows are whose.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from memos_desktop.config import Settings, resolve_paths
from memos_desktop.store.profile import open_profile
from memos_desktop.store.records import NewMemory


def main() -> None:
    profile, tag, writes, go, skew = (
        sys.argv[1],
        sys.argv[2],
        int(sys.argv[3]),
        Path(sys.argv[4]),
        float(sys.argv[5]),
    )
    store = open_profile(resolve_paths(), profile, Settings())
    if skew:
        store.changelog.wall = lambda: time.time() - skew
    cube = store.cubes.list()[0]
    user = store.users.list()[0]
    rng = np.random.default_rng(abs(hash(tag)) % 2**32)
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.005)
    conv = store.conversations.create(user.id, cube.id, title=tag)
    last = None
    for i in range(writes):
        if i % 3 == 0 or last is None:
            v = rng.standard_normal(cube.embed_dim).astype(np.float32)
            last = store.memories.add(cube, NewMemory(text=f"{tag} note {i}", tags=(tag,)), v).item
        elif i % 3 == 1:
            store.conversations.add_message(conv.id, "user", f"{tag} says {i}")
        else:
            store.memories.update(last.id, importance=(i % 97) / 100)
        # Give the other writer its turn: SQLite's busy handler is not fair, and a writer in a
        # tight loop can take the lock back before the waiting one wakes up.
        time.sleep(0.002)
    print("done", flush=True)
    store.close()


if __name__ == "__main__":
    main()
