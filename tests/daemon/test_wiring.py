"""The jobs other parts register run in the real daemon: the periodic sync (issue 11) and the
re-embedding a cube import queues (issue 11), each through `memos-desktop daemon run-once` in
a child process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import memos_desktop.memory.reembed  # noqa: F401  (registers the "reembed" kind)
from memos_desktop.config import Settings, resolve_paths
from memos_desktop.store import cube_rows
from memos_desktop.store.profile import Store
from memos_desktop.store.records import NewMemory
from tests.daemon.conftest import cli as daemon_cli
from tests.sync.test_two_profiles import cli


def test_the_daemon_syncs_a_profile_set_up_for_it(tmp_path: Path) -> None:
    folder = tmp_path / "Sync"
    folder.mkdir()
    a, b = tmp_path / "home-a", tmp_path / "home-b"
    ids = {}
    for home in (a, b):
        cli(home, "init")
        ids[home] = cli(home, "sync", "setup", str(folder), "--json")["device_id"]
    code = cli(a, "sync", "pair", "--json")[0]["code"]
    cli(a, "sync", "pair", ids[b][:8], "--code", code)
    cli(b, "sync", "pair", ids[a][:8], "--code", code)
    added = cli(a, "add", "My cousin Rui keeps bees in Evora", "--json")["item"]["id"]
    assert cli(a, "sync", "status", "--json")["pending"] > 0

    out = cli(a, "daemon", "run-once")  # the periodic sync runs at daemon start
    assert cli(a, "sync", "status", "--json")["pending"] == 0, out
    cli(b, "daemon", "run-once")
    hits = cli(b, "search", "who keeps bees", "--json")["hits"]
    assert hits and hits[0]["item"]["id"] == added


def test_the_daemon_runs_the_reembedding_a_cube_import_queued(
    profile: Store, embedder: Any
) -> None:
    cube = profile.cubes.list(profile.users.list()[0])[0]
    texts = ["I grow tomatoes on the balcony", "My bike is a green Brompton"]
    for t in texts:  # as a cube import from another embedding model leaves them: no vector
        profile.memories.add(cube, NewMemory(text=t), None)
    assert cube_rows.count_missing_vectors(profile.db, cube.id, cube.embed_model) == 2
    profile.jobs.enqueue("reembed", {"cube_id": cube.id})

    # before: a search that shares no word with them finds nothing (no vector to match)
    from memos_desktop.api import open_api

    api = open_api(resolve_paths(), Settings(), embedder_factory=lambda: embedder)
    assert not api.search("vegetable gardening").hits
    api.close()

    r = daemon_cli("daemon", "run-once")
    assert r.returncode == 0, r.stderr
    assert cube_rows.count_missing_vectors(profile.db, cube.id, cube.embed_model) == 0
    api = open_api(resolve_paths(), Settings(), embedder_factory=lambda: embedder)
    try:
        hits = api.search("vegetable gardening").hits
        assert hits and hits[0].item.text == texts[0]
    finally:
        api.close()
    assert profile.db.scalar("SELECT status FROM jobs WHERE kind = 'reembed'") == "done"
