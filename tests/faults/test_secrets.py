"""Secrets stay in the process (issue 15, rows 8-9 of the probe table): `init`, `doctor` and
the terminal app's open path start no child process (keyring's macOS probe ran ldconfig, gcc
and ld, 41 processes, 36 with the passphrase), the passphrase leaves the environment
(/proc/<pid>/environ no longer shows it), and the process is not dumpable while unlocked;
a SIGSEGV of an unlocked process leaves no core file."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memos_desktop.config import Paths
from tests.conftest import PASSPHRASE
from tests.faults.conftest import ROOT, launch, ok


def real_keyring_env() -> dict[str, str]:
    """The environment a user has: keyring picks its backend itself (the test-wide fail
    backend would skip the probing that started the child processes)."""
    env = dict(os.environ)
    env.pop("PYTHON_KEYRING_BACKEND", None)
    return env


def probe(tmp_path: Path, mode: str, *args: str) -> dict[str, object]:
    out = tmp_path / f"report-{mode}-{'-'.join(args)}.json"
    p = subprocess.run(
        [sys.executable, "-m", "tests.faults.secret_probe", str(out), mode, *args],
        cwd=ROOT,
        env=real_keyring_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in p.stderr, p.stderr
    report: dict[str, object] = json.loads(out.read_text())
    return report


def assert_kept_in(report: dict[str, object]) -> None:
    assert report["spawns"] == [], report["spawns"]  # no child process at all
    end = report["end"]
    assert isinstance(end, dict)
    if sys.platform.startswith("linux"):
        assert end["dumpable"] is False
    assert end["core_limit"] == [0, 0]
    assert not end["environ_has_secret"]  # /proc/self/environ: the bytes were zeroed
    assert not end["os_environ_has_secret"]


def test_init_and_doctor_start_no_child_and_keep_the_passphrase_in(
    isolated_home: Path, tmp_path: Path
) -> None:
    init = probe(tmp_path, "cli", "init", "--passphrase")
    assert init.get("exit") in (0, None)
    assert_kept_in(init)
    doctor = probe(tmp_path, "cli", "doctor")
    assert doctor.get("exit") in (0, 6, None)
    assert_kept_in(doctor)


def descendants(pid: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def environ_of(pid: int) -> bytes | None:
    """/proc/<pid>/environ, or None when the kernel refuses it (a non-dumpable process of
    another user, or to a non-root reader)."""
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except PermissionError:
        return None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_app_open_path_keeps_the_passphrase_in_and_is_not_dumpable(
    paths: Paths, tmp_path: Path, tiny_path: Path
) -> None:
    ok("init", "--passphrase")
    paths.config_file.write_text(f'[models]\nchat = "{tiny_path}"\n', encoding="utf-8")
    out = tmp_path / "report-tui.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.faults.secret_probe", str(out), "tui"],
        cwd=ROOT,
        env=real_keyring_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        deadline = time.monotonic() + 240
        line = ""
        while "OPEN" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "the probe died"
        # The profile is open: look at the process from outside, through /proc.
        env = environ_of(proc.pid)
        assert env is None or PASSPHRASE.encode() not in env
        for kid in descendants(proc.pid):
            kid_env = environ_of(kid)
            assert kid_env is None or PASSPHRASE.encode() not in kid_env, kid
        limits = Path(f"/proc/{proc.pid}/limits").read_text()
        core = next(ln for ln in limits.splitlines() if ln.startswith("Max core file size"))
        assert core.split()[4:6] == ["0", "0"], core
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    report = json.loads(out.read_text())
    assert report["opened"] is True
    assert_kept_in(report)


def core_files(d: Path) -> list[Path]:
    return [p for p in d.iterdir() if p.name == "core" or p.name.startswith("core.")]


CRASH = """
import os, resource, signal, sys
try:
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY,) * 2)
except (ValueError, OSError):
    hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
if sys.argv[1] == "unlocked":
    from memos_desktop.config import Settings, resolve_paths
    from memos_desktop.store.profile import open_profile
    from memos_desktop.store.records import NewMemory
    store = open_profile(resolve_paths(), "default", Settings())
    store.memories.add_many(store.cubes.list()[0], [NewMemory(text="Zorblax canary")], None)
    assert store.memories.count() == 2  # the canary is in memory, decrypted
os.kill(os.getpid(), signal.SIGSEGV)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux core dumps")
def test_a_crash_while_unlocked_leaves_no_core_file(paths: Paths, tmp_path: Path) -> None:
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    if pattern.startswith("|") or "/" in pattern:
        pytest.skip(f"cores do not go to the working directory here ({pattern})")
    if resource.getrlimit(resource.RLIMIT_CORE)[1] == 0 and os.geteuid() != 0:
        pytest.skip("core files cannot be turned on here (hard RLIMIT_CORE is 0)")
    ok("init", "--passphrase")
    ok("add", "a memory so the cube exists")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    results = {}
    for mode in ("control", "unlocked"):
        cwd = tmp_path / mode
        cwd.mkdir()
        code, err = launch([sys.executable, "-c", CRASH, mode], cwd, env)
        assert code == -signal.SIGSEGV, err
        results[mode] = core_files(cwd)
        for c in results[mode]:
            c.unlink()
    if not results["control"]:
        pytest.skip("this machine writes no core file even for a plain crash")
    assert results["unlocked"] == []
