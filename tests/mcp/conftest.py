"""The MCP server as a host app runs it: `memos-desktop mcp --client NAME` in its own process,
driven by the official SDK's client (over stdio, or streamable HTTP on 127.0.0.1), on a real
encrypted passphrase profile in the test's home.

The converted MiniLM embedding model is made once per session and linked into each test's
cache (as in tests/faults), so a server process does not convert it again. The server gets
only the environment a host would give it: the SDK's safe defaults plus what is named here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from memos_desktop.config import Paths, resolve_paths
from tests.conftest import PASSPHRASE

ROOT = Path(__file__).resolve().parents[2]
CLIENT = "test-app"


@dataclass
class Run:
    code: int
    out: str
    err: str


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Run:
    """The real CLI in its own process."""
    p = subprocess.run(
        [sys.executable, "-m", "memos_desktop.cli", *args],
        cwd=ROOT,
        env=dict(os.environ, **(env or {})),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert "Traceback" not in p.stderr, p.stderr
    return Run(p.returncode, p.stdout, p.stderr)


def ok(*args: str, **kw: Any) -> Run:
    r = cli(*args, **kw)
    assert r.code == 0, r.out + r.err
    return r


def audit(client: str | None = None) -> list[dict[str, Any]]:
    """The audit log as the person reads it (`mcp log --json`), oldest first."""
    extra = ("--client", client) if client else ()
    return list(reversed(json.loads(ok("mcp", "log", "--json", *extra).out)))


def server_env(**extra: str) -> dict[str, str]:
    """What a host's MCP config would put in the server's "env" (plus the test's isolation)."""
    env = {
        "MEMOS_DESKTOP_HOME": os.environ["MEMOS_DESKTOP_HOME"],
        "PYTHON_KEYRING_BACKEND": os.environ["PYTHON_KEYRING_BACKEND"],
        "PYTHONPATH": str(ROOT),
        "MEMOS_DESKTOP_PASSPHRASE": PASSPHRASE,
    }
    env.update(extra)
    return {k: v for k, v in env.items() if v}


def server_params(*args: str, client: str = CLIENT, **env: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "memos_desktop.cli", "mcp", "--client", client, *args],
        env=server_env(**env),
        cwd=str(ROOT),
    )


@asynccontextmanager
async def stdio_session(client: str = CLIENT) -> AsyncIterator[Client]:
    """The SDK's own client, talking to a `memos-desktop mcp` subprocess over stdio."""
    async with Client(server_params(client=client), read_timeout_seconds=120, cache=None) as c:
        yield c


def result_json(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text
    data = result.structured_content
    assert isinstance(data, dict)
    return data


def error_text(result: Any) -> str:
    assert result.is_error, result
    return str(result.content[0].text)


@pytest.fixture(scope="session")
def converted_minilm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from memos_desktop.engines.embeddings import ensure_minilm_gguf

    home = tmp_path_factory.mktemp("minilm-home")
    return ensure_minilm_gguf(resolve_paths({"MEMOS_DESKTOP_HOME": str(home)}))


@pytest.fixture
def paths(isolated_home: Path, converted_minilm: Path) -> Paths:
    """This test's paths, the converted embedding model linked into its cache."""
    p = resolve_paths()
    target = p.cache_dir / "models" / converted_minilm.name
    target.parent.mkdir(parents=True, exist_ok=True)
    os.link(converted_minilm, target)
    side = converted_minilm.with_name(converted_minilm.name + ".json")
    shutil.copy2(side, target.with_name(side.name))
    return p


@pytest.fixture
def profile(paths: Paths) -> Paths:
    """A passphrase profile made by the real `init`."""
    ok("init", "--passphrase")
    return paths
