"""`correct`, `list` and `consolidate` through the CLI (issue 10): real encrypted profile, the
real embedder, chat turns told through the API with the packaged Gemma."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memos_desktop.api import MemosAPI
from memos_desktop.config import Settings, resolve_paths
from memos_desktop.engines.base import Embedder, SamplingParams
from memos_desktop.engines.llamacpp import LlamaCppEngine
from memos_desktop.store.profile import open_profile
from tests.cli.test_cli import ok, run
from tests.model_fixtures import GEMMA


@pytest.fixture
def profile() -> None:
    ok("init")


def tell(lines: list[str], embedder: Embedder, gemma_path: Path, sha_cache: Path) -> None:
    """Say ``lines`` in one chat with the packaged Gemma, then close the profile for the CLI."""
    store = open_profile(resolve_paths(), "default", Settings())
    api = MemosAPI(
        store,
        embedder,
        engine_factory=lambda: LlamaCppEngine(gemma_path, GEMMA, sha_cache_file=sha_cache),
    )
    conv = None
    try:
        for line in lines:
            turn = api.chat(line, conv, sampling=SamplingParams.greedy(max_tokens=8))
            "".join(turn)
            conv = turn.conversation_id
    finally:
        api.close()


def listed(*args: str) -> list[str]:
    return sorted(i["text"] for i in json.loads(ok("list", "--json", *args).stdout))


def test_readme_correction_finds_where_the_person_lives(
    profile: None, embedder: Embedder, gemma_path: Path, sha_cache: Path
) -> None:
    tell(["I live in Porto.", "Where do I live?", "I'm vegan."], embedder, gemma_path, sha_cache)
    assert listed() == ["I am vegan", "I live in Porto"]  # the question is no memory
    assert listed("--type", "episode") == [
        "User: I live in Porto.",
        "User: I'm vegan.",
        "User: Where do I live?",
    ]
    r = ok("correct", "I moved to Berlin in May")
    assert "it replaces" in r.stdout and r.stdout.rstrip().endswith(": I live in Porto")
    assert listed() == ["I am vegan", "I moved to Berlin in May"]
    r = ok("correct", "I moved to Braga in May", "--json")
    out = json.loads(r.stdout)
    assert out["superseded"]["text"] == "I moved to Berlin in May"
    assert "User: Where do I live?" in listed("--type", "episode")  # never superseded


def test_correcting_a_compound_memory_keeps_the_name(profile: None) -> None:
    ok("add", "My name is Dana and I live in Porto.")
    r = ok("correct", "I live in Berlin now, not Porto")
    assert "My name is Dana and I live in Porto." in r.stdout
    assert listed() == ["I live in Berlin now", "My name is Dana"]
    archived = listed("--status", "archived")
    assert archived == ["My name is Dana and I live in Porto."]


def test_an_ambiguous_correction_lists_the_candidates_and_exits_10(profile: None) -> None:
    ana = json.loads(ok("add", "My sister Ana is a nurse", "--json").stdout)["item"]["id"]
    ok("add", "My sister Eva is a lawyer")
    r = run("correct", "My sister is a teacher now")
    assert r.exit_code == 10
    assert "My sister Ana is a nurse" in r.stderr and "My sister Eva is a lawyer" in r.stderr
    assert "--target" in r.stderr and r.stdout == ""
    assert listed() == ["My sister Ana is a nurse", "My sister Eva is a lawyer"]  # unchanged
    r = run("correct", "My sister is a teacher now", "--json")
    assert r.exit_code == 10 and len(json.loads(r.stdout)["candidates"]) == 2
    ok("correct", "My sister is a teacher now", "--target", ana[:8])
    assert listed() == ["My sister Eva is a lawyer", "My sister is a teacher now"]
    ok("correct", "I love tea", "--none")
    assert "I love tea" in listed()


def test_consolidate_says_when_the_model_failed(
    profile: None, embedder: Embedder, gemma_path: Path, sha_cache: Path, isolated_home: Path
) -> None:
    tell(["I started a new job at the bakery on Monday."], embedder, gemma_path, sha_cache)
    cfg = isolated_home / "config" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(f'[models]\nchat = "{gemma_path}"\n')
    r = ok("consolidate")
    # The packaged model is a base model: it is not asked to extract, and the report says so
    # (it once failed three times and said "0 failed").
    assert "model extraction skipped for 1 of them" in r.stdout, r.stdout
    assert "base (completion) model" in r.stdout and "0 memories added" in r.stdout
    report = json.loads(ok("consolidate", "--json").stdout)
    assert report["done"] == 0  # nothing left to run
    assert listed() == ["I started a new job at the bakery on Monday"]
