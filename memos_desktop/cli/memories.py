"""The memory commands: add, search, list, show, edit, forget, restore, purge, history."""

from __future__ import annotations

import sys
from typing import Any, cast

import click

from memos_desktop.api.types import (
    LISTED_TYPES,
    MEMORY_LAYERS,
    MEMORY_TYPES,
    MemoryLayer,
    MemoryType,
    NewMemory,
    Source,
)
from memos_desktop.cli.common import (
    Ctx,
    _ts,
    emit_json,
    filter_options,
    make_filters,
    print_items,
    read_stdin_text,
    short,
)


@click.command()
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
        text = read_stdin_text()
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


@click.command()
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


@click.command("list")
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
    """List memories, newest first. The raw conversation episodes are left out unless asked
    for (--type episode)."""
    f = make_filters(types or LISTED_TYPES, layers, statuses, tags, since, until)
    items = obj.api().list(f, limit=limit, offset=offset, cube=cube)
    if as_json:
        emit_json([i.to_json() for i in items])
    else:
        print_items(items)


@click.command()
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


@click.command()
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


def _status_command(name: str, verb: str, help_text: str) -> click.Command:
    @click.command(name, help=help_text)
    @click.argument("item_ids", nargs=-1, required=True)
    @click.option("--reason", default="")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_obj
    def cmd(obj: Ctx, item_ids: tuple[str, ...], reason: str, as_json: bool) -> None:
        api = obj.api()
        items = [api.forget(i, reason) for i in item_ids]
        if as_json:
            emit_json([i.to_json() for i in items])
        else:
            for it in items:
                click.echo(f"{verb} {short(it.id)}.")

    return cmd


forget = _status_command(
    "forget", "Forgot", "Forget memories (soft delete: `restore` brings them back)."
)


@click.command()
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


@click.command()
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


# `restore` (memories, or a backup) is in cli/backups.py.
COMMANDS = (add, search, list_, show, edit, forget, purge, history)
