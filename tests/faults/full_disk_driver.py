"""Runs inside a private mount namespace whose home is a small tmpfs (see test_full_disk.py):
``python -m tests.faults.full_disk_driver SOURCE_HOME TMPFS``.

Copies the prepared home (a profile with memories; no converted embedding model) onto the
tmpfs, fills the tmpfs until about 400 KiB are left, runs read-only commands, then fills it
completely and runs them again. Prints one JSON object: each run's exit code, stdout and
stderr."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def fill(where: Path, leave: int) -> None:
    """Grow a filler file until ``leave`` bytes are free (0: until ENOSPC)."""
    with open(where / "filler", "ab") as fh:
        while True:
            free = shutil.disk_usage(where).free
            if free <= leave:
                return
            try:
                fh.write(b"\0" * min(1 << 20, max(4096, free - leave)))
                fh.flush()
            except OSError:
                return


def run(home: Path, *args: str) -> dict[str, object]:
    env = dict(os.environ, MEMOS_DESKTOP_HOME=str(home))
    p = subprocess.run(
        [sys.executable, "-m", "memos_desktop.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return {"code": p.returncode, "out": p.stdout, "err": p.stderr}


def main() -> None:
    source, tmpfs = Path(sys.argv[1]), Path(sys.argv[2])
    home = tmpfs / "home"
    shutil.copytree(source, home, ignore=shutil.ignore_patterns("models", "model-sha256.json"))
    out: dict[str, object] = {}
    fill(tmpfs, 400 * 1024)
    out["nearly_full"] = {
        "free": shutil.disk_usage(tmpfs).free,
        "list": run(home, "list", "--json"),
        "search": run(home, "search", "bees", "--json"),
    }
    fill(tmpfs, 0)
    out["full"] = {
        "free": shutil.disk_usage(tmpfs).free,
        "list": run(home, "list", "--json"),
        "add": run(home, "add", "one more"),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
