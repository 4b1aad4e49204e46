"""A device syncing in its own process, for the kill test: opens the profile in HOME, says
"syncing" on stdout, runs one sync, says "done"."""

from __future__ import annotations

import sys
from pathlib import Path

from memos_desktop.sync.folder import FolderSync
from memos_desktop.sync.identity import load_identity
from tests.sync.devices import reopen

if __name__ == "__main__":
    store = reopen(Path(sys.argv[1]))
    sync = FolderSync(store.db, load_identity(store.db), store.dir)
    print("syncing", flush=True)
    report = sync.sync_now()
    print("done", report.summary(), flush=True)
    store.close()
