"""One profile, many processes: a daemon running maintenance jobs back to back, an API in this
process writing as the terminal app does (resident index), and CLI commands in their own
processes, all writing at once for a minute: no failure, no "database is locked", every write
there at the end exactly once."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from memos_desktop.config import Settings, resolve_paths
from memos_desktop.store.profile import Store
from memos_desktop.store.records import SearchFilters
from tests.daemon.conftest import cli, configure, daemon_up, spawn, wait_for

DURATION_S = 60.0


def test_daemon_api_and_cli_write_at_once_without_failure(
    profile: Store, embedder: Any, tmp_path: Path, daemons: list[subprocess.Popen[bytes]]
) -> None:
    from memos_desktop.api import open_api

    configure(sweep_interval_s=1.0)  # the sweep queues merge/conflict/decay jobs every second
    d = spawn()
    daemons.append(d)
    wait_for(daemon_up, what="the daemon")
    api = open_api(
        resolve_paths(), Settings(), embedder_factory=lambda: embedder, resident_index=True
    )
    cube = profile.cubes.list()[0]
    stop = time.monotonic() + DURATION_S
    errors: list[str] = []
    api_texts: list[str] = []

    def api_writer() -> None:
        i = 0
        while time.monotonic() < stop:
            text = f"Locker {i} of the API writer holds item {i * 7}"
            try:
                api.add(text)
                api.search(f"locker {i}")
                api_texts.append(text)
            except Exception as exc:  # collected: the assertion below names it
                errors.append(f"api: {type(exc).__name__}: {exc}")
            i += 1

    t = threading.Thread(target=api_writer)
    t.start()
    cli_texts: list[str] = []
    job_ids: list[int] = []
    j = 0
    while time.monotonic() < stop:
        text = f"Shelf {j} of the CLI writer holds box {j * 11}"
        r = cli("add", text)
        if r.returncode != 0:
            errors.append(f"cli add: {r.returncode}: {r.stderr.strip()}")
        else:
            cli_texts.append(text)
        jid = profile.jobs.enqueue(
            "test.effect",
            {
                "cube_id": cube.id,
                "text": f"Job effect {j} number {j * 13}",
                "marker": str(tmp_path / f"m{j}"),
                "hang_s": 0,
            },
        )
        assert jid is not None
        job_ids.append(jid)
        j += 1
    t.join()
    wait_for(
        lambda: all(profile.jobs.get(i).status == "done" for i in job_ids), 60, "the daemon's jobs"
    )
    d.terminate()
    assert d.wait(timeout=10) == 0
    api.close()

    assert not errors, errors[:5]
    assert len(api_texts) > 20 and len(cli_texts) > 3  # it did interleave
    log = (resolve_paths().profile_dir("default") / "daemon.log").read_text()
    assert "locked" not in log.lower() and "): failed" not in log
    f = SearchFilters(statuses=("active", "archived", "deleted"))
    texts = [m.text for m in profile.memories.list(f, limit=100000)]
    for text in [*api_texts, *cli_texts]:
        assert texts.count(text) == 1, text
    for k in range(len(job_ids)):
        assert texts.count(f"Job effect {k} number {k * 13}") == 1
