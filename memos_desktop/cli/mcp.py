"""``memos-desktop mcp``: the MCP server (stdio; ``--http`` for streamable HTTP on
127.0.0.1), and the person's side of it: ``grant``, ``revoke``, ``grants``, ``log``.

Design rule: the server is started by a host app with no terminal, so it never asks for
anything. A keyring profile opens by itself; a passphrase profile needs
``MEMOS_DESKTOP_PASSPHRASE`` in the environment the host gives the server, else it stops
at once with a message saying so (the host shows the server's stderr). The MCP SDK is
imported only when the server starts, so the rest of the CLI starts without it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
from collections.abc import Iterator
from typing import Any, cast

import click

from memos_desktop.cli.common import Ctx, _parse_time, emit_json, warn_no_embedder
from memos_desktop.config import MCP_TOKEN_ENV, PASSPHRASE_ENV, env_secret
from memos_desktop.errors import InvalidInputError, PassphraseRequiredError

MIN_TOKEN = 24  # characters of the HTTP bearer token

NO_TERMINAL_HINT = (
    f"the MCP server runs without a terminal to ask on: put {PASSPHRASE_ENV} in the "
    '"env" of this server in the host\'s MCP config (the host keeps it in its config file), '
    "or use a profile whose key is in the OS keyring "
    "(memos-desktop --profile NAME init --keyring, then --profile NAME in the server's args)"
)


def _no_terminal(prompt: str) -> str:
    raise PassphraseRequiredError("this profile is protected by a passphrase", NO_TERMINAL_HINT)


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """While the profile opens, fd 1 points at stderr: on stdio, stdout is the protocol, and
    a native library's stray print there would break the host's first message."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _open_for_host(obj: Ctx) -> None:
    """Open the profile without a terminal (the key from the keyring or the environment)."""
    from memos_desktop.api import default_embedder_factory, open_api, start_state

    if start_state(obj.paths, obj.profile).kind == "unlock":
        _no_terminal("")
    with _stdout_to_stderr():
        obj._api = open_api(
            obj.paths,
            obj.settings,
            profile=obj.profile,
            passphrase_provider=_no_terminal,
            embedder_factory=default_embedder_factory(
                obj.paths, obj.settings, on_missing=warn_no_embedder
            ),
            resident_index=True,
        )


@click.group(invoke_without_command=True)
@click.option(
    "--client",
    help="which app this is (the name its grant is under), e.g. claude-desktop; "
    "set in the host's launch command",
)
@click.option(
    "--http",
    "http",
    is_flag=True,
    help=f"streamable HTTP on 127.0.0.1, not stdio (needs {MCP_TOKEN_ENV})",
)
@click.option(
    "--port",
    type=click.IntRange(1024, 65535),
    help="the HTTP port (default: [mcp] http_port, 8765)",
)
@click.pass_context
def mcp(ctx: click.Context, client: str | None, http: bool, port: int | None) -> None:
    """Serve this memory to other apps over MCP (stdio by default).

    A host app (Claude Desktop, Cursor, ...) starts `memos-desktop mcp --client NAME`; the
    app may use only what `memos-desktop mcp grant NAME ...` allows, and every call it makes
    is recorded in this profile's encrypted audit log (`memos-desktop mcp log`)."""
    if ctx.invoked_subcommand is not None:
        if client or http or port:
            raise click.UsageError("--client, --http and --port go with `mcp` alone")
        return
    if not client:
        raise click.UsageError(
            "say which app this server is for: add --client NAME to the command in the "
            "host's MCP config (e.g. --client claude-desktop), and allow it with "
            "`memos-desktop mcp grant NAME --cube personal --read`"
        )
    obj = cast(Ctx, ctx.obj)
    from memos_desktop.api import McpService, check_mcp_client

    check_mcp_client(client)
    token = _http_token() if http else None
    _open_for_host(obj)
    service = McpService(
        obj.api(), client, obj.settings.mcp.clients, transport="http" if http else "stdio"
    )
    from memos_desktop.mcp.server import LOOPBACK, serve

    http_port = (port or obj.settings.mcp.http_port) if http else None
    if http_port is not None:
        click.echo(
            f"memos-desktop MCP server for client '{client}' on http://{LOOPBACK}:{http_port}/mcp",
            err=True,
        )
    serve(service, http_port=http_port, http_token=token)


def _http_token() -> str:
    token = env_secret(MCP_TOKEN_ENV)
    if not token or len(token) < MIN_TOKEN:
        raise InvalidInputError(
            f"--http needs a bearer token of at least {MIN_TOKEN} characters in {MCP_TOKEN_ENV}"
            " (any process on this machine can reach a loopback port)",
            hint=f"set {MCP_TOKEN_ENV} to a random string (python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))') and give the host the header "
            "Authorization: Bearer <it>",
        )
    return token


@mcp.command("grant")
@click.argument("client")
@click.option("--cube", "cubes", multiple=True, help="a cube name (repeat for several)")
@click.option("--all-cubes", is_flag=True, help="every cube, including those made later")
@click.option("--read", "access", flag_value="read", help="search and read")
@click.option("--write", "access", flag_value="write", help="also add, correct and forget")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def grant(
    obj: Ctx,
    client: str,
    cubes: tuple[str, ...],
    all_cubes: bool,
    access: str | None,
    as_json: bool,
) -> None:
    """Allow MCP client CLIENT to read (--read) or also change (--write) cubes."""
    from memos_desktop.api import grant_mcp_client

    if access is None:
        raise click.UsageError("choose --read (search and read) or --write (also change)")
    grants = grant_mcp_client(obj.api(), client, cubes, access, all_cubes=all_cubes)  # type: ignore[arg-type]
    if as_json:
        emit_json([g.to_json() for g in grants])
        return
    where = ", ".join([*cubes, *(["every cube"] if all_cubes else [])])
    click.echo(f"MCP client '{client}' may now {_verb(access)} {where}.")


def _verb(access: str) -> str:
    return "read" if access == "read" else "read and change"


@mcp.command("revoke")
@click.argument("client")
@click.option("--cube", "cubes", multiple=True, help="only this cube ('*': the --all-cubes grant)")
@click.pass_obj
def revoke(obj: Ctx, client: str, cubes: tuple[str, ...]) -> None:
    """Take back what `mcp grant` gave CLIENT (on --cube, or everything)."""
    from memos_desktop.api import mcp_grants, revoke_mcp_client

    n = revoke_mcp_client(obj.api(), client, cubes)
    click.echo(f"Removed {n} grant{'s' if n != 1 else ''} of MCP client '{client}'.")
    left = [g for g in mcp_grants(obj.api(), obj.settings.mcp.clients, client)]
    if left and not cubes:
        click.echo(
            f"note: config.toml still grants '{client}' "
            + ", ".join(f"{g.access} on {g.cube}" for g in left)
            + f" ([mcp.clients.{client}] in {obj.paths.config_file})",
            err=True,
        )


@mcp.command("grants")
@click.option("--client", help="only this client")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def grants_list(obj: Ctx, client: str | None, as_json: bool) -> None:
    """Which MCP client may read or change which cube."""
    from memos_desktop.api import mcp_grants

    rows = mcp_grants(obj.api(), obj.settings.mcp.clients, client)
    if as_json:
        emit_json([g.to_json() for g in rows])
        return
    if not rows:
        click.echo("(no MCP client has a grant)", err=True)
    for g in rows:
        cube = "every cube" if g.cube == "*" else g.cube
        missing = "  (no such cube)" if g.cube != "*" and not g.cube_id else ""
        click.echo(f"{g.client:<24} {g.access:<6} {cube}{missing}  [{g.source}]")


@mcp.command("log")
@click.option("--client", help="only this client")
@click.option(
    "--outcome", type=click.Choice(["ok", "refused", "error", "started"]), help="only these"
)
@click.option("-n", "--limit", default=50, type=click.IntRange(1, 100000))
@click.option("--json", "as_json", is_flag=True)
@click.option("--clear", is_flag=True, help="delete entries (all, or those --before a date)")
@click.option("--before", help="with --clear: only entries before this date (ISO)")
@click.option("--yes", is_flag=True, help="with --clear: do not ask")
@click.pass_obj
def log(
    obj: Ctx,
    client: str | None,
    outcome: str | None,
    limit: int,
    as_json: bool,
    clear: bool,
    before: str | None,
    yes: bool,
) -> None:
    """What MCP clients asked for, newest first (the log is inside the encrypted profile).
    --clear deletes entries (it is the only thing that shortens the log)."""
    from memos_desktop.api import mcp_audit_log

    if before is not None and not clear:
        raise click.UsageError("--before goes with --clear")
    if clear:
        _clear(obj, before, yes)
        return

    entries = mcp_audit_log(obj.api(), limit=limit, client=client, outcome=outcome)
    if as_json:
        emit_json(entries)
        return
    if not entries:
        click.echo("(no MCP calls recorded)", err=True)
    for e in entries:
        when = dt.datetime.fromtimestamp(e["at"]).strftime("%Y-%m-%d %H:%M:%S")
        cube = f" [{e['cube']}]" if e["cube"] else ""
        click.echo(
            f"{when}  {e['client']:<16} {e['tool']:<16} {e['outcome']:<8}{cube}  "
            f"{_args(e['args'])}  {e['detail']}".rstrip()
        )


def _clear(obj: Ctx, before: str | None, yes: bool) -> None:
    from memos_desktop.api import clear_mcp_log

    cutoff = _parse_time(before, "before")
    what = f"MCP audit entries before {before}" if before else "every MCP audit entry"
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError(f"this deletes {what}: add --yes to confirm")
        click.confirm(f"Delete {what}?", abort=True)
    n = clear_mcp_log(obj.api(), cutoff)
    click.echo(f"Deleted {n} MCP audit entr{'y' if n == 1 else 'ies'}.")


def _args(args: dict[str, Any]) -> str:
    shown = {k: v for k, v in args.items() if v not in (None, "", [], False)}
    text = json.dumps(shown, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."
