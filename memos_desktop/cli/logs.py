"""``memos-desktop logs``: past conversations from the command line (list, search, show,
export), through the API.

Design rules: stdout is data (``--json`` for machines; ``export`` writes Markdown or JSON to
stdout or to ``--output``), stderr is narration. A conversation is named by its id or a unique
start of it, as ``logs list`` shows it; ``ask -c`` continues the last one, ``ask --cid ID`` a
given one.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from memos_desktop.cli.common import Ctx, _ts, emit_json, short

if TYPE_CHECKING:
    from memos_desktop.api import Conversation


def _line(c: Conversation, n: int | None = None) -> str:
    count = "" if n is None else f"  ({n} matching)"
    arch = " [archived]" if c.archived else ""
    return f"{short(c.id)}  {_ts(c.updated_at)}  {c.title or '(untitled)'}{arch}{count}"


def _snippet(text: str, needle: str, width: int = 70) -> str:
    flat = " ".join(text.split())
    at = flat.lower().find(needle.lower())
    start = max(0, at - width // 3) if at >= 0 else 0
    piece = flat[start : start + width]
    return ("…" if start else "") + piece + ("…" if start + width < len(flat) else "")


@click.group()
def logs() -> None:
    """Past conversations: list, search, show, export (Markdown or JSON).

    Continue one with `memos-desktop ask -c` (the last) or `ask --cid ID`."""


@logs.command("list")
@click.option("-n", "--limit", default=20, type=click.IntRange(1, 100000), show_default=True)
@click.option("--archived", is_flag=True, help="the archived ones instead")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def list_cmd(obj: Ctx, limit: int, archived: bool, as_json: bool) -> None:
    """The most recent conversations, newest first."""
    convs = obj.api().conversations(archived=archived, limit=limit)
    if as_json:
        emit_json([dataclasses.asdict(c) for c in convs])
        return
    if not convs:
        click.echo("(no conversations)", err=True)
    for c in convs:
        click.echo(_line(c))


@logs.command()
@click.argument("text")
@click.option("-n", "--limit", default=20, type=click.IntRange(1, 100000), show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def search(obj: Ctx, text: str, limit: int, as_json: bool) -> None:
    """Conversations whose title or messages contain TEXT (any case)."""
    found = obj.api().search_conversations(text, limit=limit)
    if as_json:
        emit_json(
            [
                {
                    "conversation": dataclasses.asdict(c),
                    "messages": [dataclasses.asdict(m) for m in msgs],
                }
                for c, msgs in found
            ]
        )
        return
    if not found:
        click.echo(f"(no conversation mentions {text!r})", err=True)
    for c, msgs in found:
        click.echo(_line(c, len(msgs)))
        for m in msgs[:3]:
            click.echo(f"    {m.role}: {_snippet(m.content, text)}")


@logs.command()
@click.argument("conversation")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def show(obj: Ctx, conversation: str, as_json: bool) -> None:
    """One conversation's messages (CONVERSATION: its id or the start of it)."""
    api = obj.api()
    conv = api.find_conversation(conversation)
    if as_json:
        emit_json(api.export_json(conv.id))
        return
    click.echo(_line(conv))
    for m in api.messages(conv.id):
        who = "you" if m.role == "user" else "assistant"
        click.echo(f"\n[{_ts(m.created_at)}] {who}:")
        click.echo(m.content)


@logs.command()
@click.argument("conversation", required=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "json"]),
    default="markdown",
    show_default=True,
)
@click.option("--all", "every", is_flag=True, help="every conversation (JSON: a list)")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write to this file instead of stdout (it holds the conversation in plain text)",
)
@click.pass_obj
def export(obj: Ctx, conversation: str | None, fmt: str, every: bool, output: Path | None) -> None:
    """A conversation as Markdown (with the memories each answer used) or JSON.

    The export is plain text: keep the file somewhere you trust."""
    api = obj.api()
    if every == bool(conversation):
        raise click.UsageError("give a CONVERSATION id, or --all")
    ids = (
        [c.id for c in api.conversations(limit=100000)]
        if every
        else [api.find_conversation(conversation).id]
    )
    if fmt == "json":
        data = [api.export_json(i) for i in ids]
        text = json.dumps(data if every else data[0], indent=2, ensure_ascii=False) + "\n"
    else:
        text = "\n\n".join(api.export_markdown(i) for i in ids) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    # Owner-only from the first byte: the file holds the conversation in the clear.
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_TRUNC
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    click.echo(f"Wrote {len(ids)} conversation(s) to {output}", err=True)


COMMANDS = (logs,)
