"""Must show (issue 11): two real profiles, each in its own MEMOS_DESKTOP_HOME, sync through
one folder with the `memos-desktop` command in separate processes: a memory added on one is
found by search on the other, and a purge on one is gone on the other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def cli(home: Path, *args: str) -> Any:
    env = {**os.environ, "MEMOS_DESKTOP_HOME": str(home), "PYTHONPATH": str(ROOT)}
    p = subprocess.run(
        [sys.executable, "-m", "memos_desktop.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, (args, p.stdout, p.stderr)
    return json.loads(p.stdout) if "--json" in args else p.stdout


def test_two_homes_sync_through_one_folder_with_the_cli(tmp_path: Path) -> None:
    folder = tmp_path / "Sync"
    folder.mkdir()
    a, b = tmp_path / "home-a", tmp_path / "home-b"
    for home in (a, b):
        cli(home, "init")
    ida = cli(a, "sync", "setup", str(folder), "--json")
    idb = cli(b, "sync", "setup", str(folder), "--json")
    assert ida["new_sync_key"] and not idb["new_sync_key"]

    # Pairing: each lists the other with the same code; each confirms it.
    seen_by_a = cli(a, "sync", "pair", "--json")
    seen_by_b = cli(b, "sync", "pair", "--json")
    assert [c["device_id"] for c in seen_by_a] == [idb["device_id"]]
    assert [c["device_id"] for c in seen_by_b] == [ida["device_id"]]
    code = seen_by_a[0]["code"]
    assert seen_by_b[0]["code"] == code
    cli(a, "sync", "pair", idb["device_id"][:8], "--code", code)
    cli(b, "sync", "pair", ida["device_id"][:8], "--code", code)

    added = cli(a, "add", "My sister Lena lives in Lisbon", "--json")["item"]["id"]
    cli(a, "add", "The quarterly report is due on Friday")
    cli(a, "sync", "now")
    cli(b, "sync", "now")
    hits = cli(b, "search", "where does Lena live", "--json")["hits"]
    assert hits and hits[0]["item"]["id"] == added
    assert hits[0]["item"]["text"] == "My sister Lena lives in Lisbon"

    cli(b, "purge", added, "--yes")
    cli(b, "sync", "now")
    cli(a, "sync", "now")
    hits = cli(a, "search", "Lena Lisbon", "--json")["hits"]
    assert added not in [h["item"]["id"] for h in hits]  # neither active nor forgotten: gone
    assert [i["text"] for i in cli(a, "list", "--json")] == [
        "The quarterly report is due on Friday"
    ]
    status = cli(a, "sync", "status", "--json")
    assert status["pending"] == 0 and status["conflicts"] == []
    assert [p["device_id"] for p in status["peers"]] == [idb["device_id"]]
    assert status["fingerprint"] == cli(b, "sync", "status", "--json")["fingerprint"]
    for f in folder.rglob("*"):
        if f.is_file():
            assert b"Lena" not in f.read_bytes() and b"quarterly" not in f.read_bytes()
