"""A process started when the fault tests are collected, before any test opens a profile in
the pytest process (which then turns core files off for itself and, through the hard limit,
for every child it starts). It keeps the machine's own core-file limits and starts the crash
test's children on request, so that test means the same in any order.

Protocol: one JSON line in ({"argv", "cwd", "env"}), one JSON line out ({"returncode"})."""

from __future__ import annotations

import json
import subprocess
import sys


def main() -> None:
    for line in sys.stdin:
        req = json.loads(line)
        p = subprocess.run(
            req["argv"], cwd=req["cwd"], env=req["env"], capture_output=True, timeout=300
        )
        out = {"returncode": p.returncode, "stderr": p.stderr.decode("utf-8", "replace")}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
