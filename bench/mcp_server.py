"""The MCP server (issue 13): how long a tool call takes, end to end and without the protocol.

Usage: .venv/bin/python bench/mcp_server.py [--memories 1000] [--calls 100] [--no-write]

- A passphrase profile in a temporary home with N memories (the real MiniLM embedder), a
  write grant for one client.
- Over stdio: `memos-desktop mcp --client bench` as a subprocess, driven by the SDK's own
  client; the time from spawn to a finished handshake, then per call (median, p95) for
  search_memories, get_memory, list_cubes, remember and a refused call.
- In process, on the same profile: `MemosAPI.search` alone vs `McpService.search` (the grant
  check and the audit commit), so the audit's own cost is visible.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from bench._report import ROOT, git_rev, machine, write_section
from memos_desktop.api import McpService, NewMemory, grant_mcp_client, open_api
from memos_desktop.config import Settings, resolve_paths
from memos_desktop.store.profile import create_profile

PASSPHRASE = "bench passphrase"
CLIENT = "bench"
TOPICS = ["tea", "cello", "Lisbon", "running", "chess", "bread", "trains", "orchids", "jazz"]


def ms(xs: list[float]) -> str:
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(0.95 * len(xs)))]
    return f"{statistics.median(xs) * 1000:.1f} ms median, {p95 * 1000:.1f} ms p95"


def setup(home: Path, n: int) -> None:
    paths = resolve_paths({"MEMOS_DESKTOP_HOME": str(home)})
    create_profile(paths, "default", Settings(), method="passphrase", passphrase=PASSPHRASE).close()
    os.environ["MEMOS_DESKTOP_PASSPHRASE"] = PASSPHRASE
    api = open_api(paths, Settings())
    try:
        items = [
            NewMemory(text=f"Note {i}: the person likes {TOPICS[i % len(TOPICS)]} ({i * 7919})")
            for i in range(n)
        ]
        api.add(items)
        grant_mcp_client(api, CLIENT, ["personal"], "write")
    finally:
        api.close()


async def over_stdio(home: Path, calls: int) -> dict[str, object]:
    env = {
        "MEMOS_DESKTOP_HOME": str(home),
        "MEMOS_DESKTOP_PASSPHRASE": PASSPHRASE,
        "PYTHONPATH": str(ROOT),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "memos_desktop.cli", "mcp", "--client", CLIENT],
        env=env,
        cwd=str(ROOT),
    )
    times: dict[str, list[float]] = {}

    async def timed(name: str, tool: str, args: dict[str, object]) -> object:
        t0 = time.perf_counter()
        r = await c.call_tool(tool, args)
        times.setdefault(name, []).append(time.perf_counter() - t0)
        return r

    t0 = time.perf_counter()
    async with Client(params, read_timeout_seconds=300, cache=None) as c:
        startup = time.perf_counter() - t0
        first = await timed("search (first)", "search_memories", {"query": "tea"})
        item_id = first.structured_content["hits"][0]["id"]  # type: ignore[attr-defined]
        for i in range(calls):
            await timed("search_memories", "search_memories", {"query": TOPICS[i % 9]})
            await timed("get_memory", "get_memory", {"id": item_id})
        for i in range(max(10, calls // 4)):
            await timed("list_cubes", "list_cubes", {})
            await timed("remember", "remember", {"text": f"Bench memory {i} about kites"})
            r = await timed("refused", "search_memories", {"query": "x", "cube": "nope"})
            assert r.is_error  # type: ignore[attr-defined]
    return {"startup": startup, "times": times}


def in_process(home: Path, calls: int) -> tuple[list[float], list[float]]:
    paths = resolve_paths({"MEMOS_DESKTOP_HOME": str(home)})
    api = open_api(paths, Settings(), resident_index=True)
    svc = McpService(api, CLIENT, {})
    plain, audited = [], []
    try:
        api.search("warm up")
        for i in range(calls):
            q = TOPICS[i % len(TOPICS)]
            t0 = time.perf_counter()
            api.search(q)
            plain.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            svc.search(q)
            audited.append(time.perf_counter() - t0)
    finally:
        api.close()
    return plain, audited


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--memories", type=int, default=1000)
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        setup(home, a.memories)
        r = asyncio.run(over_stdio(home, a.calls))
        plain, audited = in_process(home, a.calls)
    times: dict[str, list[float]] = r["times"]  # type: ignore[assignment]
    rows = [
        f"| {name} | {len(ts)} | {ms(ts)} |"
        for name, ts in times.items()
        if name != "search (first)"
    ]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    body = f"""## MCP server: tool-call latency (issue 13, `bench/mcp_server.py`)

Command: `.venv/bin/python bench/mcp_server.py --memories {a.memories} --calls {a.calls}`
Machine: {machine()}; load average at the end {load}; rev {git_rev()}.

A passphrase profile with {a.memories} memories (real MiniLM embeddings, synchronous=FULL),
`memos-desktop mcp --client bench` as a subprocess driven by the SDK's own client over stdio.
Spawn to a finished handshake (Python start, unlock, embedder load, resident vector index):
**{r["startup"]:.2f} s**; the first search {times["search (first)"][0] * 1000:.0f} ms.

| call over stdio | calls | latency |
|---|---|---|
{chr(10).join(rows)}

In process, same profile, the two alternating: `MemosAPI.search` alone {ms(plain)}; through
`McpService.search` (the grant check and the audit row: one commit) {ms(audited)}. The
machine is shared (see the load average): compare within a run, not across runs.
"""
    print(body)
    if not a.no_write:
        write_section("mcp", body)


if __name__ == "__main__":
    main()
