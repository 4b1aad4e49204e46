"""Device sync benchmark: how long a device takes to catch up on N changes, replaying the
other device's changesets or from its snapshot (issue 11).

Usage: .venv/bin/python bench/sync_catchup.py [--changes 10000] [--batch 100]

Device A (a real encrypted profile) adds N memories (384-dim vectors, LoCoMo-like short
texts) in batches, syncing after each batch: N / batch changesets. Device B, paired, then
syncs once and applies them all (replay). A then compacts (one snapshot of everything) and a
third device C, paired afterwards, catches up from that snapshot alone. All three in one
process, through one local folder (no replication tool in the loop: that is the tool's time).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import git_rev, machine, write_section
from memos_desktop.config import Settings, resolve_paths
from memos_desktop.store.profile import Store, create_profile
from memos_desktop.store.records import NewMemory
from memos_desktop.sync.folder import FolderSync
from memos_desktop.sync.identity import load_identity

DIM = 384
PASS = "bench passphrase"


def device(root: Path, name: str) -> Store:
    return create_profile(
        resolve_paths({"MEMOS_DESKTOP_HOME": str(root / name)}),
        "default",
        Settings(),
        method="passphrase",
        passphrase=PASS,
        embed_model="bench-embed",
        embed_dim=DIM,
    )


def sync_of(s: Store, compact_every: int = 10**9) -> FolderSync:
    return FolderSync(s.db, load_identity(s.db), s.dir, compact_every)


def pair(stores: list[Store], folder: Path) -> None:
    for s in stores:
        sync_of(s).setup(folder)
    for a in stores:
        for b in stores:
            if a is not b:
                sa = sync_of(a)
                sa.pair(b.device_id, sa.code(b.device_id))


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--changes", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=100)
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="memos-bench-sync-") as tmp:
        root = Path(tmp)
        folder = root / "Sync"
        folder.mkdir()
        a, b = device(root, "a"), device(root, "b")
        pair([a, b], folder)
        sync_of(b).sync_now()
        sync_of(a).sync_now()
        cube = a.cubes.list(a.users.list()[0])[0]
        t0 = time.perf_counter()
        export_s = 0.0
        for k in range(0, args.changes, args.batch):
            n = min(args.batch, args.changes - k)
            items = [
                NewMemory(text=f"memory {k + i}: the person mentioned topic {(k + i) % 97}")
                for i in range(n)
            ]
            a.memories.add_many(cube, items, rng.standard_normal((n, DIM)), dedupe=False)
            t = time.perf_counter()
            sync_of(a).sync_now()
            export_s += time.perf_counter() - t
        write_s = time.perf_counter() - t0
        own = folder / "memos-sync" / "devices" / a.device_id
        cs_files = sorted(own.glob("cs-*.mcs"))
        cs_bytes = sum(p.stat().st_size for p in cs_files)

        t = time.perf_counter()
        rb = sync_of(b).sync_now()
        replay_s = time.perf_counter() - t
        assert rb.changed == args.changes, rb
        rss_replay = rss_mib()

        t = time.perf_counter()
        sync_of(a, compact_every=1).sync_now()  # compaction: one snapshot, older files deleted
        snapshot_write_s = time.perf_counter() - t
        snaps = sorted(own.glob("snap-*.mcs"))
        snap_bytes = snaps[-1].stat().st_size
        c = device(root, "c")
        pair([a, b, c], folder)
        sync_of(a).sync_now()  # grants c the key
        t = time.perf_counter()
        rc = sync_of(c).sync_now()
        from_snapshot_s = time.perf_counter() - t
        n_c = int(c.db.scalar("SELECT count(*) FROM memory_items"))
        assert n_c == args.changes, (n_c, rc)
        for s in (a, b, c):
            s.close()

    rows = [
        (
            "A: write (add + export after each batch)",
            f"{write_s:.1f} s",
            f"export part {export_s:.1f} s, {len(cs_files)} changesets, {cs_bytes / 2**20:.1f} MiB",
        ),
        (
            "B: catch up by replaying the changesets",
            f"{replay_s:.1f} s",
            f"{args.changes / replay_s:,.0f} memories/s; peak RSS so far {rss_replay:.0f} MiB",
        ),
        (
            "A: compact (write one snapshot)",
            f"{snapshot_write_s:.1f} s",
            f"{snap_bytes / 2**20:.1f} MiB",
        ),
        (
            "C: catch up from the snapshot",
            f"{from_snapshot_s:.1f} s",
            f"{args.changes / from_snapshot_s:,.0f} memories/s",
        ),
    ]
    body = [
        "## Device sync: catching up (issue 11)",
        "",
        f"`.venv/bin/python bench/sync_catchup.py --changes {args.changes} --batch {args.batch}`"
        f" on {machine()} (rev {git_rev()}). {args.changes:,} new memories (384-dim vectors, "
        f"so every entry carries its embedding) written on device A in batches of "
        f"{args.batch}, each batch one changeset; all devices are real encrypted profiles in "
        "one process, syncing through one local folder. Peak RSS is the whole process (three "
        f"profiles open): {rss_mib():.0f} MiB at the end. Load average at the start "
        f"{load:.1f} (the machine is shared: figures are upper bounds).",
        "",
        "| step | time | notes |",
        "|---|---|---|",
        *[f"| {s} | {t} | {n} |" for s, t, n in rows],
    ]
    text = "\n".join(body)
    print(text)
    write_section("sync_catchup", text)


if __name__ == "__main__":
    main()
