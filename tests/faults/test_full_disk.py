"""A home on a full disk (issue 15, row 10): reading and searching go on by words when the
embedding model cannot be written, and a disk too full to open the database is named as such
(not "disk I/O error"). The home is a real, small tmpfs, mounted in a private mount namespace
(``unshare``), so nothing outside the test sees it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from memos_desktop.config import Paths
from tests.faults.conftest import ROOT, ok

TMPFS_MIB = 24


def namespace_cmd() -> list[str]:
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("needs unshare(1) to mount a small tmpfs in a private namespace")
    cmd = [unshare, "-m"] if os.geteuid() == 0 else [unshare, "-Urm"]
    probe = subprocess.run([*cmd, "true"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"no private mount namespace here: {probe.stderr.decode().strip()}")
    return cmd


def test_reading_goes_on_by_words_and_a_full_disk_is_named(
    paths: Paths, isolated_home: Path, tmp_path: Path
) -> None:
    cmd = namespace_cmd()
    ok("init", "--passphrase")
    ok("add", "Ada keeps bees in the garden")
    ok("add", "The quarterly report is due on Friday")
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    script = (
        f'mount -t tmpfs -o size={TMPFS_MIB}m tmpfs "$1" && '
        'exec "$2" -m tests.faults.full_disk_driver "$3" "$1"'
    )
    p = subprocess.run(
        [*cmd, "sh", "-c", script, "sh", str(mnt), sys.executable, str(isolated_home)],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)

    near = out["nearly_full"]
    assert near["free"] < 1024 * 1024
    for name in ("list", "search"):
        r = near[name]
        assert "Traceback" not in r["err"], r["err"]
        assert r["code"] == 0, r["err"]
        assert "could not write the embedding model" in r["err"]
        assert "searching by words only" in r["err"]
    assert len(json.loads(near["list"]["out"])) == 2
    search = json.loads(near["search"]["out"])
    assert search["mode"] == "lexical"
    assert [h["item"]["text"] for h in search["hits"]] == ["Ada keeps bees in the garden"]

    full = out["full"]
    assert full["free"] == 0
    for name in ("list", "add"):
        r = full[name]
        assert "Traceback" not in r["err"], r["err"]
        assert r["code"] == 6, r["err"]
        assert "is full" in r["err"] and "free some disk space" in r["err"]
        assert "disk I/O error" not in r["err"]
