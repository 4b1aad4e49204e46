"""`memos-desktop mcp --http`: streamable HTTP on 127.0.0.1 only, every request with the
person's bearer token, driven by the SDK's own HTTP client."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from memos_desktop.config import Paths
from tests.conftest import PASSPHRASE
from tests.mcp.conftest import CLIENT, ROOT, audit, cli, ok, result_json, server_env

SERVER = (sys.executable, "-m", "memos_desktop.cli", "mcp")
TOKEN = "t0ken-for-the-tests-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> list[str]:
    """The local addresses listening on ``port`` (IPv4 and IPv6), from /proc/net."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.rsplit(":", 1)
            if state == "0A" and int(hexport, 16) == port:
                found.append(addr)
    return found


SERVERS: dict[str, subprocess.Popen[bytes]] = {}


@pytest.fixture
def http_server(profile: Paths, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "server.err").open("w")
    proc = subprocess.Popen(
        [*SERVER, "--client", CLIENT, "--http", "--port", str(port)],
        cwd=ROOT,
        env=server_env(MEMOS_DESKTOP_MCP_TOKEN=TOKEN),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 120
        while not listening(port):
            assert proc.poll() is None, (tmp_path / "server.err").read_text()
            assert time.monotonic() < deadline, "the server did not start listening"
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/mcp"
        SERVERS[url] = proc
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    assert "Traceback" not in (tmp_path / "server.err").read_text()


def test_http_listens_on_loopback_only_and_wants_the_token(http_server: str) -> None:
    port = int(http_server.rsplit(":", 1)[1].split("/")[0])
    assert listening(port) == ["0100007F"]  # 127.0.0.1, nothing on 0.0.0.0 or IPv6
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    for auth in (None, "Bearer wrong", f"Bearer {TOKEN}x"):
        req = urllib.request.Request(http_server, data=body, method="POST")
        req.add_header("Content-Type", "application/json")
        req.add_header("Accept", "application/json, text/event-stream")
        if auth:
            req.add_header("Authorization", auth)
        with pytest.raises(urllib.error.HTTPError) as ei:
            urllib.request.urlopen(req, timeout=30)
        assert ei.value.code == 401
    assert audit() == []  # refused before any call was made


def test_the_token_and_passphrase_left_the_servers_environment(http_server: str) -> None:
    proc = SERVERS[http_server]
    try:
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes()
    except PermissionError:  # not dumpable: other processes cannot read it at all
        return
    assert b"MEMOS_DESKTOP_HOME" in environ  # the file was read...
    assert TOKEN.encode() not in environ  # ...and the secrets were zeroed in it
    assert PASSPHRASE.encode() not in environ


async def test_http_client_with_the_token_adds_and_searches(http_server: str) -> None:
    ok("mcp", "grant", CLIENT, "--cube", "personal", "--write")
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"})
    async with http, Client(streamable_http_client(http_server, http_client=http)) as c:
        assert "search_memories" in {t.name for t in (await c.list_tools()).tools}
        added = result_json(await c.call_tool("remember", {"text": "Mira plays the cello"}))
        hits = result_json(await c.call_tool("search_memories", {"query": "cello"}))["hits"]
        assert [h["id"] for h in hits] == [added["memory"]["id"]]
    log = audit()
    assert [(e["tool"], e["outcome"], e["transport"]) for e in log] == [
        ("remember", "ok", "http"),
        ("search_memories", "ok", "http"),
    ]


def test_http_without_a_token_refuses_to_start(profile: Paths) -> None:
    r = cli("mcp", "--client", CLIENT, "--http", env={"MEMOS_DESKTOP_MCP_TOKEN": ""})
    assert r.code == 9 and "MEMOS_DESKTOP_MCP_TOKEN" in r.err and "Bearer" in r.err
