"""The core runs without the TUI: only memos_desktop.tui may import textual (harlequin's rule),
and the layering contracts in pyproject.toml hold (tests/unit/test_one_door.py checks the front
ends' imports file by file)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_core_modules_do_not_import_textual() -> None:
    code = (
        "import sys, memos_desktop.cli, memos_desktop.api, memos_desktop.store.profile, "
        "memos_desktop.store.search, memos_desktop.engines.base\n"
        "bad = [m for m in sys.modules if m == 'textual' or m.startswith('textual.')]\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_import_contracts_hold() -> None:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    p = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert ", 0 broken" in p.stdout
    for name in (
        "Only the TUI imports textual",
        "Store and engines never import the memory layer or front ends",
        "Layers: front ends -> api -> memory -> engines, store",
        "Front ends import the api, not the layers below it",
        "The store imports no model library",
    ):
        assert f"{name} KEPT" in p.stdout, name


def test_no_import_circles_between_the_modules_that_had_them() -> None:
    """catalog <-> embeddings and tui.app <-> onboarding/widgets imported each other (issue 9);
    type-only imports count too: a circle under TYPE_CHECKING is still a knot to untie."""
    import grimp

    g = grimp.build_graph("memos_desktop")
    for a, b in [
        ("engines.catalog", "engines.embeddings"),
        ("tui.app", "tui.onboarding"),
        ("tui.app", "tui.widgets"),
    ]:
        a, b = f"memos_desktop.{a}", f"memos_desktop.{b}"
        assert not (g.find_shortest_chain(a, b) and g.find_shortest_chain(b, a)), (a, b)
