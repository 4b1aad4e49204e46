"""The ``memos-desktop`` command line.

Design rules: stdout is data (``--json`` gives machine-readable output), stderr is narration and
errors. Every :class:`MemosError` becomes a one-line message with a hint and its documented exit
code (see ``errors.py``); no traceback for expected failures. Everything goes through
``memos_desktop.api`` (profiles, keys and doctor too); nothing below it is imported here.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, cast

import click

from memos_desktop import __version__
from memos_desktop.api.types import (
    MEMORY_LAYERS,
    MEMORY_STATUSES,
    MEMORY_TYPES,
    MemoryItem,
    MemoryLayer,
    MemoryType,
    NewMemory,
    SearchFilters,
    Source,
)
from memos_desktop.cli_models import models as models_group
from memos_desktop.config import (
    PASSPHRASE_ENV,
    Paths,
    Settings,
    load_settings,
    resolve_paths,
    setup_logging,
)
from memos_desktop.errors import InvalidInputError, MemosError, ModelNotFoundError

if TYPE_CHECKING:  # the API (numpy, the store, the memory layer) is imported when first used,
    # so the terminal app paints without waiting for it
    from memos_desktop.api import ChatTurn, MemosAPI

log = logging.getLogger(__name__)


@dataclass
class Ctx:
    paths: Paths
    settings: Settings
    profile: str
    _api: MemosAPI | None = None

    def api(self) -> MemosAPI:
        if self._api is None:
            from memos_desktop.api import default_embedder_factory, open_api

            self._api = open_api(
                self.paths,
                self.settings,
                profile=self.profile,
                passphrase_provider=prompt_passphrase,
                embedder_factory=default_embedder_factory(
                    self.paths, self.settings, on_missing=warn_no_embedder
                ),
            )
        return self._api

    def close(self) -> None:
        if self._api is not None:
            self._api.close()


def prompt_passphrase(prompt: str) -> str:
    if not sys.stdin.isatty():
        raise click.UsageError(
            f"a passphrase is needed and there is no terminal to ask it on; set {PASSPHRASE_ENV}"
        )
    return str(click.prompt(prompt, hide_input=True))


def warn_no_embedder(exc: ModelNotFoundError) -> None:
    click.echo(f"warning: {exc}\n  (searching by words only until it is available)", err=True)


def fail(exc: MemosError) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    sys.exit(exc.exit_code)


class MemosGroup(click.Group):
    """Turns MemosError into a clear message and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MemosError as exc:
            fail(exc)
        finally:
            obj = ctx.find_object(Ctx)
            if obj is not None:
                obj.close()


def _ts(t: float | None) -> str:
    if t is None:
        return "-"
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")


def _parse_time(value: str | None, name: str) -> float | None:
    if value is None:
        return None
    try:
        return dt.datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise InvalidInputError(
            f"--{name} {value!r} is not a date",
            hint="use ISO format, e.g. 2026-05-01 or 2026-05-01T14:30",
        ) from None


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def short(item_id: str) -> str:
    return item_id[:8]


def print_items(items: Sequence[MemoryItem]) -> None:
    if not items:
        click.echo("(no memories)", err=True)
        return
    for it in items:
        tags = f"  #{' #'.join(it.tags)}" if it.tags else ""
        status = "" if it.status == "active" else f" [{it.status}]"
        pin = " *" if it.pinned else ""
        click.echo(
            f"{short(it.id)}  {it.type:<11} {_ts(it.created_at)}{status}{pin}  {it.text}{tags}"
        )


def filter_options(f: Callable[..., Any]) -> Callable[..., Any]:
    opts = [
        click.option("--type", "types", multiple=True, type=click.Choice(MEMORY_TYPES)),
        click.option("--layer", "layers", multiple=True, type=click.Choice(MEMORY_LAYERS)),
        click.option(
            "--status",
            "statuses",
            multiple=True,
            type=click.Choice(MEMORY_STATUSES),
            help="default: active",
        ),
        click.option("--tag", "tags", multiple=True, help="any of these tags"),
        click.option("--since", help="created on or after (ISO date)"),
        click.option("--until", help="created before (ISO date)"),
        click.option("--cube", help="cube name or id (default: the current cube)"),
        click.option("--json", "as_json", is_flag=True, help="machine-readable output"),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def make_filters(
    types: tuple[str, ...],
    layers: tuple[str, ...],
    statuses: tuple[str, ...],
    tags: tuple[str, ...],
    since: str | None,
    until: str | None,
) -> SearchFilters:
    return SearchFilters(
        types=types,
        layers=layers,
        statuses=statuses or ("active",),
        tags=tags,
        since=_parse_time(since, "since"),
        until=_parse_time(until, "until"),
    )


@click.group(cls=MemosGroup, invoke_without_command=True)
@click.option(
    "--profile", envvar="MEMOS_DESKTOP_PROFILE", help="profile name (default: from settings)"
)
@click.version_option(__version__, prog_name="memos-desktop")
@click.pass_context
def main(ctx: click.Context, profile: str | None) -> None:
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

        sys.exit(run(paths, settings, ctx.obj.profile))


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
    method = key_method("passphrase" if use_passphrase else "keyring" if use_keyring else "auto")
    passphrase = None
    if method == "passphrase":
        passphrase = os.environ.get(PASSPHRASE_ENV)
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


@main.command()
@click.argument("text")
@click.option("--type", "type_", default="fact", type=click.Choice(MEMORY_TYPES))
@click.option("--layer", default="long_term", type=click.Choice(MEMORY_LAYERS))
@click.option("--tag", "tags", multiple=True)
@click.option("--key", default="", help="a short title for the memory")
@click.option("--importance", type=click.FloatRange(0, 1), default=0.5)
@click.option("--pin", is_flag=True, help="pin to the core profile")
@click.option("--cube")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def add(
    obj: Ctx,
    text: str,
    type_: str,
    layer: str,
    tags: tuple[str, ...],
    key: str,
    importance: float,
    pin: bool,
    cube: str | None,
    as_json: bool,
) -> None:
    """Remember TEXT ("-" reads it from stdin)."""
    if text == "-":
        text = sys.stdin.read()
    item = NewMemory(
        text=text,
        type=cast(MemoryType, type_),
        layer=cast(MemoryLayer, layer),
        tags=tags,
        key=key,
        importance=importance,
        pinned=pin,
        source="user",
        sources=(Source(kind="user"),),
    )
    res = obj.api().add(item, cube=cube)[0]
    if as_json:
        emit_json({"created": res.created, "item": res.item.to_json()})
    elif res.created:
        click.echo(f"Remembered {short(res.item.id)}.")
    else:
        click.echo(f"Already remembered as {short(res.item.id)}.")


@main.command()
@click.argument("query")
@click.option("-k", "--top-k", default=10, type=click.IntRange(1, 200))
@click.option(
    "--mode",
    type=click.Choice(["fast", "fine"]),
    default="fast",
    help="fine: the chat model also rewrites the question into search queries",
)
@filter_options
@click.pass_obj
def search(
    obj: Ctx,
    query: str,
    top_k: int,
    mode: str,
    types: tuple[str, ...],
    layers: tuple[str, ...],
    statuses: tuple[str, ...],
    tags: tuple[str, ...],
    since: str | None,
    until: str | None,
    cube: str | None,
    as_json: bool,
) -> None:
    """Hybrid search (words + meaning) over memories."""
    f = make_filters(types, layers, statuses, tags, since, until)
    res = obj.api().search(query, f, top_k=top_k, cube=cube, mode=mode)
    if as_json:
        emit_json(
            {
                "mode": res.mode,
                "rewrites": list(res.rewrites),
                "hits": [h.to_json() for h in res.hits],
            }
        )
        return
    if not res.hits:
        click.echo("(nothing found)", err=True)
    for h in res.hits:
        click.echo(f"{h.score:.4f}  {short(h.item.id)}  {h.item.type:<11} {h.item.text}")


@main.command("list")
@click.option("-n", "--limit", default=50, type=click.IntRange(1, 100000))
@click.option("--offset", default=0, type=click.IntRange(0))
@filter_options
@click.pass_obj
def list_(
    obj: Ctx,
    limit: int,
    offset: int,
    types: tuple[str, ...],
    layers: tuple[str, ...],
    statuses: tuple[str, ...],
    tags: tuple[str, ...],
    since: str | None,
    until: str | None,
    cube: str | None,
    as_json: bool,
) -> None:
    """List memories, newest first."""
    f = make_filters(types, layers, statuses, tags, since, until)
    items = obj.api().list(f, limit=limit, offset=offset, cube=cube)
    if as_json:
        emit_json([i.to_json() for i in items])
    else:
        print_items(items)


@main.command()
@click.argument("item_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def show(obj: Ctx, item_id: str, as_json: bool) -> None:
    """Show one memory in full."""
    it = obj.api().get(item_id)
    if as_json:
        emit_json(it.to_json())
        return
    click.echo(it.text)
    click.echo("")
    for label, value in (
        ("id", it.id),
        ("key", it.key or "-"),
        ("type", it.type),
        ("layer", it.layer),
        ("status", it.status),
        ("version", it.version),
        ("pinned", "yes" if it.pinned else "no"),
        ("importance", f"{it.importance:.2f}"),
        ("confidence", f"{it.confidence:.2f}"),
        ("tags", ", ".join(it.tags) or "-"),
        ("created", _ts(it.created_at)),
        ("updated", _ts(it.updated_at)),
        ("valid", f"{_ts(it.valid_from)} .. {_ts(it.valid_to)}"),
        ("used", f"{it.use_count} times, last {_ts(it.last_used_at)}"),
        ("supersedes", it.supersedes or "-"),
        ("superseded by", it.superseded_by or "-"),
        ("embedding", it.embed_model or "(none yet)"),
        (
            "sources",
            "; ".join(" ".join(f"{k}={v}" for k, v in s.to_json().items()) for s in it.sources)
            or "-",
        ),
    ):
        click.echo(f"{label:>13}: {value}")


@main.command()
@click.argument("item_id")
@click.option("--text")
@click.option("--type", "type_", type=click.Choice(MEMORY_TYPES))
@click.option("--layer", type=click.Choice(MEMORY_LAYERS))
@click.option("--tag", "tags", multiple=True, help="replace the tags")
@click.option("--key")
@click.option("--importance", type=click.FloatRange(0, 1))
@click.option("--pin/--unpin", default=None)
@click.option("--reason", default="", help="why (kept in the history)")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def edit(
    obj: Ctx,
    item_id: str,
    text: str | None,
    type_: str | None,
    layer: str | None,
    tags: tuple[str, ...],
    key: str | None,
    importance: float | None,
    pin: bool | None,
    reason: str,
    as_json: bool,
) -> None:
    """Edit a memory; the old version stays in its history."""
    fields: dict[str, Any] = {
        "text": text,
        "type": type_,
        "layer": layer,
        "key": key,
        "importance": importance,
        "pinned": pin,
    }
    if tags:
        fields["tags"] = tags
    if all(v is None for v in fields.values()):
        raise click.UsageError("nothing to change: give --text, --type, --tag, ...")
    it = obj.api().update(item_id, reason=reason, **fields)
    if as_json:
        emit_json(it.to_json())
    else:
        click.echo(f"Updated {short(it.id)} (now version {it.version}).")


def _status_command(name: str, verb: str, help_text: str) -> None:
    @main.command(name, help=help_text)
    @click.argument("item_ids", nargs=-1, required=True)
    @click.option("--reason", default="")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_obj
    def cmd(obj: Ctx, item_ids: tuple[str, ...], reason: str, as_json: bool) -> None:
        api = obj.api()
        fn = api.forget if name == "forget" else api.restore
        items = [fn(i, reason) for i in item_ids]
        if as_json:
            emit_json([i.to_json() for i in items])
        else:
            for it in items:
                click.echo(f"{verb} {short(it.id)}.")


_status_command("forget", "Forgot", "Forget memories (soft delete: `restore` brings them back).")
_status_command("restore", "Restored", "Restore forgotten or archived memories.")


@main.command()
@click.argument("item_ids", nargs=-1, required=True)
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@click.pass_obj
def purge(obj: Ctx, item_ids: tuple[str, ...], yes: bool) -> None:
    """Erase memories for good: text, history and vectors. Cannot be undone."""
    api = obj.api()
    items = [api.get(i) for i in item_ids]
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("purge cannot be undone: add --yes to confirm")
        click.confirm(f"Erase {len(items)} memories for good?", abort=True)
    n = api.purge([i.id for i in items])
    click.echo(f"Erased {n} memories.")


@main.command()
@click.argument("item_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def history(obj: Ctx, item_id: str, as_json: bool) -> None:
    """Show every version of a memory and why it changed."""
    versions = obj.api().history(item_id)
    if as_json:
        emit_json([v.to_json() for v in versions])
        return
    for v in versions:
        why = f" ({v.reason})" if v.reason else ""
        click.echo(f"v{v.version}  {_ts(v.changed_at)}  {v.change:<9} [{v.status}]{why}  {v.text}")


@main.command()
@click.pass_obj
def passphrase(obj: Ctx) -> None:
    """Change the profile's passphrase (the database is not re-encrypted)."""
    from memos_desktop.api import change_passphrase

    old = os.environ.get(PASSPHRASE_ENV) or prompt_passphrase("Current passphrase")
    new = os.environ.get("MEMOS_DESKTOP_NEW_PASSPHRASE")
    if not new:
        if not sys.stdin.isatty():
            raise click.UsageError("set MEMOS_DESKTOP_NEW_PASSPHRASE or run in a terminal")
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
            mark = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}[check["status"]]
            click.echo(f"[{mark}] {check['name']}: {check['detail']}")
    if any(c["status"] == "fail" for c in report["checks"]):
        sys.exit(6)


def _stream_turn(turn: ChatTurn, as_json: bool) -> None:
    for text in turn:
        if not as_json:
            click.echo(text, nl=False)
    if as_json:
        emit_json(
            {
                "answer": turn.answer,
                "conversation_id": turn.conversation_id,
                "kv_restored": turn.kv_restored,
                "used": [u.to_json() for u in turn.used],
                "stats": None if turn.stats is None else turn.stats.__dict__,
            }
        )
    else:
        click.echo("")
        if turn.used:
            ids = ", ".join(f"{short(u.id)} ({u.score:.3f})" for u in turn.used)
            click.echo(f"[memories used: {ids}]", err=True)


@main.command()
@click.argument("question")
@click.option("--temp", "temporary", is_flag=True, help="temporary: remember nothing")
@click.option("--cube")
@click.option("--json", "as_json", is_flag=True, help="answer, used memories and stats as JSON")
@click.pass_obj
def ask(obj: Ctx, question: str, temporary: bool, cube: str | None, as_json: bool) -> None:
    """One answer with memory, streamed to stdout."""
    api = obj.api()
    if cube:
        api.use_cube(cube)
    _stream_turn(api.chat(question, temporary=temporary), as_json)


@main.command()
@click.option(
    "--plain", is_flag=True, hidden=True, help="accepted for older scripts; chat is plain"
)
@click.option("--temp", "temporary", is_flag=True, help="temporary: remember nothing")
@click.pass_obj
def chat(obj: Ctx, plain: bool, temporary: bool) -> None:
    """Chat line by line in this terminal (`memos-desktop` alone opens the app).

    Commands: /remember TEXT, /correct TEXT, /forget ID, /new, /quit."""
    api = obj.api()
    conv: str | None = None
    click.echo("memos-desktop chat. /quit to leave, /new for a new conversation.", err=True)
    while True:
        try:
            line = input("> " if sys.stdin.isatty() else "")
        except EOFError:
            break
        line = line.strip()
        if not line:
            continue
        if line in ("/quit", "/exit"):
            break
        if line == "/new":
            conv = None
            continue
        if line.startswith("/remember "):
            plan, item = api.remember(line.split(" ", 1)[1])
            click.echo(f"[{plan.action}: {short(item.id)}]", err=True)
            continue
        if line.startswith("/correct "):
            new, old = api.correct(line.split(" ", 1)[1])
            was = f" (replaces {short(old.id)})" if old else ""
            click.echo(f"[remembered {short(new.id)}{was}]", err=True)
            continue
        if line.startswith("/forget "):
            click.echo(f"[forgot {short(api.forget(line.split(' ', 1)[1]).id)}]", err=True)
            continue
        turn = api.chat(line, conv, temporary=temporary)
        _stream_turn(turn, as_json=False)
        conv = turn.conversation_id


@main.command()
@click.argument("text")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def correct(obj: Ctx, text: str, as_json: bool) -> None:
    """Correct a memory in plain words ("I moved to Berlin in May")."""
    new, old = obj.api().correct(text)
    if as_json:
        emit_json({"new": new.to_json(), "superseded": old.to_json() if old else None})
    elif old is not None:
        click.echo(f"Remembered {short(new.id)}; it replaces {short(old.id)}: {old.text}")
    else:
        click.echo(f"Remembered {short(new.id)} (nothing earlier matched to replace).")


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
        click.echo(
            f"{r.done} jobs done, {r.failed} failed: {r.added} memories added, "
            f"{r.updated} updated, {r.superseded} superseded, {r.unchanged} already known."
        )


@main.group()
def cubes() -> None:
    """Memory cubes: list, create, rename, delete."""


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


main.add_command(models_group)


if __name__ == "__main__":  # pragma: no cover
    main()
