"""Cube files: export and import time, file size and peak RSS at 1k, 10k and 100k memories.

Each export and each import runs in its own child process (so its peak RSS is its own: Python,
numpy, the encrypted database with its 256 MiB page cache, the stream), on a real passphrase
profile with 384-dim synthetic vectors (bench/store.py's data: LoCoMo turns as text). The file
is sealed for a passphrase (one scrypt each way). Import = verify the whole file, then apply it
in one transaction (new cube; the vectors are kept, nothing is re-embedded).

    python bench/sync.py [--sizes 1000,10000,100000] [--no-write]

Target (issue 11): 100k memories export + import in under 60 s on 2 cores, peak RSS < 500 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import git_rev, machine, write_section

FILE_PW = "bench cube passphrase"
PROFILE_PW = "bench"


def _env(home: str) -> None:
    os.environ["MEMOS_DESKTOP_HOME"] = home
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(args: argparse.Namespace) -> None:
    _env(args.home)
    from memos_desktop.config import Settings, resolve_paths
    from memos_desktop.store.profile import create_profile, open_profile
    from memos_desktop.sync.cube_export import export_cube
    from memos_desktop.sync.cube_import import import_cube
    from memos_desktop.sync.cubefile import Opening, Sealing

    paths = resolve_paths()
    if args.child == "export":
        store = open_profile(paths, "bench", Settings(), passphrase_provider=lambda _p: PROFILE_PW)
        t0 = time.perf_counter()
        r = export_cube(store, store.cubes.list()[0], Path(args.file), Sealing(passphrase=FILE_PW))
        out = {"seconds": time.perf_counter() - t0, "memories": r.memories, "bytes": r.bytes}
    else:
        store = create_profile(
            paths,
            "bench",
            Settings(),
            method="passphrase",
            passphrase=PROFILE_PW,
            embed_model="synthetic-384",
            embed_dim=384,
        )
        t0 = time.perf_counter()
        i = import_cube(
            store,
            Path(args.file),
            Opening(passphrase=FILE_PW),
            owner=store.users.list()[0],
            embed_model="synthetic-384",
            embed_dim=384,
            name="imported",
        )
        out = {"seconds": time.perf_counter() - t0, "memories": i.added, "kept": i.vectors_kept}
    store.close()
    out["peak_mib"] = _peak_mib()
    print(json.dumps(out))


def run_child(what: str, home: str, file: Path) -> dict[str, float]:
    p = subprocess.run(
        [sys.executable, __file__, "--child", what, "--home", home, "--file", str(file)],
        capture_output=True,
        text=True,
        check=False,
    )
    if p.returncode != 0:
        raise SystemExit(f"{what} failed:\n{p.stderr}")
    return dict(json.loads(p.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--child", choices=["export", "import"])
    ap.add_argument("--home")
    ap.add_argument("--file")
    args = ap.parse_args()
    if args.child:
        child(args)
        return

    from bench.store import Data, bench_store

    sizes = [int(s) for s in args.sizes.split(",")]
    store = bench_store()  # sets MEMOS_DESKTOP_HOME to a fresh temporary home
    src_home = os.environ["MEMOS_DESKTOP_HOME"]
    cube = store.cubes.list()[0]
    data = Data()
    have = 0
    rows = []
    work = Path(tempfile.mkdtemp(prefix="memos-cube-bench-"))
    for size in sizes:
        while have < size:
            n = min(5000, size - have)
            items, vecs = data.batch(have, n)
            store.memories.add_many(cube, items, vecs, dedupe=False)
            have += n
        store.db.checkpoint()
        store.close()  # the child opens the profile itself
        file = work / f"cube-{size}.memcube"
        exp = run_child("export", src_home, file)
        imp = run_child("import", tempfile.mkdtemp(prefix="memos-cube-import-"), file)
        assert exp["memories"] == size and imp["memories"] == size and imp["kept"] == size
        rows.append((size, exp, imp))
        print(
            f"{size:>7} memories: export {exp['seconds']:.2f} s ({exp['peak_mib']:.0f} MiB), "
            f"import {imp['seconds']:.2f} s ({imp['peak_mib']:.0f} MiB), "
            f"file {exp['bytes'] / 1e6:.1f} MB",
            flush=True,
        )
        file.unlink()
        from memos_desktop.config import Settings, resolve_paths
        from memos_desktop.store.profile import open_profile

        _env(src_home)
        store = open_profile(
            resolve_paths(), "bench", Settings(), passphrase_provider=lambda _p: PROFILE_PW
        )
        cube = store.cubes.list()[0]
    store.close()

    lines = [
        "## Cube files (issue 11): export and import",
        "",
        f"`python bench/sync.py --sizes {args.sizes}` on {machine()}, commit {git_rev()}. "
        "Each export and import is its own process (peak RSS is that process's, page cache "
        "included); passphrase-sealed files, 384-dim vectors kept on import (same model), "
        "import = verify the whole file, then apply it in one transaction.",
        "",
        "| memories | export s | export peak RSS MiB | import s | import peak RSS MiB "
        "| export + import s | file MB | bytes / memory |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size, exp, imp in rows:
        lines.append(
            f"| {size} | {exp['seconds']:.2f} | {exp['peak_mib']:.0f} | {imp['seconds']:.2f} | "
            f"{imp['peak_mib']:.0f} | {exp['seconds'] + imp['seconds']:.1f} | "
            f"{exp['bytes'] / 1e6:.1f} | {exp['bytes'] / size:.0f} |"
        )
    big = [r for r in rows if r[0] == 100_000]
    if big:
        _, exp, imp = big[0]
        total = exp["seconds"] + imp["seconds"]
        peak = max(exp["peak_mib"], imp["peak_mib"])
        lines += [
            "",
            f"Target at 100k: export + import < 60 s ({'met' if total < 60 else 'missed'}: "
            f"{total:.1f} s), peak RSS < 500 MB ({'met' if peak * 1.048576 < 500 else 'missed'}: "
            f"{peak * 1.048576:.0f} MB).",
        ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("cube-files", body)


if __name__ == "__main__":
    main()
