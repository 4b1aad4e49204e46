"""``backup`` (an encrypted snapshot, online) and ``restore`` (forgotten memories back, or a
backup back into the profile, or a loss accepted).

Design rules:
- ``restore --backup`` and ``restore --accept-loss`` first show what they would do (the
  backup's date and counts, the state of the current database, what would be lost) and ask;
  ``--yes`` is for scripts, ``--dry-run`` only shows. The current files are always kept.
- The backup passphrase comes from MEMOS_DESKTOP_BACKUP_PASSPHRASE (taken out of the
  environment at start, like the profile's) or is asked on the terminal.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from memos_desktop.cli.common import Ctx, emit_json, prompt_passphrase, short
from memos_desktop.config import BACKUP_PASSPHRASE_ENV, env_secret

if TYPE_CHECKING:
    from memos_desktop.api import AcceptPlan, BackupInfo, RestorePlan


def _backup_passphrase(confirm: bool) -> str:
    got = env_secret(BACKUP_PASSPHRASE_ENV)
    if got:
        return got
    if not sys.stdin.isatty():
        raise click.UsageError(
            f"a backup passphrase is needed and there is no terminal to ask it on; "
            f"set {BACKUP_PASSPHRASE_ENV}"
        )
    return str(click.prompt("Backup passphrase", hide_input=True, confirmation_prompt=confirm))


def _counts(c: dict[str, int]) -> str:
    if not c:
        return "(cannot be counted)"
    return (
        f"{c.get('memories', 0)} memories ({c.get('active', 0)} active), "
        f"{c.get('conversations', 0)} conversations, {c.get('messages', 0)} messages, "
        f"{c.get('cubes', 0)} cubes"
    )


def _line(b: BackupInfo) -> str:
    return f"{b.when()}  change #{b.seq:<7} {_counts(b.counts)}  [{'+'.join(b.seals)}]  {b.path}"


@click.command()
@click.option(
    "--to",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="folder to write it into (default: the profile's backup folder)",
)
@click.option(
    "--passphrase",
    "with_passphrase",
    is_flag=True,
    help="also seal it with a backup passphrase: it then opens without this profile's key "
    f"(another machine, a lost keyring); from {BACKUP_PASSPHRASE_ENV} or asked",
)
@click.option(
    "--keep",
    type=click.IntRange(1),
    help="then keep only this profile's newest N backups in that folder",
)
@click.option("--list", "list_only", is_flag=True, help="list the backups in the folder")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def backup(
    obj: Ctx,
    folder: Path | None,
    with_passphrase: bool,
    keep: int | None,
    list_only: bool,
    as_json: bool,
) -> None:
    """Write an encrypted backup of the profile (safe while the app runs)."""
    from memos_desktop.api import backup as make_backup
    from memos_desktop.api import list_backups

    if list_only:
        found = list_backups(obj.paths, obj.profile, folder)
        if as_json:
            emit_json([b.to_json() for b in found])
        elif not found:
            click.echo("(no backups)", err=True)
        for b in [] if as_json else found:
            click.echo(_line(b))
        return
    secret = _backup_passphrase(confirm=True) if with_passphrase else None
    made, gone = make_backup(
        obj.paths,
        obj.settings,
        obj.profile,
        prompt_passphrase,
        folder=folder,
        passphrase=secret,
        keep=keep,
    )
    if as_json:
        emit_json({**made.to_json(), "removed": [str(p) for p in gone]})
        return
    click.echo(f"Backup written: {made.path}")
    click.echo(f"  change #{made.seq}, {_counts(made.counts)}, {made.size / 1e6:.1f} MB", err=True)
    for p in gone:
        click.echo(f"  removed the older backup {p}", err=True)


def _say(text: str) -> None:
    click.echo(text, err=True)


def _show_restore(plan: RestorePlan) -> None:
    b, cur = plan.backup, plan.current
    _say(f"Backup {b.path}")
    _say(f"  made {b.when()}, up to change #{b.seq}; holds {_counts(b.counts)}")
    if plan.other_profile:
        _say(f"  made by another profile ('{b.profile_name}', id {b.profile_id[:8]})")
    _say(f"Now: the database is {cur.state}: {cur.detail}")
    if cur.counts:
        _say(f"  holds {_counts(cur.counts)}")
    lost = []
    if plan.new_memories:
        lost.append(f"{plan.new_memories} memories the backup does not have")
    if plan.changed_memories:
        lost.append(f"{plan.changed_memories} memories changed since")
    if plan.changes_after:
        lost.append(f"{plan.changes_after} changes recorded after the backup")
    _say("Would be lost: " + ("; ".join(lost) if lost else "nothing recorded after the backup"))
    _say(f"The current files are kept in {plan.kept_in}")


def _show_accept(plan: AcceptPlan) -> None:
    cur = plan.current
    _say(f"Now: the database is {cur.state}: {cur.detail}")
    if plan.start_empty:
        _say("Accepting starts the profile over with an EMPTY database.")
    else:
        _say(f"Accepting goes on with what it holds: {_counts(cur.counts)}.")
        if cur.mark_seq is not None and cur.seq is not None and cur.mark_seq > cur.seq:
            _say(f"  {cur.mark_seq - cur.seq} recorded changes stay lost.")
    _say(f"The current files are kept in {plan.kept_in}")


def _confirm(question: str, yes: bool, dry_run: bool) -> bool:
    if dry_run:
        click.echo("(dry run: nothing was changed)", err=True)
        return False
    if yes:
        return True
    if not sys.stdin.isatty():
        raise click.UsageError("this replaces the profile's database: add --yes to confirm")
    return click.confirm(question, default=False, err=True)


@click.command("restore")
@click.argument("item_ids", nargs=-1)
@click.option(
    "--backup",
    "source",
    metavar="FILE|latest",
    help="put a backup back into the profile (latest: the newest in its backup folder)",
)
@click.option(
    "--accept-loss",
    is_flag=True,
    help="go on with what a refused database holds (an empty one if it is gone)",
)
@click.option("--yes", is_flag=True, help="do not ask (with --backup / --accept-loss)")
@click.option("--dry-run", is_flag=True, help="only show what would happen")
@click.option("--reason", default="", help="why (memories: kept in the history)")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def restore(
    obj: Ctx,
    item_ids: tuple[str, ...],
    source: str | None,
    accept_loss: bool,
    yes: bool,
    dry_run: bool,
    reason: str,
    as_json: bool,
) -> None:
    """Restore forgotten or archived memories (IDs), or a backup (--backup FILE|latest).

    --accept-loss instead goes on with what a refused database holds."""
    if sum(map(bool, (item_ids, source, accept_loss))) != 1:
        raise click.UsageError(
            "give memory ids to restore memories, or --backup FILE|latest to restore a "
            "backup, or --accept-loss (one of them)"
        )
    if item_ids:
        api = obj.api()
        items = [api.restore(i, reason) for i in item_ids]
        if as_json:
            emit_json([i.to_json() for i in items])
        else:
            for it in items:
                click.echo(f"Restored {short(it.id)}.")
        return
    result: Any
    seen: list[Any] = []  # the plan shown, for --json (also on a dry run)
    if source:
        from memos_desktop.api import restore_backup

        def confirm_restore(plan: RestorePlan) -> bool:
            seen.append(plan)
            _show_restore(plan)
            return _confirm("Restore this backup?", yes, dry_run)

        result = restore_backup(
            obj.paths,
            obj.settings,
            obj.profile,
            source,
            prompt_passphrase,
            lambda prompt: _backup_passphrase(confirm=False),
            confirm_restore,
        )
        done = f"Restored the backup; the replaced files are in {getattr(result, 'kept_in', '')}"
    else:
        from memos_desktop.api import accept_loss as accept

        def confirm_accept(plan: AcceptPlan) -> bool:
            seen.append(plan)
            _show_accept(plan)
            return _confirm("Accept this and go on?", yes, dry_run)

        result = accept(obj.paths, obj.settings, obj.profile, prompt_passphrase, confirm_accept)
        done = f"Accepted; the profile opens again. Earlier files: {getattr(result, 'kept_in', '')}"
    if as_json:
        emit_json({"done": result is not None, "plan": seen[0].to_json() if seen else None})
    elif result is not None:
        click.echo(done)


COMMANDS = (backup, restore)
