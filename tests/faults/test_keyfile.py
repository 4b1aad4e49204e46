"""Untrusted key files (issue 15, rows 5-6 of the probe table): KDF parameters out of bounds
are refused before any work, every field is checked, the messages name the real cause, and
hundreds of mutated key.json files are each refused cleanly with nothing written."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from memos_desktop.config import Paths, Settings
from memos_desktop.errors import KeyFileError, MemosError
from tests.faults.conftest import cli, digests, ok
from tests.faults.keyfile_mutator import mutants

FUZZ_FILES = 300
# Not a benchmark (bench/keyfile_fuzz.py measures): only a guard against a hang.
HANG_GUARD_S = 10.0


def rewrite(kf: Path, **kdf: int) -> None:
    rec = json.loads(kf.read_text())
    rec["kdf"].update(kdf)
    kf.write_text(json.dumps(rec))


def test_kdf_parameters_out_of_bounds_are_refused_at_once(pdir: Path) -> None:
    kf = pdir / "key.json"
    original = kf.read_text()
    for field, value in (("n", 2**30), ("p", 100000), ("r", 10**6)):
        rewrite(kf, **{field: value})
        before = digests(pdir)
        t0 = time.monotonic()
        r = cli("list")
        took = time.monotonic() - t0
        assert r.code == 6, r.text
        assert f"kdf.{field} = {value} is outside the accepted range" in r.err
        assert "key.json" in r.err and "keyring" not in r.err
        assert took < 60  # a hang guard (the unbounded n took > 30 s and failed with 2^30)
        assert digests(pdir) == before
        kf.write_text(original)
    ok("list")


def test_changed_key_check_on_a_passphrase_profile_names_the_key_file(pdir: Path) -> None:
    kf = pdir / "key.json"
    rec = json.loads(kf.read_text())
    rec["key_check"] = "0" * 32
    kf.write_text(json.dumps(rec))
    before = digests(pdir)
    r = cli("list")
    assert r.code == 6
    assert "key check does not match" in r.err and "key.json" in r.err
    assert "the passphrase is right" in r.err and "keyring" not in r.err
    assert digests(pdir) == before


def snapshot(pdir: Path) -> dict[str, tuple[int, str]]:
    """Every file of the profile folder but key.json: size and sha256."""
    return {
        p.name: (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(pdir.iterdir())
        if p.name != "key.json"
    }


def test_fuzzed_key_files_are_refused_cleanly_and_nothing_is_written(paths: Paths) -> None:
    from memos_desktop.api import open_api
    from tests.conftest import new_profile

    new_profile().close()
    pdir = paths.profile_dir("default")
    kf = pdir / "key.json"
    original = kf.read_bytes()
    before = snapshot(pdir)
    outcomes: dict[str, int] = {}
    slowest = (0.0, "")
    for label, data in mutants(original, FUZZ_FILES):
        kf.write_bytes(data)
        t0 = time.perf_counter()
        try:
            api = open_api(paths, Settings(), embedder_factory=lambda: None)
        except MemosError as exc:
            name = type(exc).__name__
            assert exc.exit_code in (5, 6), (label, exc)
            assert exc.message and exc.hint, (label, exc)
            if isinstance(exc, KeyFileError):
                assert "key.json" in str(exc) or "key file" in str(exc), (label, exc)
        else:
            api.close()
            name = "accepted"
            # Only a file that says the same thing opens (whitespace, field order).
            assert json.loads(data) == json.loads(original), label
        took = time.perf_counter() - t0
        slowest = max(slowest, (took, label))
        assert took < HANG_GUARD_S, (label, took)
        outcomes[name] = outcomes.get(name, 0) + 1
        assert kf.read_bytes() == data, label  # the key file itself is not rewritten
        assert snapshot(pdir) == before, label  # nor anything else
    kf.write_bytes(original)
    print(f"outcomes: {outcomes}; slowest {slowest[0]:.3f} s ({slowest[1]})")
    assert sum(outcomes.values()) == FUZZ_FILES
    assert outcomes.get("KeyFileError", 0) > FUZZ_FILES // 2
    api = open_api(paths, Settings(), embedder_factory=lambda: None)
    try:
        assert api.count() == 0
    finally:
        api.close()
