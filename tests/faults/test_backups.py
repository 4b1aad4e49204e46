"""Backups as a file format and as the way back (issue 15): encrypted (no plaintext byte),
sealed with the profile key and optionally a passphrase, restorable after a key rotation and
on a new machine, refused cleanly when tampered with; the high-water mark survives a torn
slot; a rotating set keeps the newest N."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from memos_desktop.config import Paths, Settings, resolve_paths
from memos_desktop.errors import KeyFileError, MemosError
from tests.faults.conftest import cli, link_model, ok, texts

CANARY = "Zorblax eats quinceberry marmalade"


def newest(folder: Path) -> Path:
    return sorted(folder.glob("*.memosbak"))[-1]


def test_a_backup_holds_no_plaintext_and_a_tampered_one_is_refused(
    pdir: Path, paths: Paths
) -> None:
    ok("add", CANARY)
    made = json.loads(ok("backup", "--json").out)
    path = Path(made["path"])
    raw = path.read_bytes()
    assert b"Zorblax" not in raw and b"quinceberry" not in raw
    assert b"SQLite format 3" not in raw
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert made["counts"]["memories"] == 1 and made["sealed_with"] == ["profile"]

    header_end = raw.index(b"}", 30) + 1
    for name, data in {
        "header changed": raw.replace(b'"memories": 1', b'"memories": 9', 1),
        "database byte flipped": raw[:-100] + bytes([raw[-100] ^ 1]) + raw[-99:],
        "cut short": raw[: header_end + 1000],
        "not a backup": b"hello" * 100,
    }.items():
        bad = path.with_name(f"bad-{name.replace(' ', '-')}.memosbak")
        bad.write_bytes(data)
        r = cli("restore", "--backup", str(bad), "--yes")
        assert r.code == 6, (name, r.text)
        assert "not a memos-desktop backup, or it is damaged" in r.err, name
        assert "nothing was changed" in r.err
    assert CANARY in texts(ok("list", "--json"))


def test_passphrase_sealed_backup_survives_rotation_and_a_new_machine(
    pdir: Path, paths: Paths, tmp_path: Path, converted_minilm: Path
) -> None:
    ok("add", CANARY)
    out = tmp_path / "usb"
    env = {"MEMOS_DESKTOP_BACKUP_PASSPHRASE": "a separate backup passphrase"}
    made = json.loads(ok("backup", "--to", str(out), "--passphrase", "--json", env=env).out)
    assert made["sealed_with"] == ["profile", "passphrase"]
    ok("add", "after the backup")
    ok("rotate-key")

    # the same machine: the profile key changed (and the backup is outside the profile's
    # backup folder, so rotation did not re-seal it): the passphrase seal opens it
    r = cli("restore", "--backup", made["path"], "--yes")
    assert r.code == 2 and f"set {'MEMOS_DESKTOP_BACKUP_PASSPHRASE'}" in r.err
    r = cli(
        "restore",
        "--backup",
        made["path"],
        "--yes",
        env={"MEMOS_DESKTOP_BACKUP_PASSPHRASE": "wrong"},
    )
    assert r.code == 5 and "wrong passphrase for the backup" in r.err
    ok("restore", "--backup", made["path"], "--yes", env=env)
    assert texts(ok("list", "--json")) == {CANARY}

    # a new machine: another home, a fresh profile, the backup file carried over
    other = tmp_path / "new-machine"
    link_model(resolve_paths({"MEMOS_DESKTOP_HOME": str(other)}), converted_minilm)
    new_env = dict(env, MEMOS_DESKTOP_HOME=str(other))
    ok("init", "--passphrase", env=new_env)
    r = cli("restore", "--backup", made["path"], "--yes", env=new_env)
    assert r.code == 0, r.text
    assert "made by another profile" in r.err
    assert texts(ok("list", "--json", env=new_env)) == {CANARY}
    ok("add", "on the new machine", env=new_env)


def test_rotation_reseals_the_profile_backups_and_keep_rotates_the_set(
    pdir: Path, paths: Paths
) -> None:
    ok("add", CANARY)
    folder = paths.data_dir / "backups" / "default"
    for _ in range(3):
        ok("backup", "--keep", "2")
    assert len(list(folder.glob("*.memosbak"))) == 2
    ok("rotate-key")
    # sealed with the profile key only, yet it opens with the new key: rotation re-sealed it
    r = cli("restore", "--backup", "latest", "--yes")
    assert r.code == 0, r.text
    assert texts(ok("list", "--json")) == {CANARY}
    listed = json.loads(ok("backup", "--list", "--json").out)
    assert len(listed) == 2 and all(b["counts"]["memories"] == 1 for b in listed)


def test_a_torn_or_damaged_mark_slot_falls_back_to_the_other(pdir: Path, paths: Paths) -> None:
    """The mark is two slots written in turn: damaging the newest one leaves the older one,
    which is at most one commit behind (never a false alarm); damaging both is refused."""
    ok("add", "one")
    ok("add", "two")
    mark = pdir / "memos.mark"
    raw = bytearray(mark.read_bytes())
    assert len(raw) == 256
    from memos_desktop.store import guard, keys
    from memos_desktop.store.profile import unlock_key

    key = unlock_key(paths, "default", None)
    pid = str(keys.read_keyfile(pdir / "key.json")["profile_id"])
    st = guard.read_mark(pdir, [guard.mark_key(key, pid)], pid)
    assert st.state == "ok" and st.mark is not None
    newest_slot = st.mark.generation % 2
    raw[newest_slot * 128 + 40] ^= 0xFF
    mark.write_bytes(bytes(raw))
    ok("list")  # the older slot is used; the open writes a fresh one
    raw = bytearray(mark.read_bytes())
    for slot in (0, 1):
        raw[slot * 128 + 40] ^= 0xFF
    mark.write_bytes(bytes(raw))
    r = cli("list")
    assert r.code == 6 and "high-water mark" in r.err and "does not verify" in r.err
    ok("restore", "--accept-loss", "--yes")
    assert texts(ok("list", "--json")) == {"one", "two"}


def test_restore_refuses_while_the_profile_is_open(pdir: Path, paths: Paths) -> None:
    ok("add", CANARY)
    ok("backup")
    from memos_desktop.store.profile import open_profile

    with open_profile(paths, "default", Settings()):
        r = cli("restore", "--backup", "latest", "--yes")
        assert r.code == 7 and "open in another memos-desktop process" in r.err
    ok("restore", "--backup", "latest", "--yes")


def test_backup_api_on_an_open_session_keeps_a_rotating_set(paths: Paths) -> None:
    """What the daemon does: backups of its open profile, the newest N kept."""
    from memos_desktop.api import open_api
    from tests.conftest import new_profile

    new_profile().close()
    api = open_api(paths, Settings(), embedder_factory=lambda: None)
    try:
        api.add(CANARY)
        for _ in range(4):
            made, _gone = api.backup(keep=3)
            assert made.counts["memories"] == 1
        assert len(list((paths.data_dir / "backups" / "default").glob("*.memosbak"))) == 3
        with pytest.raises(MemosError):
            api.backup(Path(os.devnull))  # not a folder
    finally:
        api.close()
    with pytest.raises(KeyFileError):
        from memos_desktop.store.backup import read_header

        read_header(Path(__file__))
