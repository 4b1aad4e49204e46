"""The ``memos-desktop`` command line.

Design rules: stdout is data (``--json`` gives machine-readable output), stderr is narration and
errors. Every :class:`MemosError` becomes a one-line message with a hint and its documented exit
code (see ``errors.py``); no traceback for expected failures. Everything goes through
``memos_desktop.api`` (profiles, keys and doctor too); nothing below it is imported here.
"""

from __future__ import annotations

import logging
import os
import sys

# One BLAS thread, set before numpy is imported. numpy's BLAS runs only the search's
# matrix-vector products here, which are memory-bound (a second thread adds little), and on a
# small machine its spinning threads fight llama.cpp's for the cores: the KNN re-scoring step
# measured 0.19 ms with one thread and 8 ms with two while a model was generating (issue 14,
# BENCHMARKS "Store"). The daemon does the same (daemon/__main__.py). A person can override it.
# (Not OMP_NUM_THREADS: llama.cpp's CPU backend may use OpenMP for its own threads.)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import click

from memos_desktop import __version__
from memos_desktop.cli.backups import COMMANDS as BACKUP_COMMANDS
from memos_desktop.cli.chat import COMMANDS as CHAT_COMMANDS
from memos_desktop.cli.common import (
    Ctx,
    MemosGroup,
    emit_json,
    fail,
    prompt_passphrase,
    short,
)
from memos_desktop.cli.cube_files import COMMANDS as CUBE_FILE_COMMANDS
from memos_desktop.cli.daemon import daemon as daemon_group
from memos_desktop.cli.logs import COMMANDS as LOG_COMMANDS
from memos_desktop.cli.mcp import mcp as mcp_group
from memos_desktop.cli.memories import COMMANDS as MEMORY_COMMANDS
from memos_desktop.cli.models import models as models_group
from memos_desktop.cli.sync import COMMANDS as SYNC_COMMANDS
from memos_desktop.config import (
    NEW_PASSPHRASE_ENV,
    PASSPHRASE_ENV,
    env_passphrase,
    env_secret,
    load_settings,
    resolve_paths,
    setup_logging,
)
from memos_desktop.errors import AmbiguousError, MemosError

log = logging.getLogger(__name__)


@click.group(cls=MemosGroup, invoke_without_command=True)
@click.option(
    "--profile", envvar="MEMOS_DESKTOP_PROFILE", help="profile name (default: from settings)"
)
@click.option(
    "--read-only",
    is_flag=True,
    help="open the terminal app read-only (browse and search; beside another one)",
)
@click.version_option(__version__, prog_name="memos-desktop")
@click.pass_context
def main(ctx: click.Context, profile: str | None, read_only: bool) -> None:
    """memos-desktop: a private memory assistant. With no command, opens the terminal app."""
    paths = resolve_paths()
    try:
        settings = load_settings(paths)
    except MemosError as exc:
        fail(exc)
    setup_logging(paths)
    ctx.obj = Ctx(paths=paths, settings=settings, profile=profile or settings.profile)
    if ctx.invoked_subcommand is None:
        # No command: the terminal app on a terminal (it creates the profile on first run and
        # asks for the passphrase itself); help when stdin/stdout are not a terminal.
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            click.echo(ctx.get_help())
            return
        from memos_desktop.tui import run

        sys.exit(run(paths, settings, ctx.obj.profile, read_only=read_only))


@main.command()
@click.option(
    "--passphrase",
    "use_passphrase",
    is_flag=True,
    help="protect the key with a passphrase even if an OS keyring is available",
)
@click.option("--keyring", "use_keyring", is_flag=True, help="require the OS keyring")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def init(obj: Ctx, use_passphrase: bool, use_keyring: bool, as_json: bool) -> None:
    """Create a profile and its encryption key."""
    from memos_desktop.api import create_profile, key_method

    if use_passphrase and use_keyring:
        raise click.UsageError("choose --passphrase or --keyring, not both")
    # No flag: `[keys] method` of config.toml ("auto" by default: the keyring where it is real).
    wanted = "passphrase" if use_passphrase else "keyring" if use_keyring else ""
    method = key_method(wanted or obj.settings.keys.method)
    passphrase = None
    if method == "passphrase":
        passphrase = env_passphrase()
        if not passphrase:
            if not sys.stdin.isatty():
                raise click.UsageError(
                    "no usable OS keyring, and no terminal to ask a passphrase on; "
                    f"set {PASSPHRASE_ENV}"
                )
            passphrase = click.prompt("New passphrase", hide_input=True, confirmation_prompt=True)
    created = create_profile(
        obj.paths, obj.profile, obj.settings, method=method, passphrase=passphrase
    )
    info = {
        "profile": obj.profile,
        "path": str(created.path),
        "key": method,
        "database": str(created.database),
    }
    if as_json:
        emit_json(info)
    else:
        click.echo(f"Created profile '{obj.profile}' in {info['path']} (key: {method}).")


for _cmd in (*MEMORY_COMMANDS, *CHAT_COMMANDS, *BACKUP_COMMANDS, *LOG_COMMANDS, *SYNC_COMMANDS):
    main.add_command(_cmd)


@main.command()
@click.pass_obj
def passphrase(obj: Ctx) -> None:
    """Change the profile's passphrase (the database is not re-encrypted)."""
    from memos_desktop.api import change_passphrase

    old = env_passphrase() or prompt_passphrase("Current passphrase")
    new = env_secret(NEW_PASSPHRASE_ENV)
    if not new:
        if not sys.stdin.isatty():
            raise click.UsageError(f"set {NEW_PASSPHRASE_ENV} or run in a terminal")
        new = click.prompt("New passphrase", hide_input=True, confirmation_prompt=True)
    change_passphrase(obj.paths, obj.profile, old, new)
    click.echo("Passphrase changed.")


@main.command("rotate-key")
@click.pass_obj
def rotate_key(obj: Ctx) -> None:
    """Re-encrypt the database under a new random key."""
    from memos_desktop.api import rotate_key

    rotate_key(obj.paths, obj.settings, obj.profile, prompt_passphrase)
    click.echo("Key rotated; the database is now encrypted under a new key.")


@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def doctor(obj: Ctx, as_json: bool) -> None:
    """Check keyring, encryption, database integrity and versions."""
    from memos_desktop.api import doctor as run_doctor

    report = run_doctor(obj.paths, obj.settings, obj.profile, prompt_passphrase)
    if as_json:
        emit_json(report)
    else:
        for check in report["checks"]:
            mark = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "info": " -> "}[check["status"]]
            click.echo(f"[{mark}] {check['name']}: {check['detail']}")
    if any(c["status"] == "fail" for c in report["checks"]):
        sys.exit(6)


@main.command()
@click.argument("text")
@click.option("--target", help="the id of the memory this replaces (when asked to choose)")
@click.option("--none", "replace_nothing", is_flag=True, help="store it, replace nothing")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def correct(obj: Ctx, text: str, target: str | None, replace_nothing: bool, as_json: bool) -> None:
    """Correct a memory in plain words ("I moved to Berlin in May").

    It replaces the memory about the same thing (where you live, your job, a relative's
    job...). When several could be meant, nothing changes: they are listed and the command
    exits with code 10; run it again with --target ID, or --none."""
    try:
        new, old = obj.api().correct(text, target=target, replace_nothing=replace_nothing)
    except AmbiguousError as exc:
        if not as_json:
            raise
        emit_json(
            {"ambiguous": True, "candidates": [{"id": i, "text": t} for i, t in exc.candidates]}
        )
        sys.exit(exc.exit_code)
    if as_json:
        emit_json({"new": new.to_json(), "superseded": old.to_json() if old else None})
    elif old is not None:
        click.echo(f"Remembered {short(new.id)}; it replaces {short(old.id)}: {old.text}")
    else:
        click.echo(f"Remembered {short(new.id)} (it replaces no earlier memory).")


@main.command()
@click.option("--limit", default=50, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def consolidate(obj: Ctx, limit: int, as_json: bool) -> None:
    """Run pending memory jobs now (fine extraction from recent conversations)."""
    r = obj.api().consolidate(limit)
    if as_json:
        emit_json(r.__dict__)
    else:
        click.echo(r.summary())


@main.group()
def cubes() -> None:
    """Memory cubes: list, create, rename, delete, export, import."""


@cubes.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def cubes_list(obj: Ctx, as_json: bool) -> None:
    api = obj.api()
    rows = [(c, api.cube_stats(c)) for c in api.list_cubes()]
    if as_json:
        emit_json([{**c.__dict__, "counts": st} for c, st in rows])
        return
    for c, st in rows:
        click.echo(f"{c.name:<20} {sum(st.values()):>6} memories  {c.embed_model}  {short(c.id)}")


@cubes.command("create")
@click.argument("name")
@click.pass_obj
def cubes_create(obj: Ctx, name: str) -> None:
    c = obj.api().create_cube(name)
    click.echo(f"Created cube {c.name} ({short(c.id)}).")


@cubes.command("rename")
@click.argument("name")
@click.argument("new_name")
@click.pass_obj
def cubes_rename(obj: Ctx, name: str, new_name: str) -> None:
    c = obj.api().rename_cube(name, new_name)
    click.echo(f"Renamed to {c.name}.")


@cubes.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True)
@click.pass_obj
def cubes_delete(obj: Ctx, name: str, yes: bool) -> None:
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("deleting a cube erases its memories: add --yes to confirm")
        click.confirm(f"Delete cube {name} and all its memories?", abort=True)
    n = obj.api().delete_cube(name)
    click.echo(f"Deleted cube {name} ({n} memories).")


for _cmd in CUBE_FILE_COMMANDS:
    cubes.add_command(_cmd)
main.add_command(models_group)
main.add_command(mcp_group)
main.add_command(daemon_group)


if __name__ == "__main__":  # pragma: no cover
    main()
