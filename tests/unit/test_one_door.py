"""One door: front ends (cli, tui, daemon, mcp) import ``memos_desktop.api`` plus
``config`` and ``errors`` from memos_desktop, nothing below it; the api package stays cheap to
import (the terminal app paints before numpy, the store or model code load)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "memos_desktop"
FRONT_ENDS = ("cli", "tui", "daemon", "mcp")
ALLOWED = ("api", "config", "errors", *FRONT_ENDS)


def front_end_files() -> list[Path]:
    files: list[Path] = []
    for name in FRONT_ENDS:
        if (PKG / f"{name}.py").is_file():
            files.append(PKG / f"{name}.py")
        if (PKG / name).is_dir():
            files += sorted((PKG / name).rglob("*.py"))
    return files


def module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """Every memos_desktop module a source imports: at the top, in functions, under
    TYPE_CHECKING, relative or absolute. ``from memos_desktop import x`` counts as
    ``memos_desktop.x`` when x is a module or package, else as ``memos_desktop``."""
    found: list[tuple[int, str]] = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for a in node.names:
                sub = f"{base}.{a.name}"
                rel = Path(*sub.split("."))
                is_module = (ROOT / rel).is_dir() or (ROOT / rel).with_suffix(".py").is_file()
                found.append((node.lineno, sub if is_module else base))
    return [(n, m) for n, m in found if m == "memos_desktop" or m.startswith("memos_desktop.")]


def below_the_door(source: str, module: str, is_package: bool = False) -> list[str]:
    bad = []
    for line, mod in imported_modules(source, module, is_package):
        parts = mod.split(".")
        if len(parts) == 1:  # memos_desktop itself (__version__)
            continue
        if parts[1] not in ALLOWED:
            bad.append(f"{module}:{line} imports {mod}")
    return bad


def test_front_ends_import_only_the_api_config_and_errors() -> None:
    files = front_end_files()
    assert PKG / "cli" / "memories.py" in files and PKG / "tui" / "app.py" in files
    bad = []
    for f in files:
        bad += below_the_door(f.read_text(encoding="utf-8"), module_of(f), f.name == "__init__.py")
    assert bad == []


@pytest.mark.parametrize(
    "line",
    [
        "from memos_desktop.store import keys",
        "from memos_desktop.store.records import MEMORY_TYPES",
        "import memos_desktop.engines.catalog",
        "from memos_desktop import memory",
        "from ..store import profile",
        "def f():\n    from memos_desktop.memory.chat import ChatTurn",
        "if TYPE_CHECKING:\n    from memos_desktop.engines.base import Embedder",
    ],
)
def test_an_import_below_the_door_is_caught(line: str) -> None:
    cli = (PKG / "cli" / "__init__.py").read_text(encoding="utf-8")
    assert below_the_door(cli, "memos_desktop.cli") == []
    module = "memos_desktop.tui.app" if line.startswith("from ..") else "memos_desktop.cli"
    assert below_the_door(f"{cli}\n{line}\n", module) != []


def test_the_api_exports_what_it_names() -> None:
    import memos_desktop.api as api

    assert sorted(api.__all__) == sorted(api._EXPORTS)
    for name in api.__all__:
        assert getattr(api, name) is not None, name
    with pytest.raises(AttributeError):
        api.no_such_name  # noqa: B018


def test_the_door_is_cheap_to_open() -> None:
    """What a front end imports before its first paint loads no numpy, database or models."""
    code = (
        "import sys\n"
        "import memos_desktop.api, memos_desktop.api.session, memos_desktop.api.types\n"
        "import memos_desktop.api.profiles, memos_desktop.api.model_ops, memos_desktop.tui.app\n"
        "import memos_desktop.cli\n"
        "heavy = ('numpy', 'apsw', 'llama_cpp', 'sqlite_vec', 'cryptography', 'mlx')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
