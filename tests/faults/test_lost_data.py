"""Rows 1-4 of issue 15's probe table, on real profiles through the real CLI: a damaged or
lost WAL, an emptied or deleted memos.db, and a damaged page are detected and refused (never
silent, never started over), the files are left as they were, and a backup brings back every
memory acknowledged before it was made."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memos_desktop.config import Paths, Settings
from tests.faults.conftest import Writer, cli, digests, list_all, ok, seed, texts

WAL_HEADER = 32
FRAME_HEADER = 24
# Each acknowledged `add` logs two change rows (the memory and its first version), and the
# high-water mark counts change rows.
CHANGES_PER_ADD = 2


def crash_with_wal(
    paths: Paths, n_saved: int = 6, n_in_wal: int = 12
) -> tuple[set[str], list[str]]:
    """Memories saved and checkpointed into memos.db, then a writer SIGKILLed after
    ``n_in_wal`` acknowledged commits that are only in memos.db-wal."""
    saved = {f"saved memory {i}" for i in range(n_saved)}
    ok("add", "saved by the CLI")
    seed(paths, sorted(saved))
    w = Writer("wal memory", n_in_wal)
    acked = w.read_acks(n_in_wal)
    w.kill()
    return saved, acked


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def damage_wal(pdir: Path, damage: str) -> None:
    wal = pdir / "memos.db-wal"
    assert wal.stat().st_size > WAL_HEADER
    if damage == "wal deleted":
        wal.unlink()
    else:
        offset = {"wal header": 0, "wal salt": 16, "wal frame 1": WAL_HEADER + FRAME_HEADER + 99}
        flip(wal, offset[damage])


@pytest.mark.parametrize("damage", ["wal header", "wal salt", "wal frame 1", "wal deleted"])
def test_wal_damage_or_loss_is_detected_and_refused(pdir: Path, paths: Paths, damage: str) -> None:
    _, acked = crash_with_wal(paths)
    damage_wal(pdir, damage)
    before = digests(pdir)

    r = list_all()
    assert r.code == 6 and r.out == ""
    missing = len(acked) * CHANGES_PER_ADD
    assert f"{missing} acknowledged changes are missing" in r.err
    assert "restore" in r.err and "nothing was changed" in r.err
    report = cli("doctor", "--json")
    assert report.code == 6
    checks = {c["name"]: c for c in json.loads(report.out)["checks"]}
    assert checks["high-water mark"]["status"] == "fail"
    assert f"{missing} acknowledged changes are missing" in checks["high-water mark"]["detail"]
    assert "restore" in checks["what to do"]["detail"]
    assert digests(pdir) == before  # refused, doctor included: not one byte changed


def test_after_a_lost_wal_writes_are_refused_until_the_loss_is_accepted(
    pdir: Path, paths: Paths
) -> None:
    saved, _ = crash_with_wal(paths)
    damage_wal(pdir, "wal header")
    r = cli("add", "a new memory")
    assert r.code == 6 and "missing" in r.err
    r = cli("restore", "--accept-loss", "--dry-run")
    assert (
        r.code == 0
        and "rolled back" in r.err
        and f"{12 * CHANGES_PER_ADD} recorded changes stay lost" in r.err
    )

    # The person accepts what is left (the checkpointed memories); the files are kept aside.
    ok("restore", "--accept-loss", "--yes")
    kept = next(pdir.glob("replaced-*"))
    assert {p.name for p in kept.iterdir()} == {"memos.db", "memos.db-wal"}
    assert texts(list_all()) == saved | {"saved by the CLI"}
    ok("add", "life goes on")
    assert cli("doctor").code == 0


def test_restore_brings_back_every_memory_acknowledged_before_an_online_backup(
    pdir: Path,
) -> None:
    """The backup is made while a writer is writing (another process, as the app would be);
    after the WAL is lost, restoring it brings back everything acknowledged before it."""
    for i in range(5):
        ok("add", f"early memory {i}")
    w = Writer("live memory", 400, delay=0.01)
    before_backup = set(w.read_acks(20))
    made = json.loads(ok("backup", "--json").out)
    w.read_acks(len(w.acked) + 10)  # the writer went on while the backup ran
    w.kill()
    (pdir / "memos.db-wal").unlink()
    assert list_all().code == 6

    r = cli("restore", "--backup", "latest", "--dry-run", "--json")
    assert r.code == 0
    plan = json.loads(r.out)
    assert plan["done"] is False and plan["plan"]["current"]["state"] == "rolled back"
    assert plan["plan"]["backup"]["counts"]["memories"] == made["counts"]["memories"]
    assert "Would be lost" in r.err and "made" in r.err
    assert cli("restore", "--backup", "latest").code == 2  # no terminal, no --yes: refused

    ok("restore", "--backup", "latest", "--yes")
    got = texts(list_all())
    assert {f"early memory {i}" for i in range(5)} | before_backup <= got
    assert len(got) == made["counts"]["memories"]
    ok("add", "written after the restore")
    assert cli("doctor").code == 0


def test_zero_byte_database_is_refused_and_left_alone(pdir: Path) -> None:
    ok("add", "Ada keeps bees")
    db = pdir / "memos.db"
    db.write_bytes(b"")
    before = digests(pdir)
    for args in (("list",), ("add", "x"), ("search", "bees")):
        r = cli(*args)
        assert r.code == 6, r.text
        assert "is empty (0 bytes" in r.err and "not replaced" in r.err
    r = cli("doctor")
    assert r.code == 6 and "empty (0 bytes)" in r.out and "what to do" in r.out
    assert db.stat().st_size == 0 and not (pdir / "memos.db-wal").exists()
    assert digests(pdir) == before


def test_deleted_database_is_refused_and_doctor_explains(pdir: Path) -> None:
    ok("add", "Ada keeps bees")
    (pdir / "memos.db").unlink()
    before = digests(pdir)
    r = cli("doctor")
    assert r.code == 6 and "is missing" in r.out and "FileNotFoundError" not in r.text
    r = cli("list")
    assert r.code == 6 and "is missing" in r.err and "had recorded" in r.err
    assert not (pdir / "memos.db").exists() and digests(pdir) == before


def leaf_pages(paths: Paths, table: str) -> list[int]:
    from memos_desktop.store.profile import open_profile

    with open_profile(paths, "default", Settings(), inspect=True) as s:
        rows = s.db.query(
            "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno",
            (table,),
        )
        size = int(s.db.scalar("PRAGMA page_size"))
    assert size == 4096
    return [int(r[0]) for r in rows]


def test_damaged_page_stops_writes_until_a_backup_is_restored(pdir: Path, paths: Paths) -> None:
    ok("add", "the first memory")  # through the CLI: the default cube is made
    import random

    rnd = random.Random(7)
    words = ["apple", "river", "stone", "cloud", "maple", "ember", "quartz", "violet"]
    # 150 memories fill several leaf pages of memory_items.
    seed(
        paths,
        [f"memory {i}: " + " ".join(rnd.choice(words) for _ in range(30)) for i in range(150)],
    )
    ok("backup")
    leaves = leaf_pages(paths, "memory_items")
    assert len(leaves) >= 3
    flip(pdir / "memos.db", (leaves[1] - 1) * 4096 + 2000)  # not the last page, which adds use

    r = cli("add", "written before anything read the damaged page")
    assert r.code == 0  # nothing has read the damaged page yet: not knowable
    r = list_all()
    assert r.code == 6 and "damaged" in r.err
    assert (pdir / "memos.damaged").exists()
    r = cli("add", "must not be written")
    assert r.code == 6 and "writes are stopped" in r.err and "doctor" in r.err
    r = cli("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(r.out)["checks"]}
    assert r.code == 6 and checks["integrity"]["status"] == "fail"
    assert checks["writes"]["status"] == "fail" and "stopped" in checks["writes"]["detail"]
    assert cli("restore", "--accept-loss", "--yes").code == 6  # damaged pages cannot be accepted

    ok("restore", "--backup", "latest", "--yes")
    got = texts(list_all())
    assert len(got) == 151 and not (pdir / "memos.damaged").exists()  # all the backup held
    ok("add", "writes work again")
    assert cli("doctor").code == 0
