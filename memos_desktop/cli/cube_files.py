"""``memos-desktop cubes export|import|identity|reembed``: cube files on the command line.

Design rules: stdout is data (the report, ``--json``), stderr narration and progress. A cube
file's passphrase comes from ``MEMOS_DESKTOP_CUBE_PASSPHRASE`` (taken out of the environment
at start) or is asked on the terminal; it is never an argument (it would sit in the shell
history and the process list).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from memos_desktop.cli.common import Ctx, emit_json
from memos_desktop.config import CUBE_PASSPHRASE_ENV, env_secret

RECIPIENT_PREFIX = "memos-device:"


def _passphrase(confirm: bool) -> str:
    got = env_secret(CUBE_PASSPHRASE_ENV)
    if got:
        return got
    if not sys.stdin.isatty():
        raise click.UsageError(
            "the cube file needs a passphrase and there is no terminal to ask it on; "
            f"set {CUBE_PASSPHRASE_ENV}"
        )
    return str(click.prompt("Cube file passphrase", hide_input=True, confirmation_prompt=confirm))


def _recipient(value: str) -> str:
    """A device identity given inline, or the path of a file holding one."""
    if value.strip().startswith(RECIPIENT_PREFIX):
        return value.strip()
    p = Path(value).expanduser()
    if p.is_file() and p.stat().st_size < 4096:
        return p.read_text(encoding="utf-8").strip()
    raise click.BadParameter(
        "give a device identity (memos-device:1:...; `memos-desktop cubes identity` prints it "
        "on the other device) or a file holding one",
        param_hint="--to",
    )


class _Progress:
    """Progress on stderr, one line rewritten in place (only on a terminal)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.shown = False

    def __call__(self, *args: Any) -> None:
        if not self.tty:
            return
        phase, done, total = args if len(args) == 3 else ("export", *args)
        click.echo(f"\r{phase}: {done}/{total} memories", nl=False, err=True)
        self.shown = True

    def end(self) -> None:
        if self.shown:
            click.echo("", err=True)


@click.command("export")
@click.argument("cube")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--passphrase", "use_passphrase", is_flag=True, help="encrypt for a passphrase")
@click.option(
    "--to",
    "recipients",
    multiple=True,
    help="encrypt for this device identity (or a file holding it); repeat for several",
)
@click.option("--with-states", is_flag=True, help="include saved KV states (a per-model cache)")
@click.option("--no-adapters", is_flag=True, help="leave the LoRA adapters out")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def export_cmd(
    obj: Ctx,
    cube: str,
    file: Path,
    use_passphrase: bool,
    recipients: tuple[str, ...],
    with_states: bool,
    no_adapters: bool,
    as_json: bool,
) -> None:
    """Export CUBE to an encrypted, signed cube FILE (.memcube).

    Encrypted for a passphrase (--passphrase; MEMOS_DESKTOP_CUBE_PASSPHRASE or asked) or for
    other devices (--to IDENTITY, repeatable)."""
    if use_passphrase == bool(recipients):
        raise click.UsageError("choose --passphrase or --to RECIPIENT (one of them)")
    to = [_recipient(r) for r in recipients]
    pw = _passphrase(confirm=True) if use_passphrase else None
    progress = _Progress()
    r = obj.api().export_cube(
        cube,
        file,
        passphrase=pw,
        to=to,
        with_states=with_states,
        with_adapters=not no_adapters,
        progress=progress,
    )
    progress.end()
    info = {
        "path": str(r.path),
        "cube": r.cube,
        "memories": r.memories,
        "versions": r.versions,
        "activations": r.activations,
        "adapters": r.adapters,
        "skipped_blobs": r.skipped_blobs,
        "bytes": r.bytes,
    }
    if as_json:
        emit_json(info)
    else:
        click.echo(
            f"Exported cube {r.cube}: {r.memories} memories, {r.versions} versions, "
            f"{r.adapters} adapters, {r.activations} KV states to {r.path} ({r.bytes} bytes)."
        )


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--into", help="merge into this existing cube (default: a new cube)")
@click.option("--name", help="name of the new cube (default: the name in the file)")
@click.option(
    "--trust",
    "trusted",
    multiple=True,
    help="a device identity whose signature you trust (repeatable)",
)
@click.option("--require-known", is_flag=True, help="refuse a file signed by an unknown device")
@click.option("--with-states", is_flag=True, help="also import saved KV states")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def import_cmd(
    obj: Ctx,
    file: Path,
    into: str | None,
    name: str | None,
    trusted: tuple[str, ...],
    require_known: bool,
    with_states: bool,
    as_json: bool,
) -> None:
    """Verify a cube FILE completely, then import it: a new cube, or merged --into one.

    Reports what was added, updated, skipped and conflicting. Memories embedded with another
    model are re-embedded by a queued job (`memos-desktop cubes reembed` runs it now)."""
    if into and name:
        raise click.UsageError("--into merges into an existing cube; --name names a new one")
    api = obj.api()
    pw = _passphrase(confirm=False) if api.cube_file_mode(file) == "passphrase" else None
    progress = _Progress()
    r = api.import_cube(
        file,
        passphrase=pw,
        into=into,
        name=name,
        known=[_recipient(t) for t in trusted],
        require_known=require_known,
        with_states=with_states,
        progress=progress,
    )
    progress.end()
    info = {
        "cube": r.cube,
        "cube_id": r.cube_id,
        "created_cube": r.created_cube,
        "added": r.added,
        "updated": r.updated,
        "skipped": r.skipped,
        "conflicting": r.conflicting,
        "conflicts": r.conflicts,
        "versions_added": r.versions_added,
        "vectors_kept": r.vectors_kept,
        "reembed_queued": r.reembed_queued,
        "reembed_job": r.reembed_job,
        "activations": r.activations,
        "adapters": r.adapters,
        "signer": r.signer,
        "trust": r.trust,
    }
    if r.trust == "unknown":
        click.echo(
            f"Note: the file is signed by device {r.signer_device}, which is not one of your "
            "trusted devices (the signature is valid; check who sent it).",
            err=True,
        )
    if as_json:
        emit_json(info)
    else:
        verb = "Created" if r.created_cube else "Merged into"
        click.echo(f"{verb} cube {r.cube}: {r.summary()}.")


@click.command("identity")
@click.pass_obj
def identity_cmd(obj: Ctx) -> None:
    """Print this device's public identity (others export cube files --to it)."""
    click.echo(obj.api().device_identity())


@click.command("reembed")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def reembed_cmd(obj: Ctx, as_json: bool) -> None:
    """Run the queued re-embedding jobs now (after importing a cube of another model)."""
    progress = _Progress()
    r = obj.api().run_reembed(progress=lambda done, total: progress("reembed", done, total))
    progress.end()
    if as_json:
        emit_json(r.__dict__)
    else:
        click.echo(r.summary())


COMMANDS = (export_cmd, import_cmd, identity_cmd, reembed_cmd)
