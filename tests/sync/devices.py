"""Simulated devices for the sync tests: each a real encrypted profile in its own home,
syncing through one folder (the replication tool is played by the test: it copies files
between per-device views of the folder, in any order, late, or twice)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from memos_desktop.config import Settings, resolve_paths
from memos_desktop.store.profile import Store, create_profile, open_profile
from memos_desktop.store.records import NewMemory
from memos_desktop.store.sync_state import state_dump
from memos_desktop.sync.folder import FolderSync
from memos_desktop.sync.identity import load_identity
from tests.conftest import PASSPHRASE

DIM = 8


def home_paths(home: Path) -> Any:
    return resolve_paths({"MEMOS_DESKTOP_HOME": str(home)})


def make_store(home: Path) -> Store:
    return create_profile(
        home_paths(home),
        "default",
        Settings(),
        method="passphrase",
        passphrase=PASSPHRASE,
        embed_model="test-embed",
        embed_dim=DIM,
    )


def reopen(home: Path) -> Store:
    return open_profile(
        home_paths(home), "default", Settings(), passphrase_provider=lambda _p: PASSPHRASE
    )


def vec(seed: int) -> Any:
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


@dataclass
class Device:
    home: Path
    folder: Path
    store: Store
    compact_every: int = 64

    @property
    def sync(self) -> FolderSync:
        return FolderSync(
            self.store.db, load_identity(self.store.db), self.store.dir, self.compact_every
        )

    @property
    def cube(self) -> Any:
        return self.store.cubes.list(self.store.users.list()[0])[0]

    def add(self, text: str, seed: int = 0) -> str:
        r = self.store.memories.add(self.cube, NewMemory(text=text), vec(seed), dedupe=False)
        return str(r.item.id)

    def live_ids(self) -> list[str]:
        return [str(r[0]) for r in self.store.db.query("SELECT id FROM memory_items ORDER BY id")]

    def texts(self) -> list[str]:
        return [str(r[0]) for r in self.store.db.query("SELECT text FROM memory_items")]

    def sync_entries(self) -> list[dict[str, Any]]:
        """Every entry of every file this device wrote (decrypted with its own key)."""
        from memos_desktop.sync.changeset import decode
        from memos_desktop.sync.pairing import devices_dir

        ident = load_identity(self.store.db)
        key = self.sync.sync_key
        assert key is not None
        out: list[dict[str, Any]] = []
        for p in sorted((devices_dir(self.folder) / ident.device_id).glob("*.mcs")):
            out += decode(p.read_bytes(), ident.public, key, p.name)[1]
        return out

    def dump(self) -> str:
        return json.dumps(state_dump(self.store.db), sort_keys=True)

    def file_digest(self) -> str:
        """The database files' bytes (main file and WAL)."""
        h = hashlib.sha256()
        main = Path(str(self.store.db.path))
        for p in (main, main.with_name(main.name + "-wal")):
            if p.exists():
                h.update(p.read_bytes())
        return h.hexdigest()

    def db_digest(self) -> str:
        """A full dump of every table (the store byte for byte, as SQL sees it)."""
        h = hashlib.sha256()
        for (name,) in self.store.db.query(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        ):
            h.update(name.encode())
            for row in self.store.db.query(f'SELECT * FROM "{name}" ORDER BY 1'):
                h.update(repr(row).encode())
        return h.hexdigest()


def new_device(root: Path, name: str, folder: Path, compact_every: int = 64) -> Device:
    return Device(root / name, folder, make_store(root / name), compact_every)


def pair_all(devices: list[Device]) -> None:
    """Set every device up on its folder and pair each with each (codes compared)."""
    for d in devices:
        d.sync.setup(d.folder)
    for a in devices:
        for b in devices:
            if a is not b:
                code = a.sync.code(b.store.device_id)
                assert code == b.sync.code(a.store.device_id)
                a.sync.pair(b.store.device_id, code)
