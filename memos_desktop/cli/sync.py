"""``memos-desktop sync setup FOLDER | pair [DEVICE] | now | status``: device sync through a
folder another tool replicates (Syncthing, Dropbox, iCloud Drive, a NAS).

Design rule: pairing is explicit on both devices. ``sync pair`` with no device lists the
devices in the folder and the code each pairing shows; ``sync pair DEVICE`` asks the person
to check the other device shows the same code (``--code`` gives the code seen there, for a
script), and only then trusts that device.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from memos_desktop.cli.common import Ctx, emit_json, short


@click.group()
def sync() -> None:
    """Sync this profile with your other devices through a shared folder."""


@sync.command("setup")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def sync_setup(obj: Ctx, folder: Path, as_json: bool) -> None:
    """Sync through FOLDER (a folder your sync tool replicates; never the profile itself)."""
    from memos_desktop.api import sync_ops

    info = sync_ops.setup(obj.api(), folder)
    if as_json:
        emit_json(info)
        return
    click.echo(f"This device ({info['device_id']}) syncs through {info['folder']}.")
    click.echo(
        "Next: run `memos-desktop sync setup` with the same folder on your other device, "
        "then `memos-desktop sync pair` on both."
    )


@sync.command("pair")
@click.argument("device", required=False)
@click.option("--code", help="the code the other device shows (skips the question)")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def sync_pair(obj: Ctx, device: str | None, code: str | None, as_json: bool) -> None:
    """Pair with DEVICE after checking both screens show the same code (no DEVICE: list)."""
    from memos_desktop.api import sync_ops

    api = obj.api()
    if device is None:
        found = sync_ops.candidates(api)
        if as_json:
            emit_json([c.__dict__ for c in found])
            return
        if not found:
            click.echo(
                "No other device in the sync folder yet (set it up there and wait for "
                "the folder to replicate)."
            )
        for c in found:
            mark = "paired" if c.paired else "not paired"
            click.echo(f"{c.device_id}  code {c.code}  {c.name or '?'}  ({mark})")
        return
    shown = sync_ops.pairing_code(api, device)
    if code is None:
        if not sys.stdin.isatty():
            raise click.UsageError(
                "pairing needs you to compare codes: run it in a terminal, or pass "
                "--code with the code the other device shows"
            )
        click.echo(f"Pairing code: {shown}")
        if not click.confirm("Does the other device show the same code?", default=False):
            click.echo("Not paired.")
            sys.exit(1)
        code = shown
    got = sync_ops.pair(api, device, code)
    if as_json:
        emit_json(got.__dict__)
    else:
        click.echo(f"Paired with {got.device_id} (code {got.code}). Run `memos-desktop sync now`.")


@sync.command("now")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def sync_now(obj: Ctx, as_json: bool) -> None:
    """Send this device's changes and apply the other devices'."""
    from memos_desktop.api import sync_ops

    r = sync_ops.sync_now(obj.api())
    if as_json:
        emit_json(r.__dict__)
    else:
        click.echo(r.summary())
        for msg in r.refused:
            click.echo(f"  refused: {msg}", err=True)


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "never"


@sync.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def sync_status(obj: Ctx, as_json: bool) -> None:
    """Folder, paired devices, changes not sent yet, last sync, conflicts."""
    from memos_desktop.api import sync_ops

    s = sync_ops.status(obj.api())
    if as_json:
        emit_json(
            {
                **{k: v for k, v in s.__dict__.items() if k not in ("peers", "conflicts")},
                "peers": [p.__dict__ for p in s.peers],
                "conflicts": [{"memory_id": m, "text": t, "edits": e} for m, t, e in s.conflicts],
            }
        )
        return
    click.echo(f"device    {s.device_id}")
    click.echo(f"folder    {s.folder or '(not set up: memos-desktop sync setup FOLDER)'}")
    click.echo(f"key       {'yes' if s.has_key else 'not yet (pair with a device that has one)'}")
    click.echo(
        f"last sync {_when(s.last_sync)}{'  error: ' + s.last_error if s.last_error else ''}"
    )
    click.echo(f"pending   {s.pending} change(s) not sent yet")
    click.echo(f"state     {s.fingerprint} (equal on devices in the same state)")
    for p in s.peers:
        click.echo(f"paired    {p.device_id} {p.name or ''} last seen {_when(p.last_seen)}")
    for mid, text, edits in s.conflicts:
        devices = ", ".join(sorted({e.split(":", 2)[2] for e in edits}))
        click.echo(f"CONFLICT  {short(mid)} text edited on {devices} at once; kept: {text}")
        click.echo(f"          the other text is in `memos-desktop history {short(mid)}`")


COMMANDS = [sync]
