"""Device sync through a replicated folder, for the front ends and the daemon (issue 11).

Every call takes the API's lock, so a sync never interleaves with an edit of the same API; a
sync from another process (the daemon beside the app) is kept apart by the profile's sync
lock (:mod:`memos_desktop.sync.folder`).

Hooks for other parts:
- the daemon syncs every :data:`SYNC_INTERVAL_S` through the periodic job registered here
  (:func:`sync_now` raises :class:`SyncError` when sync is not set up: the job checks
  :func:`is_set_up` first);
- the cube importer takes :func:`paired_devices` as the signers it knows;
- the TUI shows :func:`status_line` in its status bar.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from memos_desktop.memory.handlers import JobContext, register_periodic
from memos_desktop.store.jobs import Job

if TYPE_CHECKING:
    from memos_desktop.api.facade import MemosAPI
    from memos_desktop.sync.folder import Candidate, FolderSync, SyncReport, SyncStatus
    from memos_desktop.sync.identity import PublicIdentity


def _sync(api: MemosAPI) -> FolderSync:
    from memos_desktop.sync.folder import FolderSync
    from memos_desktop.sync.identity import load_identity

    return FolderSync(api.store.db, load_identity(api.store.db), api.store.dir)


def setup(api: MemosAPI, folder: Path) -> dict[str, object]:
    """Sync through ``folder``: publishes this device's pairing offer there."""
    with api.lock:
        s = _sync(api)
        made = s.setup(Path(folder))
        return {
            "folder": str(s.folder),
            "device_id": s.me,
            "identity": str(s.ident.public),
            "new_sync_key": made,
        }


def identity(api: MemosAPI) -> str:
    """This device's public identity line (``memos-device:1:...``)."""
    with api.lock:
        return str(_sync(api).ident.public)


def candidates(api: MemosAPI) -> list[Candidate]:
    """The other devices set up on the folder, each with the code to compare."""
    with api.lock:
        return _sync(api).candidates()


def pairing_code(api: MemosAPI, device: str) -> str:
    with api.lock:
        return _sync(api).code(device)


def pair(api: MemosAPI, device: str, code: str) -> Candidate:
    """Pair with ``device`` (an id or its start) once the person confirmed ``code``."""
    with api.lock:
        return _sync(api).pair(device, code)


def sync_now(api: MemosAPI) -> SyncReport:
    """Send this device's changes and apply the paired devices' (see FolderSync.sync_now)."""
    with api.lock:
        # The resident vector index catches up by itself: merged writes are in the change log.
        return _sync(api).sync_now()


def is_set_up(api: MemosAPI) -> bool:
    """Whether this profile syncs (reads a setting only: makes no device keys)."""
    from memos_desktop.store import sync_state

    with api.lock:
        return sync_state.get_config(api.store.db, "folder") is not None


def status(api: MemosAPI) -> SyncStatus:
    with api.lock:
        return _sync(api).status()


def paired_devices(api: MemosAPI) -> list[PublicIdentity]:
    """The public identities of the devices this one is paired with (known signers)."""
    with api.lock:
        return _sync(api).paired()


def status_line(api: MemosAPI) -> str:
    """A short sync state for a status bar: off, waiting, last sync age, conflicts."""
    from memos_desktop.store import sync_state

    with api.lock:
        db = api.store.db
        if sync_state.get_config(db, "folder") is None:
            return "sync off"
        peers = len(sync_state.peers(db))
        if not peers:
            return "sync: not paired"
        last = sync_state.get_config(db, "last_sync")
        err = sync_state.get_config(db, "last_error")
        n_conf = len(sync_state.conflicts(db))
        age = "never" if not last else _age(time.time() - float(last))
        text = f"sync {age} ({peers} device{'s' if peers != 1 else ''})"
        if n_conf:
            text += f", {n_conf} conflict{'s' if n_conf != 1 else ''}"
        if err:
            text += ", error"
        return text


def _age(seconds: float) -> str:
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} d ago"


# --- the daemon's periodic sync ------------------------------------------------------------

# How often a running daemon syncs a profile that is set up for it.
SYNC_INTERVAL_S = 300.0


def _sync_job(ctx: JobContext, job: Job) -> dict[str, int]:
    """The daemon's periodic "sync" job: nothing when sync is not set up; else one sync (its
    files are written atomically and applied idempotently, so a job redone after a crash does
    no harm)."""
    api = ctx.services.get("api")
    if api is None or not is_set_up(api):
        return {}
    report = sync_now(api)
    counts = {"sent changes": report.exported, "applied sync files": report.applied}
    return {k: v for k, v in counts.items() if v}


register_periodic("sync", SYNC_INTERVAL_S, _sync_job, description="sync with paired devices")
