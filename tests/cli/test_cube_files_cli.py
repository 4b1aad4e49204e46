"""`memos-desktop cubes export|import|identity` through real processes on two real profiles:
stdout is data, errors go to stderr with their exit code, the passphrase comes from the
environment and never from an argument."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import PASSPHRASE

ROOT = Path(__file__).resolve().parents[2]
CUBE_PW = "the cube file's own passphrase"


def cli(*args: str, profile: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "memos_desktop.cli", "--profile", profile, *args],
        cwd=ROOT,
        env={**os.environ, "MEMOS_DESKTOP_PASSPHRASE": PASSPHRASE, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def ok(*args: str, profile: str, **env: str) -> str:
    p = cli(*args, profile=profile, **env)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_export_import_round_trip_through_processes(tmp_path: Path) -> None:
    for name in ("a", "b"):
        ok("init", "--passphrase", profile=name)
    ok("add", "The spare key is under the blue flowerpot", profile="a")
    ok("add", "Maria's birthday is on the 3rd of March", profile="a")
    out = tmp_path / "personal.memcube"
    p = cli(
        "cubes", "export", "personal", str(out), "--passphrase", "--json",
        profile="a", MEMOS_DESKTOP_CUBE_PASSPHRASE=CUBE_PW,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["memories"] == 2 and out.is_file()
    assert b"flowerpot" not in out.read_bytes()

    # no passphrase and no terminal: a usage error that names the variable
    p = cli("cubes", "import", str(out), profile="b")
    assert p.returncode == 2 and "MEMOS_DESKTOP_CUBE_PASSPHRASE" in p.stderr
    p = cli("cubes", "import", str(out), profile="b", MEMOS_DESKTOP_CUBE_PASSPHRASE="nope")
    assert p.returncode == 9 and p.stdout == "" and "wrong passphrase" in p.stderr

    p = cli(
        "cubes", "import", str(out), "--name", "from-a", "--json",
        profile="b", MEMOS_DESKTOP_CUBE_PASSPHRASE=CUBE_PW,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    assert (report["added"], report["skipped"], report["trust"]) == (2, 0, "unknown")
    assert "not one of your trusted devices" in p.stderr
    hits = json.loads(
        ok("search", "where is the spare key", "--cube", "from-a", "--json", profile="b")
    )
    assert hits["hits"][0]["item"]["text"] == "The spare key is under the blue flowerpot"

    # recipient mode: a encrypts for b's identity; b merges it and finds nothing new
    ident = ok("cubes", "identity", profile="b").strip()
    assert ident.startswith("memos-device:1:")
    sent = tmp_path / "for-b.memcube"
    ok("cubes", "export", "personal", str(sent), "--to", ident, profile="a")
    a_ident = ok("cubes", "identity", profile="a").strip()
    merged = json.loads(
        ok(
            "cubes",
            "import",
            str(sent),
            "--into",
            "from-a",
            "--trust",
            a_ident,
            "--require-known",
            "--json",
            profile="b",
        )
    )
    assert (merged["added"], merged["skipped"], merged["trust"]) == (0, 2, "known")

    # a damaged file: exit 9, a message on stderr, nothing on stdout, nothing imported
    bad = tmp_path / "bad.memcube"
    data = bytearray(sent.read_bytes())
    data[len(data) // 2] ^= 0x10
    bad.write_bytes(bytes(data))
    p = cli("cubes", "import", str(bad), "--name", "bad", profile="b")
    assert p.returncode == 9 and p.stdout == "" and "integrity check" in p.stderr
    cubes = json.loads(ok("cubes", "list", "--json", profile="b"))
    assert "bad" not in {c["name"] for c in cubes}
