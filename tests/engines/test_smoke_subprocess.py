"""Each packaged model, once, in a child process: a native crash is a failed test with the
command that reproduces it, not a dead test run (issue 16: an AMX build segfaulted the suite)."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engines.smoke_child import CASES

ROOT = Path(__file__).resolve().parents[2]


def fail_on_signal(proc: subprocess.CompletedProcess[str], cmd: list[str]) -> None:
    """A child killed by a signal fails the test, naming the signal and the command."""
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        pytest.fail(
            f"the child was killed by {name} (a native crash in the engine).\n"
            f"Reproduce: cd {shlex.quote(str(ROOT))} && {shlex.join(cmd)}\n"
            f"stderr tail:\n{proc.stderr[-2000:]}",
            pytrace=False,
        )


@pytest.mark.parametrize("case", sorted(CASES))
def test_packaged_model_smoke_in_a_child_process(
    case: str, tmp_path: Path, gemma_path: Path
) -> None:
    cmd = [sys.executable, "-m", "tests.engines.smoke_child", case, str(tmp_path), str(gemma_path)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    fail_on_signal(proc, cmd)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("ok")


def test_a_signal_death_is_reported_with_the_command_to_reproduce(tmp_path: Path) -> None:
    script = tmp_path / "die.py"
    script.write_text("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    cmd = [sys.executable, str(script)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGSEGV
    with pytest.raises(
        pytest.fail.Exception, match=r"killed by SIGSEGV(.|\n)*Reproduce: cd .*die\.py"
    ):
        fail_on_signal(proc, cmd)
