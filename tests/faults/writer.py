"""A writer for the fault tests (``python -m tests.faults.writer TAG COUNT DELAY``): adds COUNT
memories "TAG i", one commit each, prints "ack TEXT" after each commit, then waits to be
killed. Its connection never checkpoints the WAL, so what it wrote stays in memos.db-wal, as
after a crash."""

from __future__ import annotations

import sys
import time

from memos_desktop.config import Settings, resolve_paths
from memos_desktop.store.profile import open_profile
from memos_desktop.store.records import NewMemory


def main() -> None:
    tag, count, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    store = open_profile(resolve_paths(), "default", Settings())
    store.db.conn.pragma("wal_autocheckpoint", 0)
    store.db.set_checkpoint_on_close(False)
    cube = store.cubes.list()[0]
    for i in range(count):
        text = f"{tag} {i}"
        store.memories.add_many(cube, [NewMemory(text=text)], None)
        print(f"ack {text}", flush=True)
        time.sleep(delay)
    print("done", flush=True)
    time.sleep(3600)


if __name__ == "__main__":
    main()
