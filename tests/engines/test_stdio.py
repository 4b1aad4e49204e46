"""Loading a model leaves the process's stdout and stderr alone (a real child process).

llama-cpp-python points fd 1 and 2 (and sys.stdout / sys.stderr) at /dev/null while it loads
a model; the terminal app draws on fd 2 from another thread meanwhile, so what it drew was
lost. The engines load without that redirect, and llama.cpp still prints nothing itself (its
logs go to the app's log).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from memos_desktop.engines.base import Embedder

ROOT = Path(__file__).resolve().parents[2]


def test_model_loads_keep_stdout_and_stderr(
    tiny_path: Path, embedder: Embedder, tmp_path: Path
) -> None:
    embed_path = embedder.path  # type: ignore[attr-defined]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.engines.stdio_child",
            str(tiny_path),
            str(embed_path),
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    written = int(out.stdout.strip().splitlines()[-1])
    lines = out.stderr.splitlines()
    assert written > 10
    # every frame drawn while the two models loaded arrived, and so did a Python print
    assert lines.count("frame") == written
    assert "a python line on stderr" in lines
    # and nothing else: llama.cpp printed nothing of its own, its warnings are in the log
    assert set(lines) == {"frame", "a python line on stderr"}, set(lines) - {"frame"}
    log = (tmp_path / "logs").glob("*.log")
    assert any("special_eos_id" in f.read_text() for f in log)
