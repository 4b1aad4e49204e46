"""The import contracts hold with the MCP server inside them: memos_desktop.mcp is a front end
that imports the api (plus config and errors), the contracts cover it (and would catch it
reaching lower), and the rest of the CLI starts without the MCP SDK."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {"memos_desktop", "memos_desktop.api", "memos_desktop.config", "memos_desktop.errors"}


def lint_imports(root: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    return subprocess.run([exe], cwd=root, capture_output=True, text=True, env=env)


def test_the_mcp_server_imports_only_the_door() -> None:
    g = grimp.build_graph("memos_desktop")
    server = "memos_desktop.mcp.server"
    assert server in g.modules
    ours = {m for m in g.find_modules_directly_imported_by(server) if m.startswith("memos_")}
    assert "memos_desktop.api" in ours and ours <= ALLOWED, ours
    # ... and nothing below the api reaches it, nor it them, by any chain of imports.
    for low in ("memos_desktop.store", "memos_desktop.memory", "memos_desktop.engines"):
        for m in g.find_descendants(low) | {low}:
            assert not g.find_shortest_chain(m, server), m


def test_the_contracts_hold_and_catch_an_mcp_import_below_the_door(tmp_path: Path) -> None:
    p = lint_imports(ROOT)
    assert p.returncode == 0 and "Front ends import the api, not the layers below it KEPT" in (
        p.stdout
    ), p.stdout + p.stderr
    # The same contracts on a copy whose MCP server imports the store: broken.
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "memos_desktop", copy / "memos_desktop")
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    server = copy / "memos_desktop" / "mcp" / "server.py"
    server.write_text(server.read_text() + "\nfrom memos_desktop.store import mcp_audit\n")
    q = lint_imports(copy, {"PYTHONPATH": str(copy), "PATH": str(Path(sys.executable).parent)})
    assert q.returncode != 0, q.stdout
    assert "Front ends import the api, not the layers below it BROKEN" in q.stdout
    assert "memos_desktop.mcp.server -> memos_desktop.store.mcp_audit" in q.stdout


def test_the_cli_starts_without_the_mcp_sdk() -> None:
    code = (
        "import sys, memos_desktop.cli\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('mcp', 'mcp_types'))\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
