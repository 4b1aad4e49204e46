"""The lock agrees with pyproject.toml, and the check fails when they drift (CI runs this)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def lock_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lockcheck", ROOT / "scripts" / "lock.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def copy_project(tmp: Path) -> tuple[Path, Path]:
    shutil.copy(ROOT / "pyproject.toml", tmp / "pyproject.toml")
    shutil.copy(ROOT / "requirements" / "app.lock", tmp / "app.lock")
    return tmp / "pyproject.toml", tmp / "app.lock"


def test_the_committed_lock_agrees_with_pyproject() -> None:
    p = subprocess.run(
        [sys.executable, "scripts/lock.py", "check"], cwd=ROOT, capture_output=True, text=True
    )
    assert p.returncode == 0, p.stderr


def test_a_dependency_added_without_make_lock_fails_the_check(tmp_path: Path) -> None:
    lock = lock_module()
    pyproject, app_lock = copy_project(tmp_path)
    assert lock.problems(pyproject, app_lock) == []
    text = pyproject.read_text()
    pyproject.write_text(text.replace('"click>=8.1",', '"click>=8.1",\n    "rich-click>=1.8",', 1))
    found = lock.problems(pyproject, app_lock)
    assert any("not made from this pyproject.toml" in p for p in found), found
    assert any(p.startswith("rich-click is in pyproject.toml but not in app.lock") for p in found)


def test_a_range_the_pin_does_not_meet_fails_the_check(tmp_path: Path) -> None:
    lock = lock_module()
    pyproject, app_lock = copy_project(tmp_path)
    text = pyproject.read_text()
    pyproject.write_text(text.replace('"llama-cpp-python>=0.3.35"', '"llama-cpp-python>=0.4"', 1))
    found = lock.problems(pyproject, app_lock)
    assert any(
        "llama-cpp-python>=0.4 is in pyproject.toml but app.lock pins 0.3.36" in p for p in found
    ), found


def test_every_lock_entry_carries_a_hash() -> None:
    for name in ("app.lock", "build.lock", "nodeps.lock"):
        blocks = lock_module().entries((ROOT / "requirements" / name).read_text())
        assert blocks, name
        for pkg, lines in blocks:
            assert any("--hash=sha256:" in ln for ln in lines), (name, pkg)


def test_the_makefile_splits_llama_from_the_rest_without_losing_an_entry() -> None:
    text = (ROOT / "requirements" / "app.lock").read_text()

    def split(*args: str) -> str:
        p = subprocess.run(
            [sys.executable, "scripts/lock.py", *args],
            cwd=ROOT,
            input=text,
            capture_output=True,
            text=True,
            check=True,
        )
        return p.stdout

    only, rest = split("only", "llama-cpp-python"), split("without", "llama-cpp-python")
    assert only.startswith("llama-cpp-python==") and "--hash=sha256:" in only
    assert "llama-cpp-python==" not in rest
    pin_lines = lambda t: sorted(ln for ln in t.splitlines() if ln and not ln.startswith(" "))  # noqa: E731
    assert pin_lines(only + rest) == [ln for ln in pin_lines(text) if not ln.startswith("#")]
