"""Fault injection on real profiles (issue 15): real encrypted profile files in the test's
home, the real ``memos-desktop`` as a subprocess where the fault is about the CLI, and the
damage done to the files themselves (bytes flipped, files deleted or emptied).

The converted MiniLM embedding model is made once per session and linked into each test's
home, so a CLI subprocess does not convert it again (8 s each)."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from memos_desktop.config import Paths, resolve_paths

ROOT = Path(__file__).resolve().parents[2]
# Started at collection, before any test lowers this process's core-file limit (launcher.py).
LAUNCHER = subprocess.Popen(
    [sys.executable, "-m", "tests.faults.launcher"],
    cwd=ROOT,
    stdin=subprocess.PIPE,
    stdout=subprocess.PIPE,
    text=True,
)
PROFILE_FILES = ("key.json", "memos.db", "memos.db-wal", "memos.mark", "memos.damaged")


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def cli(
    *args: str | bytes,
    input: bytes | str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 180,
) -> Run:
    """The real CLI in its own process (``python -m memos_desktop.cli``)."""
    e = dict(os.environ, **(env or {}))
    data = input.encode() if isinstance(input, str) else input
    p = subprocess.run(
        [sys.executable, "-m", "memos_desktop.cli", *args],
        cwd=ROOT,
        env=e,
        input=data if data is not None else b"",
        capture_output=True,
        timeout=timeout,
    )
    r = Run(p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"))
    assert "Traceback" not in r.err, r.err
    return r


def ok(*args: str, **kw: object) -> Run:
    r = cli(*args, **kw)  # type: ignore[arg-type]
    assert r.code == 0, r.text
    return r


def digests(pdir: Path) -> dict[str, str]:
    """sha256 of each profile file that holds data: not -shm, which SQLite rebuilds, nor an
    empty -wal, which SQLite makes when it opens a database whose -wal is gone."""
    return {
        name: hashlib.sha256((pdir / name).read_bytes()).hexdigest()
        for name in PROFILE_FILES
        if (pdir / name).exists()
        and not (name.endswith("-wal") and not (pdir / name).stat().st_size)
    }


@pytest.fixture(scope="session")
def converted_minilm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from memos_desktop.engines.embeddings import ensure_minilm_gguf

    home = tmp_path_factory.mktemp("minilm-home")
    return ensure_minilm_gguf(resolve_paths({"MEMOS_DESKTOP_HOME": str(home)}))


def link_model(p: Paths, converted: Path) -> Paths:
    """The converted embedding model, linked into ``p``'s cache."""
    target = p.cache_dir / "models" / converted.name
    target.parent.mkdir(parents=True, exist_ok=True)
    os.link(converted, target)
    side = converted.with_name(converted.name + ".json")
    shutil.copy2(side, target.with_name(side.name))
    return p


@pytest.fixture
def paths(isolated_home: Path, converted_minilm: Path) -> Paths:
    """This test's paths, the converted embedding model linked into its cache."""
    return link_model(resolve_paths(), converted_minilm)


@pytest.fixture
def pdir(paths: Paths) -> Path:
    """A passphrase profile made by the real `init`."""
    ok("init", "--passphrase")
    return paths.profile_dir("default")


class Writer:
    """A process that adds memories one commit each and says "ack N" after each commit; its
    WAL is never checkpointed, and SIGKILL leaves the WAL as a crash would."""

    def __init__(self, tag: str, count: int, delay: float = 0.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.writer", tag, str(count), str(delay)],
            cwd=ROOT,
            env=os.environ.copy(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.acked: list[str] = []

    def read_acks(self, n: int, timeout: float = 120) -> list[str]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while len(self.acked) < n and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            assert line, self.proc.stderr.read() if self.proc.stderr else "writer died"
            if line.startswith("ack "):
                self.acked.append(line.split(" ", 1)[1].strip())
        assert len(self.acked) >= n
        return list(self.acked)

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()


def texts(run: Run) -> set[str]:
    import json

    return {i["text"] for i in json.loads(run.out)}


def list_all(env: dict[str, str] | None = None) -> Run:
    return cli("list", "-n", "100000", "--status", "active", "--json", env=env)


def seed(paths: Paths, items: list[str]) -> None:
    """Add memories in this process (one commit), on the profile's real files."""
    from memos_desktop.config import Settings
    from memos_desktop.store.profile import open_profile
    from memos_desktop.store.records import NewMemory

    with open_profile(paths, "default", Settings()) as s:
        cube = s.cubes.list()[0]
        s.memories.add_many(cube, [NewMemory(text=t) for t in items], None)


def launch(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run ``argv`` from the launcher (the machine's own core-file limits)."""
    import json

    assert LAUNCHER.stdin is not None and LAUNCHER.stdout is not None
    LAUNCHER.stdin.write(json.dumps({"argv": argv, "cwd": str(cwd), "env": env}) + "\n")
    LAUNCHER.stdin.flush()
    got = json.loads(LAUNCHER.stdout.readline())
    return int(got["returncode"]), str(got["stderr"])


@pytest.fixture(scope="session", autouse=True)
def stop_launcher() -> object:
    yield None
    if LAUNCHER.stdin is not None:
        LAUNCHER.stdin.close()
    LAUNCHER.wait(timeout=30)
