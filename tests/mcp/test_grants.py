"""Grants and the audit log from the person's side: `mcp grant / revoke / grants / log`, the
`[mcp.clients]` config table and its errors, the policy on a real open profile, and what the
log leaves on disk (nothing readable)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from memos_desktop.api import McpService, MemosAPI, open_api
from memos_desktop.cli import main
from memos_desktop.config import (
    McpClientSettings,
    Paths,
    Settings,
    load_settings,
    resolve_paths,
)
from memos_desktop.errors import ConfigError, NotGrantedError

APP = "editor"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def ok(*args: str) -> Result:
    r = run(*args)
    assert r.exit_code == 0, r.output + (r.stderr if r.stderr_bytes else "")
    return r


def grants(*args: str) -> list[tuple[str, str, str, str]]:
    rows = json.loads(ok("mcp", "grants", "--json", *args).stdout)
    return [(g["client"], g["cube"], g["access"], g["source"]) for g in rows]


def write_config(text: str) -> Path:
    p = resolve_paths().config_file
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


@pytest.fixture
def profile(paths: Paths) -> None:
    """A passphrase profile (in-process `init`), the embedding model linked in."""
    ok("init", "--passphrase")


@pytest.fixture
def api(profile: None) -> Iterator[MemosAPI]:
    a = open_api(resolve_paths(), Settings(), embedder_factory=lambda: None)
    yield a
    a.close()


def test_grant_narrow_revoke_and_list(profile: None) -> None:
    ok("cubes", "create", "work")
    r = ok("mcp", "grant", APP, "--cube", "work", "--write")
    assert "may now read and change work" in r.stdout
    ok("mcp", "grant", APP, "--all-cubes", "--read")
    assert grants() == [(APP, "*", "read", "grant"), (APP, "work", "write", "grant")]
    ok("mcp", "grant", APP, "--cube", "work", "--read")  # narrows, no second row
    assert grants("--client", APP) == [(APP, "*", "read", "grant"), (APP, "work", "read", "grant")]
    assert "Removed 1 grant " in ok("mcp", "revoke", APP, "--cube", "*").stdout
    assert "Removed 1 grant " in ok("mcp", "revoke", APP).stdout
    assert grants() == []
    assert "no MCP client has a grant" in run("mcp", "grants").stderr


def test_bad_grants_are_refused_and_change_nothing(profile: None) -> None:
    r = run("mcp", "grant", APP, "--cube", "nope", "--read")
    assert r.exit_code == 4 and "no cube 'nope'" in r.stderr
    r = run("mcp", "grant", APP, "--cube", "personal")
    assert r.exit_code == 2 and "--read" in r.output and "--write" in r.output
    r = run("mcp", "grant", "not a name", "--cube", "personal", "--read")
    assert r.exit_code == 9 and "not a client name" in r.stderr
    r = run("mcp", "grant", APP, "--read")
    assert r.exit_code == 9 and "--cube NAME" in r.stderr
    assert grants() == []


def test_config_grants_count_and_revoke_says_they_stay(profile: None) -> None:
    write_config('[mcp.clients.editor]\nread = ["personal"]\nwrite = ["work"]\n')
    ok("mcp", "grant", APP, "--cube", "personal", "--write")
    assert grants() == [
        (APP, "personal", "write", "grant"),
        (APP, "personal", "read", "config"),
        (APP, "work", "write", "config"),
    ]
    assert "(no such cube)" in ok("mcp", "grants").stdout  # "work" is not made yet
    r = ok("mcp", "revoke", APP)
    assert "config.toml still grants 'editor' read on personal, write on work" in r.stderr


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('[mcp.clients."bad name"]\nread = ["personal"]\n', "is not a client name"),
        ('[mcp.clients.editor]\nread = "personal"\n', "'mcp.clients.editor.read' must be a list"),
        ("[mcp.clients.editor]\nwrite = [1]\n", "'mcp.clients.editor.write' must be a list"),
        ("[mcp.clients.editor]\nadmin = true\n", "unknown key 'mcp.clients.editor.admin'"),
        ("[mcp]\nclients = 3\n", "'mcp.clients' must be a table"),
        ("[mcp]\nhttp_port = 80\n", "'mcp.http_port' must be between 1024 and 65535"),
        ("[mcp]\nhost = '0.0.0.0'\n", "unknown key 'mcp.host'"),
    ],
)
def test_bad_mcp_config_names_the_key(isolated_home: Path, text: str, match: str) -> None:
    path = write_config(text)
    with pytest.raises(ConfigError, match=match) as ei:
        load_settings(resolve_paths())
    assert str(path) in str(ei.value)
    r = run("mcp", "grants")
    assert r.exit_code == 3 and str(path) in r.stderr


def test_the_config_round_trips(isolated_home: Path) -> None:
    from memos_desktop.config import save_settings

    write_config('[mcp]\nhttp_port = 9000\n[mcp.clients.editor]\nread = ["*"]\n')
    s = load_settings(resolve_paths())
    assert s.mcp.http_port == 9000
    assert s.mcp.clients == {"editor": McpClientSettings(read=("*",))}
    save_settings(resolve_paths(), s)
    assert load_settings(resolve_paths()) == s


def test_policy_the_wider_grant_counts_and_the_default_cube(api: MemosAPI) -> None:
    api.add("Mira plays the cello")
    work = api.create_cube("work")
    api.add("The launch is on Friday", cube=work.id)
    cfg = {APP: McpClientSettings(read=("work",))}
    svc = McpService(api, APP, cfg)
    # One cube granted: calls without a cube go to it.
    assert [h["text"] for h in svc.search("launch Friday")["hits"]] == ["The launch is on Friday"]
    with pytest.raises(NotGrantedError, match="may not change memories in cube 'work'"):
        svc.remember("The launch moved to Monday")
    with pytest.raises(NotGrantedError, match="may not read memories in cube 'personal'"):
        svc.search("cello", cube="personal")
    from memos_desktop.api import grant_mcp_client

    grant_mcp_client(api, APP, ["work"], "write")  # wider than the config's read
    assert svc.remember("The launch moved to Monday")["created"]
    assert [c["name"] for c in svc.list_cubes()["cubes"]] == ["work"]
    assert api.count(cube=work.id) == 2


def test_the_audit_log_is_only_inside_the_encrypted_database(
    api: MemosAPI, isolated_home: Path
) -> None:
    from memos_desktop.api import grant_mcp_client, mcp_audit_log

    grant_mcp_client(api, APP, ["personal"], "write")
    svc = McpService(api, APP, {})
    svc.remember("Quokka-zebra 4711 is my locker code")
    svc.search("quokka-zebra locker")
    with pytest.raises(NotGrantedError):
        McpService(api, "other", {}).search("quokka-zebra where")
    log = mcp_audit_log(api)
    assert [(e["client"], e["tool"], e["outcome"]) for e in log] == [
        ("other", "search_memories", "refused"),
        (APP, "search_memories", "ok"),
        (APP, "remember", "ok"),
    ]
    api.close()
    files = [p for p in isolated_home.rglob("*") if p.is_file()]
    assert any(p.name == "memos.db" for p in files)
    for p in files:
        assert b"uokka" not in p.read_bytes(), p  # not in the DB, its WAL, the logs


def test_a_v5_profile_upgrades_to_v8_and_keeps_its_memories(isolated_home: Path) -> None:
    """A profile from before the MCP tables (schema v5) gets them at its next open."""
    from memos_desktop.store import keys
    from memos_desktop.store.db import Database
    from memos_desktop.store.migrations import current_version, migrate
    from memos_desktop.store.profile import open_profile
    from tests.conftest import PASSPHRASE, new_profile

    store = new_profile()
    path = store.db.path
    key = keys.unwrap_key(keys.read_keyfile(store.dir / "key.json"), PASSPHRASE)
    meta = store.db.query("SELECT key, value FROM meta")
    store.close()
    for name in ("memos.db", "memos.db-wal", "memos.db-shm", "memos.mark"):
        (path.parent / name).unlink(missing_ok=True)
    old = Database(path, key, create=True)
    migrate(old, target=5)
    now = time.time()
    with old.write() as c:
        c.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta)
        c.execute("INSERT INTO users (id, name, created_at) VALUES ('u1', 'me', ?)", (now,))
        c.execute(
            "INSERT INTO cubes (id, name, owner_id, embed_model, embed_dim, created_at, "
            "updated_at) VALUES ('c1', 'personal', 'u1', 'test-embed', 384, ?, ?)",
            (now, now),
        )
        c.execute(
            "INSERT INTO memory_items (id, cube_id, text, type, layer, status, created_at, "
            "updated_at, content_hash) VALUES ('i1', 'c1', 'Ivan collects stamps', 'fact', "
            "'long_term', 'active', ?, ?, 'h')",
            (now, now),
        )
    assert current_version(old) == 5
    old.close()
    with open_profile(resolve_paths(), "default", Settings()) as s:
        assert current_version(s.db) == 8
        names = {r[0] for r in s.db.query("SELECT name FROM sqlite_master")}
        assert {"mcp_grants", "mcp_audit", "mcp_audit_client"} <= names
        assert s.memories.get("i1").text == "Ivan collects stamps"
    a = open_api(resolve_paths(), Settings(), embedder_factory=lambda: None)
    try:
        from memos_desktop.api import grant_mcp_client

        grant_mcp_client(a, APP, ["personal"], "read")
        assert McpService(a, APP, {}).search("stamps")["hits"]
    finally:
        a.close()


def test_a_huge_argument_is_refused_and_cut_in_the_log(api: MemosAPI) -> None:
    from memos_desktop.api import grant_mcp_client, mcp_audit_log
    from memos_desktop.errors import InvalidInputError

    grant_mcp_client(api, APP, ["personal"], "write")
    with pytest.raises(InvalidInputError, match="keep it under 4000"):
        McpService(api, APP, {}).remember("x" * 1_000_000)
    (entry,) = mcp_audit_log(api)
    assert entry["outcome"] == "error" and "InvalidInputError" in entry["detail"]
    assert entry["args"]["text"].endswith("... (1000000 characters)")
    assert len(entry["args"]["text"]) < 300
    assert api.count() == 0


def test_the_person_can_clear_the_log(profile: None) -> None:
    from memos_desktop.api import grant_mcp_client

    a = open_api(resolve_paths(), Settings(), embedder_factory=lambda: None)
    try:
        grant_mcp_client(a, APP, ["personal"], "read")
        for q in ("tea", "cello", "chess"):
            McpService(a, APP, {}).search(q)
    finally:
        a.close()
    assert len(json.loads(ok("mcp", "log", "--json").stdout)) == 3
    r = run("mcp", "log", "--clear")  # no terminal, no --yes: refused, nothing deleted
    assert r.exit_code == 2 and "--yes" in r.output
    assert run("mcp", "log", "--before", "2000-01-01").exit_code == 2
    assert "Deleted 0 " in ok("mcp", "log", "--clear", "--before", "2000-01-01", "--yes").stdout
    assert len(json.loads(ok("mcp", "log", "--json").stdout)) == 3
    assert "Deleted 3 " in ok("mcp", "log", "--clear", "--yes").stdout
    assert json.loads(ok("mcp", "log", "--json").stdout) == []


def test_a_refusal_on_a_new_profile_makes_no_cube(api: MemosAPI) -> None:
    with pytest.raises(NotGrantedError, match="cube 'personal'"):
        McpService(api, APP, {}).search("anything")
    assert api.list_cubes() == []
