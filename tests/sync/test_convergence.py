"""Must show (issue 11): three devices (real encrypted profiles, each in its own home) apply
random operations and exchange their files through a replication tool the test plays: files
arrive in random order, late, twice, and deletions (compactions) arrive late too. After
everything has been delivered and each device synced, all three are in the same state, and a
memory purged on one is gone, text and history, everywhere."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memos_desktop.sync.pairing import devices_dir
from tests.sync.devices import Device, new_device, pair_all


class Replicator:
    """Each device has its own copy of the sync folder; this copies a device's own files to
    the other copies (what Syncthing or Dropbox does), on the test's schedule."""

    def __init__(self, devices: list[Device], rnd: random.Random) -> None:
        self.devices = devices
        self.rnd = rnd

    def own(self, d: Device) -> Path:
        return devices_dir(d.folder) / d.store.device_id

    def deliver(self, src: Device, dst: Device, fraction: float = 1.0) -> None:
        """Copy some of ``src``'s files to ``dst``'s copy (in random order; some again) and
        apply some of its deletions."""
        here, there = self.own(src), devices_dir(dst.folder) / src.store.device_id
        if not here.is_dir():
            return
        there.mkdir(parents=True, exist_ok=True)
        names = [n for n in os.listdir(here) if not n.startswith(".tmp-")]
        self.rnd.shuffle(names)
        for n in names:
            if self.rnd.random() <= fraction:
                tmp = there / f".syncthing.{n}.tmp"
                shutil.copyfile(here / n, tmp)
                os.replace(tmp, there / n)
        for n in os.listdir(there):
            if n not in names and not n.startswith(".") and self.rnd.random() <= fraction:
                (there / n).unlink()

    def everything(self) -> None:
        for a in self.devices:
            for b in self.devices:
                if a is not b:
                    self.deliver(a, b)


def _make(root: Path, rnd: random.Random) -> tuple[list[Device], Replicator]:
    devices = [new_device(root, n, root / f"folder-{n}", compact_every=3) for n in ("a", "b", "c")]
    for d in devices:
        d.folder.mkdir()
    net = Replicator(devices, rnd)
    devices[0].sync.setup(devices[0].folder)  # the first device makes the sync key
    net.everything()
    for d in devices[1:]:
        d.sync.setup(d.folder)
    net.everything()
    pair_all(devices)
    net.everything()
    return devices, net


ACTIONS = ["add", "add", "edit", "edit", "forget", "restore", "purge", "sync", "sync", "deliver"]


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.data())
def test_three_devices_converge_whatever_the_order(data: st.DataObject) -> None:
    seed = data.draw(st.integers(0, 2**32 - 1), label="replication seed")
    rnd = random.Random(seed)
    root = Path(tempfile.mkdtemp(prefix="memos-sync-prop-"))
    try:
        devices, net = _make(root, rnd)
        purged: set[str] = set()
        texts: dict[str, str] = {}
        steps = data.draw(
            st.lists(
                st.tuples(st.sampled_from(ACTIONS), st.integers(0, 2), st.integers(0, 10**6)),
                min_size=4,
                max_size=24,
            ),
            label="steps",
        )
        for n, (action, who, pick) in enumerate(steps):
            d = devices[who]
            live = d.live_ids()
            if action == "add" or (not live and action in ("edit", "forget", "restore", "purge")):
                text = f"note{n}x{who} about topic{pick % 7}"
                texts[d.add(text, seed=pick)] = text
            elif action == "edit":
                mid = live[pick % len(live)]
                if pick % 3:
                    text = f"edited{n}x{who} text"
                    texts[mid] = text
                    d.store.memories.update(mid, text=text)
                else:
                    d.store.memories.update(mid, importance=(pick % 10) / 10, tags=[f"t{n}"])
            elif action == "forget":
                d.store.memories.forget(live[pick % len(live)])
            elif action == "restore":
                d.store.memories.restore(live[pick % len(live)])
            elif action == "purge":
                mid = live[pick % len(live)]
                d.store.memories.purge([mid])
                purged.add(mid)
            elif action == "sync":
                d.sync.sync_now()
            else:
                other = devices[(who + 1 + pick % 2) % 3]
                net.deliver(d, other, fraction=rnd.choice([0.3, 0.7, 1.0]))
        for _ in range(3):  # everything delivered, everyone synced, until quiet
            for d in devices:
                report = d.sync.sync_now()
                assert not report.refused
                net.everything()
        dumps = [d.dump() for d in devices]
        assert dumps[0] == dumps[1] == dumps[2]
        for d in devices:
            status = d.sync.status()
            assert status.pending == 0
            assert status.fingerprint == devices[0].sync.status().fingerprint
            for mid in purged:
                assert mid not in d.live_ids()
                assert not d.store.db.scalar(
                    "SELECT count(*) FROM memory_versions WHERE item_id = ?", (mid,)
                )
                token = texts[mid].split()[0]
                alive = [t for m, t in texts.items() if m not in purged]
                if not any(token in t for t in alive):
                    assert not d.store.db.scalar(
                        "SELECT count(*) FROM memory_fts WHERE memory_fts MATCH ?", (token,)
                    )
    finally:
        for d in locals().get("devices", []):
            d.store.close()
        shutil.rmtree(root, ignore_errors=True)
