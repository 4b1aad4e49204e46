"""The lock files and pyproject.toml must agree: `python scripts/lock.py check|stamp|only|without`.

``requirements/app.lock`` is made by ``make lock`` (``uv pip compile --universal
--generate-hashes``) from the ``[project]`` dependencies and the ``dev`` extra of pyproject.toml.
``stamp`` writes a fingerprint of those inputs at the top of the lock; ``check`` fails when

* the fingerprint differs (a dependency was added, removed or changed without ``make lock``), or
* a direct dependency has no pinned version in the lock that its range admits.

``only NAME`` / ``without NAME`` print the lock's entry for one package / every other entry (the
Makefile installs llama-cpp-python from its own wheelhouse and the rest hash-checked).

Runs on the standard library alone (packaging is used for the range check when importable), so
the Makefile can call it before anything is installed.
"""

from __future__ import annotations

import hashlib
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKED_EXTRAS = ("dev",)
STAMP_PREFIX = "# pyproject-inputs-sha256: "
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def inputs(pyproject: Path) -> list[str]:
    """The requirement strings the lock is resolved from, normalised and sorted."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    reqs = list(project.get("dependencies", []))
    for extra in LOCKED_EXTRAS:
        reqs += [f"{r} [extra:{extra}]" for r in project.get("optional-dependencies", {})[extra]]
    reqs.append(f"requires-python {project.get('requires-python', '')}")
    return sorted(" ".join(r.split()) for r in reqs)


def fingerprint(pyproject: Path) -> str:
    return hashlib.sha256("\n".join(inputs(pyproject)).encode()).hexdigest()


def entries(lock_text: str) -> list[tuple[str, list[str]]]:
    """The lock as (canonical name, lines) blocks: a pin line and its hash/comment lines."""
    out: list[tuple[str, list[str]]] = []
    for line in lock_text.splitlines():
        m = PIN.match(line)
        if m:
            out.append((canonical(m.group(1)), [line]))
        elif out and (line.startswith(" ") or not line.strip()):
            out[-1][1].append(line)
    return out


def pins(lock_text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in lock_text.splitlines():
        m = PIN.match(line)
        if m:
            found.setdefault(canonical(m.group(1)), []).append(m.group(3))
    return found


def problems(pyproject: Path, lock: Path) -> list[str]:
    """Every way the lock disagrees with pyproject.toml (empty when they agree)."""
    if not lock.exists():
        return [f"{lock} is missing: run `make lock`"]
    text = lock.read_text(encoding="utf-8")
    out: list[str] = []
    stamped = next(
        (ln[len(STAMP_PREFIX) :] for ln in text.splitlines() if ln.startswith(STAMP_PREFIX)), None
    )
    if stamped != fingerprint(pyproject):
        out.append(
            f"{lock.name} was not made from this pyproject.toml (its dependencies changed since "
            "the last `make lock`): run `make lock` and commit the lock"
        )
    locked = pins(text)
    try:
        from packaging.requirements import Requirement
    except ImportError:  # only the fingerprint check without packaging
        return out
    for raw in [
        r.split(" [extra:")[0] for r in inputs(pyproject) if not r.startswith("requires-python")
    ]:
        req = Requirement(raw)
        name = canonical(req.name)
        versions = locked.get(name, [])
        if not versions:
            out.append(f"{req.name} is in pyproject.toml but not in {lock.name}: run `make lock`")
        elif not any(req.specifier.contains(v, prereleases=True) for v in versions):
            out.append(
                f"{req.name}{req.specifier} is in pyproject.toml but {lock.name} pins "
                f"{', '.join(versions)}: run `make lock`"
            )
    return out


def stamp(pyproject: Path, lock: Path) -> None:
    lines = [
        ln
        for ln in lock.read_text(encoding="utf-8").splitlines()
        if not ln.startswith(STAMP_PREFIX)
    ]
    header = [
        "# Made by `make lock` (uv pip compile --universal --generate-hashes) from pyproject.toml",
        "# [project] dependencies + the dev extra. Do not edit: `make lock` rewrites it.",
    ]
    lines = [ln for ln in lines if ln not in header]
    lock.write_text(
        "\n".join([*header, STAMP_PREFIX + fingerprint(pyproject), *lines]) + "\n", encoding="utf-8"
    )


def main(argv: list[str]) -> int:
    pyproject, lock = ROOT / "pyproject.toml", ROOT / "requirements" / "app.lock"
    cmd = argv[1] if len(argv) > 1 else "check"
    if cmd == "check":
        found = problems(pyproject, lock)
        for p in found:
            print(f"lock check: {p}", file=sys.stderr)
        if not found:
            print(f"lock check: {lock.relative_to(ROOT)} agrees with pyproject.toml")
        return 1 if found else 0
    if cmd == "stamp":
        stamp(pyproject, lock)
        return 0
    if cmd in ("only", "without") and len(argv) == 3:
        want = canonical(argv[2])
        blocks = entries(sys.stdin.read())
        chosen = [lines for name, lines in blocks if (name == want) == (cmd == "only")]
        if cmd == "only" and not chosen:
            print(f"{argv[2]} is not in the lock", file=sys.stderr)
            return 1
        sys.stdout.write("".join(line + "\n" for lines in chosen for line in lines))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
