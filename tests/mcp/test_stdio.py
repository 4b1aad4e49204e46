"""`memos-desktop mcp` over stdio, as a host app starts it, driven by the SDK's own client:
the tools, a write refused without a grant, a read-only grant, the audit log of each call,
and the key when there is no terminal."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from mcp import Client
from mcp.client.stdio import stdio_client

from memos_desktop.config import Paths
from tests.mcp.conftest import (
    CLIENT,
    ROOT,
    audit,
    cli,
    error_text,
    ok,
    result_json,
    server_env,
    server_params,
    stdio_session,
)

TOOLS = {
    "search_memories",
    "remember",
    "correct_memory",
    "forget_memory",
    "get_memory",
    "list_cubes",
}


def memories() -> list[dict[str, object]]:
    return json.loads(ok("list", "--json", "--status", "active", "--status", "deleted").out)


async def test_a_write_grant_lists_adds_searches_gets_and_every_call_is_audited(
    profile: Paths,
) -> None:
    ok("mcp", "grant", CLIENT, "--cube", "personal", "--write")
    async with stdio_session() as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
        assert set(tools) == TOOLS
        assert tools["search_memories"].annotations.read_only_hint is True
        assert tools["forget_memory"].annotations.destructive_hint is True

        added = result_json(
            await c.call_tool(
                "remember", {"text": "I am allergic to peanuts", "type": "preference"}
            )
        )
        assert added["created"] and added["memory"]["cube"] == "personal"
        item_id = added["memory"]["id"]
        result_json(await c.call_tool("remember", {"text": "My sister Lena lives in Lisbon"}))

        found = result_json(await c.call_tool("search_memories", {"query": "peanut allergy"}))
        assert found["mode"] == "hybrid"
        assert found["hits"][0]["id"] == item_id

        profile_md = (await c.read_resource("memos://profile")).contents[0].text
        assert "## Preferences\n- I am allergic to peanuts" in profile_md
        assert "Lena" not in profile_md  # a plain fact is no preference

        cubes = result_json(await c.call_tool("list_cubes", {}))["cubes"]
        assert [(x["name"], x["access"], x["memories"]) for x in cubes] == [
            ("personal", "write", 2)
        ]

        fixed = result_json(
            await c.call_tool(
                "correct_memory", {"text": "I am allergic to cashews", "target": item_id}
            )
        )
        assert fixed["replaced"]["id"] == item_id
        got = result_json(await c.call_tool("get_memory", {"id": item_id}))
        assert got["memory"]["status"] != "active"
        assert got["history"][0]["text"] == "I am allergic to peanuts"

        profile_md = (await c.read_resource("memos://cubes/personal/profile")).contents[0].text
        assert "peanuts" not in profile_md  # superseded: no longer the person's profile

        gone = result_json(await c.call_tool("forget_memory", {"id": fixed["memory"]["id"]}))
        assert gone["forgotten"]["status"] == "deleted"

    # The person sees each call, in order, in the profile's own log.
    log = audit(CLIENT)
    assert [(e["tool"], e["outcome"]) for e in log] == [
        ("remember", "ok"),
        ("remember", "ok"),
        ("search_memories", "ok"),
        ("core_profile", "ok"),
        ("list_cubes", "ok"),
        ("correct_memory", "ok"),
        ("get_memory", "ok"),
        ("core_profile", "ok"),
        ("forget_memory", "ok"),
    ]
    assert log[0]["args"]["text"] == "I am allergic to peanuts"
    assert log[2]["args"]["query"] == "peanut allergy"
    assert log[2]["detail"] == f"{len(found['hits'])} hit(s)"
    assert {e["cube"] for e in log if e["tool"] != "list_cubes"} == {"personal"}
    assert all(e["transport"] == "stdio" and e["finished_at"] for e in log)
    # The memory the app added says where it came from.
    shown = json.loads(ok("show", item_id, "--json").out)
    assert shown["source"] == "mcp" and shown["sources"] == [{"kind": "mcp", "ref": CLIENT}]


async def test_a_write_without_a_grant_is_refused_and_changes_nothing(profile: Paths) -> None:
    async with stdio_session() as c:
        assert {t.name for t in (await c.list_tools()).tools} == TOOLS
        msg = error_text(await c.call_tool("remember", {"text": "I live in Porto"}))
        assert f"'{CLIENT}' may not change memories in cube 'personal'" in msg
        assert f"memos-desktop mcp grant {CLIENT} --cube personal --write" in msg
        msg = error_text(await c.call_tool("search_memories", {"query": "Porto"}))
        assert "may not read" in msg
        assert "no grant on any cube" in error_text(await c.call_tool("list_cubes", {}))
        # A cube that does not exist looks like one that is not granted.
        msg = error_text(await c.call_tool("search_memories", {"query": "x", "cube": "work"}))
        assert "may not read memories in cube 'work'" in msg
    assert memories() == []
    log = audit()
    assert [(e["client"], e["tool"], e["outcome"]) for e in log] == [
        (CLIENT, "remember", "refused"),
        (CLIENT, "search_memories", "refused"),
        (CLIENT, "list_cubes", "refused"),
        (CLIENT, "search_memories", "refused"),
    ]
    assert log[0]["detail"] == "no write grant on cube 'personal'"
    assert log[0]["args"]["text"] == "I live in Porto"


async def test_a_read_only_grant_searches_but_cannot_forget_add_or_correct(
    profile: Paths,
) -> None:
    r = ok("add", "Omar drinks green tea", "--json")
    item_id = json.loads(r.out)["item"]["id"]
    ok("mcp", "grant", CLIENT, "--cube", "personal", "--read")
    async with stdio_session() as c:
        hits = result_json(await c.call_tool("search_memories", {"query": "green tea"}))["hits"]
        assert [h["id"] for h in hits] == [item_id]
        assert result_json(await c.call_tool("get_memory", {"id": item_id}))["history"]
        msg = error_text(await c.call_tool("forget_memory", {"id": item_id}))
        assert "may not change memories in cube 'personal'" in msg and "--write" in msg
        error_text(await c.call_tool("remember", {"text": "Omar drinks coffee"}))
        error_text(await c.call_tool("correct_memory", {"text": "Omar drinks coffee now"}))
        # A short prefix is no id here: prefixes must not probe what the app cannot see.
        assert "no memory" in error_text(await c.call_tool("get_memory", {"id": item_id[:8]}))
    assert [(m["text"], m["status"]) for m in memories()] == [("Omar drinks green tea", "active")]
    assert [(e["tool"], e["outcome"]) for e in audit()] == [
        ("search_memories", "ok"),
        ("get_memory", "ok"),
        ("forget_memory", "refused"),
        ("remember", "refused"),
        ("correct_memory", "refused"),
        ("get_memory", "error"),
    ]


async def test_a_memory_in_a_cube_not_granted_is_not_found_to_the_app(profile: Paths) -> None:
    ok("add", "I like green tea")  # makes the personal cube
    ok("cubes", "create", "work")
    secret = json.loads(ok("add", "The merger is planned for June", "--cube", "work", "--json").out)
    ok("mcp", "grant", CLIENT, "--cube", "personal", "--write")
    async with stdio_session() as c:
        msg = error_text(await c.call_tool("get_memory", {"id": secret["item"]["id"]}))
        assert "no memory with id" in msg and "work" not in msg
        msg = error_text(await c.call_tool("forget_memory", {"id": secret["item"]["id"]}))
        assert "no memory with id" in msg
        hits = result_json(await c.call_tool("search_memories", {"query": "merger June"}))
        assert not [h for h in hits["hits"] if "merger" in h["text"]]
    log = audit()
    assert [e["outcome"] for e in log] == ["refused", "refused", "ok"]
    assert log[0]["detail"] == "memory is in cube 'work', not granted" and log[0]["cube"] == "work"
    assert ok("list", "--cube", "work").out.count("merger") == 1


async def test_the_servers_stderr_and_log_file_hold_no_memory_text(
    profile: Paths, tmp_path: Path
) -> None:
    """Hosts keep a server's stderr in a file: nothing the app sent or got back goes there."""
    ok("mcp", "grant", CLIENT, "--cube", "personal", "--write")
    errlog = tmp_path / "server-stderr.txt"
    with errlog.open("w") as f:
        async with Client(stdio_client(server_params(), errlog=f), cache=None) as c:
            result_json(await c.call_tool("remember", {"text": "Zanzibar-quince 77 is my PIN"}))
            result_json(await c.call_tool("search_memories", {"query": "zanzibar-quince"}))
            error_text(await c.call_tool("remember", {"text": "Zanzibar-quince", "type": "x"}))
            error_text(await c.call_tool("get_memory", {"id": "zanzibar-quince"}))
            error_text(await c.call_tool("search_memories", {"query": "Zanzibar-q", "cube": "z"}))
    logs = [errlog, *(profile.log_dir.glob("*"))]
    for p in logs:
        assert "anzibar" not in p.read_text(encoding="utf-8", errors="replace"), p


async def test_calls_made_at_once_all_land_and_are_all_recorded(profile: Paths) -> None:
    """A host may send calls without waiting; the SDK runs tools in worker threads on one
    open profile."""
    ok("mcp", "grant", CLIENT, "--cube", "personal", "--write")
    texts = [f"Concurrent note {i} about kites" for i in range(8)]
    async with stdio_session() as c:
        calls = [c.call_tool("remember", {"text": t}) for t in texts]
        calls += [c.call_tool("search_memories", {"query": "kites"}) for _ in range(4)]
        results = await asyncio.gather(*calls)
    assert all(not r.is_error for r in results), [r.content for r in results if r.is_error]
    assert sorted(m["text"] for m in memories()) == sorted(texts)
    log = audit()
    assert len(log) == 12 and {e["outcome"] for e in log} == {"ok"}
    assert sorted(e["args"]["text"] for e in log if e["tool"] == "remember") == sorted(texts)


def test_a_passphrase_profile_without_a_passphrase_says_what_to_do(profile: Paths) -> None:
    env = server_env(MEMOS_DESKTOP_PASSPHRASE="")
    p = subprocess.run(
        [sys.executable, "-m", "memos_desktop.cli", "mcp", "--client", CLIENT],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,  # a host's pipe, not a terminal
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 5, p.stderr
    assert "protected by a passphrase" in p.stderr and "MEMOS_DESKTOP_PASSPHRASE" in p.stderr
    assert "--keyring" in p.stderr and "Traceback" not in p.stderr
    assert p.stdout == ""  # nothing on the protocol channel


def test_the_server_needs_to_know_which_app_it_serves(profile: Paths) -> None:
    r = cli("mcp")
    assert r.code == 2 and "--client NAME" in r.err and "mcp grant" in r.err
    r = cli("mcp", "--client", "bad name!")
    assert r.code == 9 and "not a client name" in r.err
