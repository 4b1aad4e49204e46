"""Copy the terminal app's snapshot SVGs to docs/screenshots/ for the README.

Usage: .venv/bin/python bench/screenshots.py [--check]

The SVGs are the accepted snapshots of tests/tui/test_snapshots.py (120x36, seeded data, fixed
clock), so the README shows exactly what the snapshot tests check. After a deliberate UI change:
``pytest tests/tui/test_snapshots.py --snapshot-update``, look at them, then run this script.
``--check`` copies nothing and exits 1 when docs/screenshots/ is missing a file or is stale.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = ROOT / "tests" / "tui" / "__snapshots__" / "test_snapshots"
TARGET = ROOT / "docs" / "screenshots"

# snapshot test name -> screenshot name (in the README's order)
SCREENS = {
    "test_first_run": "first-run",
    "test_unlock_after_a_wrong_passphrase": "unlock",
    "test_chat": "chat",
    "test_conversations": "conversations",
    "test_memory_browser": "memories",
    "test_memory_detail": "memory-detail",
    "test_cubes": "cubes",
    "test_models": "models",
    "test_settings": "settings",
    "test_help": "help",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether they are current")
    args = parser.parse_args()
    missing = [t for t in SCREENS if not (SNAPSHOTS / f"{t}.svg").is_file()]
    if missing:
        print(
            f"missing snapshots: {', '.join(missing)}; run "
            "pytest tests/tui/test_snapshots.py --snapshot-update first",
            file=sys.stderr,
        )
        return 1
    stale = 0
    if not args.check:
        TARGET.mkdir(parents=True, exist_ok=True)
    for test, name in SCREENS.items():
        data = (SNAPSHOTS / f"{test}.svg").read_bytes()
        target = TARGET / f"{name}.svg"
        if target.is_file() and target.read_bytes() == data:
            continue
        stale += 1
        if args.check:
            print(f"stale: {target.relative_to(ROOT)}", file=sys.stderr)
        else:
            target.write_bytes(data)
            print(f"{target.relative_to(ROOT)}  ({len(data) // 1024} KiB)")
    if args.check:
        return 1 if stale else 0
    print(f"{stale} of {len(SCREENS)} screenshots written to {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
