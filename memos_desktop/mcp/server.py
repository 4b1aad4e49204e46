"""The MCP server: this memory for other local apps (Claude Desktop, Cursor, any MCP host),
one more front end on ``memos_desktop.api``, with the official ``mcp`` SDK.

Design rules:
- It imports ``memos_desktop.api`` (plus config and errors), nothing below it. Each tool is
  one :class:`~memos_desktop.api.McpService` call, which checks the client's grant and
  records the call in the profile's encrypted audit log; this module only speaks the
  protocol.
- Tools are plain functions: the SDK runs them in worker threads, and the API's own lock
  makes sharing one open profile between them safe.
- A refusal or a bad argument comes back as a tool error with the message and what to do,
  never a traceback. Nothing here logs memory text: hosts keep a server's stderr in a file.
- Streamable HTTP listens on 127.0.0.1 only (the SDK's DNS-rebinding protection is on for
  it); there is no option for another address. Any local process can reach a loopback
  port, so every HTTP request must carry the bearer token the person chose
  (``MEMOS_DESKTOP_MCP_TOKEN``), compared in constant time; without it, 401 and no call.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, TypeVar

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp_types import ToolAnnotations

from memos_desktop import __version__
from memos_desktop.errors import MemosError

if TYPE_CHECKING:
    from memos_desktop.api import McpService

LOOPBACK = "127.0.0.1"
T = TypeVar("T")

INSTRUCTIONS = (
    "The person's private, local memory (memos-desktop). Search it before answering "
    "questions about them (search_memories), remember what they ask you to remember "
    "(remember), and fix what changed (correct_memory). What this app may read or change is "
    "the person's choice (memos-desktop mcp grant); a refused call says how they can allow it."
)

READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
ADD = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
CHANGE = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)


def _tool_errors(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except MemosError as exc:
        raise ToolError(str(exc)) from None


def build_server(service: McpService) -> MCPServer[Any]:
    """The MCP server for one client's service (its grants, its audit entries)."""
    server: MCPServer[Any] = MCPServer(
        "memos-desktop",
        title="memos-desktop memory",
        version=__version__,
        instructions=INSTRUCTIONS,
        log_level="WARNING",
    )

    @server.tool(annotations=READ)
    def search_memories(query: str, cube: str | None = None, top_k: int = 10) -> dict[str, Any]:
        """Search the person's memories by words and meaning; the best matches first.

        cube: a cube name (default: the cube this app is granted, else the main one).
        top_k: how many results (1-50)."""
        return _tool_errors(lambda: service.search(query, cube, top_k))

    @server.tool(annotations=ADD)
    def remember(
        text: str, cube: str | None = None, type: str = "fact", tags: list[str] | None = None
    ) -> dict[str, Any]:
        """Remember something about the person (needs a write grant).

        type: fact, preference, event or instruction. The same text twice is kept once."""
        return _tool_errors(lambda: service.remember(text, cube, type, tags or ()))

    @server.tool(annotations=CHANGE)
    def correct_memory(
        text: str,
        cube: str | None = None,
        target: str | None = None,
        replace_nothing: bool = False,
    ) -> dict[str, Any]:
        """Correct a memory in plain words ("I moved to Berlin in May"): the new statement is
        stored and the memory it contradicts is superseded (its history keeps both). When
        several memories could be meant, nothing changes and the candidates come back: call
        again with target (an id) or replace_nothing=true. Needs a write grant."""
        return _tool_errors(lambda: service.correct(text, cube, target, replace_nothing))

    @server.tool(annotations=CHANGE)
    def forget_memory(id: str, reason: str = "") -> dict[str, Any]:
        """Forget a memory by its full id (the person can restore it in memos-desktop).
        Needs a write grant."""
        return _tool_errors(lambda: service.forget(id, reason))

    @server.tool(annotations=READ)
    def get_memory(id: str, history: bool = True) -> dict[str, Any]:
        """One memory by its full id, with its version history (every edit and correction)."""
        return _tool_errors(lambda: service.get(id, history))

    @server.tool(annotations=READ)
    def list_cubes() -> dict[str, Any]:
        """The memory cubes this app may use, with its access (read or write) to each."""
        return _tool_errors(service.list_cubes)

    def resource_errors(fn: Callable[..., str]) -> Callable[..., str]:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> str:
            try:
                return fn(*args, **kwargs)
            except MemosError as exc:
                raise ResourceError(str(exc)) from None

        return run

    @server.resource(
        "memos://profile",
        name="core-profile",
        title="The person's core profile",
        description="Pinned memories, facts about the person, their preferences and "
        "instructions, from the cube this app is granted (else the main one).",
        mime_type="text/markdown",
    )
    @resource_errors
    def core_profile() -> str:
        return service.core_profile(None)

    @server.resource(
        "memos://cubes/{cube}/profile",
        name="cube-core-profile",
        title="The core profile in one cube",
        mime_type="text/markdown",
    )
    @resource_errors
    def cube_core_profile(cube: str) -> str:
        return service.core_profile(cube)

    return server


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


def require_token(app: Asgi, token: str) -> Asgi:
    """Only HTTP requests with ``Authorization: Bearer <token>`` reach ``app``."""
    expected = f"Bearer {token}".encode()

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, expected):
                body = b'{"error": "missing or wrong bearer token"}'
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b"Bearer"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return guarded


def serve(
    service: McpService, *, http_port: int | None = None, http_token: str | None = None
) -> None:
    """Serve until the host closes stdin (stdio), or until interrupted (HTTP on 127.0.0.1,
    every request with ``http_token``)."""
    import anyio

    server = build_server(service)
    if http_port is None:
        anyio.run(server.run_stdio_async)
        return
    if not http_token:
        raise ValueError("HTTP needs a bearer token")
    import uvicorn

    app = require_token(server.streamable_http_app(host=LOOPBACK), http_token)
    config = uvicorn.Config(app, host=LOOPBACK, port=http_port, log_level="warning")
    anyio.run(uvicorn.Server(config).serve)
