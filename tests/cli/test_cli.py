"""The CLI end to end through click, on a real encrypted profile and the real embedder."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from memos_desktop.cli import main

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, env=env, catch_exceptions=False)


def ok(*args: str, **kw) -> Result:
    r = run(*args, **kw)
    assert r.exit_code == 0, r.output + (r.stderr if r.stderr_bytes else "")
    return r


@pytest.fixture
def profile() -> None:
    ok("init")


def test_init_twice_is_a_clear_error(profile: None) -> None:
    r = run("init")
    assert r.exit_code == 9
    assert "already exists" in r.stderr


def test_memory_lifecycle_with_json(profile: None) -> None:
    r = ok(
        "add", "I am vegetarian and avoid fish", "--type", "preference", "--tag", "food", "--json"
    )
    first = json.loads(r.stdout)
    assert first["created"] and first["item"]["type"] == "preference"
    item_id = first["item"]["id"]
    again = json.loads(ok("add", "i am vegetarian and  avoid fish", "--json").stdout)
    assert not again["created"] and again["item"]["id"] == item_id
    ok("add", "My sister Lena lives in Lisbon", "--tag", "family")
    ok("add", "The quarterly report is due on Friday", "--type", "event")

    hits = json.loads(ok("search", "what food do I eat", "--json").stdout)
    assert hits["mode"] == "hybrid"
    assert hits["hits"][0]["item"]["id"] == item_id
    hits = json.loads(ok("search", "Lena", "--json", "--tag", "family").stdout)
    assert [h["item"]["text"] for h in hits["hits"]] == ["My sister Lena lives in Lisbon"]

    listed = json.loads(ok("list", "--type", "preference", "--json").stdout)
    assert [i["id"] for i in listed] == [item_id]
    assert "vegetarian" in ok("show", item_id[:8]).stdout

    ok("edit", item_id[:8], "--text", "I am vegan", "--reason", "diet change")
    versions = json.loads(ok("history", item_id, "--json").stdout)
    assert [v["text"] for v in versions] == ["I am vegetarian and avoid fish", "I am vegan"]
    assert versions[1]["reason"] == "diet change"
    hits = json.loads(ok("search", "vegan", "--json").stdout)
    assert hits["hits"][0]["item"]["id"] == item_id

    ok("forget", item_id)
    assert json.loads(ok("list", "--type", "preference", "--json").stdout) == []
    assert json.loads(ok("list", "--status", "deleted", "--json").stdout)[0]["id"] == item_id
    ok("restore", item_id)
    assert len(json.loads(ok("list", "--json").stdout)) == 3

    r = run("purge", item_id)  # no terminal, no --yes: refuse
    assert r.exit_code == 2 and "--yes" in r.output
    ok("purge", item_id, "--yes")
    r = run("show", item_id)
    assert r.exit_code == 4 and "no memory" in r.stderr


def test_wrong_passphrase_exit_code_and_message(profile: None) -> None:
    r = run("list", env={"MEMOS_DESKTOP_PASSPHRASE": "nope"})
    assert r.exit_code == 5
    assert "wrong passphrase" in r.stderr and "Traceback" not in r.output


def test_no_profile_says_how_to_create_one() -> None:
    r = run("list")
    assert r.exit_code == 4
    assert "memos-desktop init" in r.stderr


def test_invalid_config_exit_code(isolated_home: Path) -> None:
    cfg = isolated_home / "config" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text("[search]\nbogus = 1\n")
    r = run("list")
    assert r.exit_code == 3 and "search.bogus" in r.stderr and str(cfg) in r.stderr


def test_passphrase_change_and_rotate_key(profile: None) -> None:
    ok("add", "Omar drinks green tea")
    r = ok("passphrase", env={"MEMOS_DESKTOP_NEW_PASSPHRASE": "a brand new passphrase"})
    assert "changed" in r.stdout
    assert run("list").exit_code == 5  # the old passphrase no longer works
    env = {"MEMOS_DESKTOP_PASSPHRASE": "a brand new passphrase"}
    ok("rotate-key", env=env)
    assert "Omar" in ok("list", env=env).stdout


def test_doctor_reports_encryption_and_integrity(profile: None) -> None:
    ok("add", "Pia runs marathons")
    report = json.loads(ok("doctor", "--json").stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["encryption at rest"]["status"] == "ok"
    assert checks["integrity"]["detail"] == "ok"
    assert checks["keyring"]["status"] == "warn"  # the fail backend is refused, not used
    assert "sqlite3mc" in report["versions"] and "1 items" in checks["memories"]["detail"]
    import llama_cpp

    assert report["versions"]["llama-cpp-python"] == llama_cpp.__version__
    assert "AVX2" in report["engine"]["built_features"] or platform.machine() != "x86_64"
    assert checks["engine CPU"]["status"] == "ok"


def test_real_process_exit_code_and_stderr(profile: None) -> None:
    """Through a real process: stdout stays data, errors go to stderr with the code."""
    env = dict(os.environ, MEMOS_DESKTOP_PASSPHRASE="wrong")
    p = subprocess.run(
        [sys.executable, "-m", "memos_desktop.cli", "list", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 5 and p.stdout == "" and "wrong passphrase" in p.stderr


def test_init_without_a_flag_follows_the_keys_method_setting() -> None:
    """`[keys] method = "keyring"` makes a plain `init` ask for the keyring, as `--keyring`
    does: here (no real keyring) both refuse the same way, and nothing is created."""
    from memos_desktop.config import resolve_paths

    paths = resolve_paths()
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text('[keys]\nmethod = "keyring"\n')
    flagged, plain = run("init", "--keyring"), run("init")
    assert plain.exit_code == flagged.exit_code != 0
    assert plain.stderr == flagged.stderr and "keyring" in plain.stderr
    paths.config_file.write_text('[keys]\nmethod = "passphrase"\n')
    created = json.loads(ok("init", "--json").stdout)
    assert created["key"] == "passphrase"
