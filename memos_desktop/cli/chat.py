"""``ask`` (one answer) and ``chat`` (line by line in this terminal).

Design rules:
- A slash command that fails (``/forget bogus``, an empty ``/remember``) is reported on
  stderr and the chat goes on; only text sent as a message reaches the model.
- A line that is not text (invalid UTF-8) ends the chat with exit 9 and a message (issue 15),
  like every other command given input that is not text.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from memos_desktop.cli.common import Ctx, emit_json, short
from memos_desktop.errors import AmbiguousError, MemosError, decode_text, require_text

if TYPE_CHECKING:  # the API is imported when first used
    from memos_desktop.api import ChatTurn, MemosAPI

SLASH_HELP = "/remember TEXT, /correct TEXT, /forget ID, /new, /help, /quit"


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


@click.command()
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


def _read_line(n: int) -> str | None:
    """The next line of input as text (None at the end); NotTextError when it is not."""
    if sys.stdin.isatty():
        try:
            line = input("> ")
        except EOFError:
            return None
        except UnicodeDecodeError as exc:
            decode_text(bytes(exc.object), f"line {n} of the input")  # raises NotTextError
            raise
        return require_text(line, f"line {n} of the input")
    raw = sys.stdin.buffer.readline()
    if not raw:
        return None
    return decode_text(raw, f"line {n} of the input")


def _slash(api: MemosAPI, line: str) -> str | None:
    """Run a slash command; its report, or None when ``line`` is a message for the model.
    Raises MemosError (or UsageError) when the command fails."""
    cmd, _, arg = line.partition(" ")
    arg = arg.strip()
    needs_arg: dict[str, Callable[[str], str]] = {
        "/remember": lambda a: "[{}: {}]".format(*_remembered(api, a)),
        "/correct": lambda a: _corrected(api, a),
        "/forget": lambda a: f"[forgot {short(api.forget(a).id)}]",
    }
    if cmd in needs_arg:
        if not arg:
            raise click.UsageError(f"{cmd} needs {'an id' if cmd == '/forget' else 'some text'}")
        return needs_arg[cmd](arg)
    if cmd == "/help":
        return f"[commands: {SLASH_HELP}]"
    if cmd[1:].isalpha() and cmd[1:].islower():
        raise click.UsageError(f"unknown command {cmd}; commands: {SLASH_HELP}")
    return None  # "/etc/hosts is ..." is a message


def _remembered(api: MemosAPI, text: str) -> tuple[str, str]:
    plan, item = api.remember(text)
    return plan.action, short(item.id)


def _corrected(api: MemosAPI, text: str) -> str:
    try:
        new, old = api.correct(text)
    except AmbiguousError as exc:
        choice = _choose(exc)
        if choice is None:
            return "[nothing changed]"
        new, old = api.correct(text, target=choice or None, replace_nothing=choice == "")
    was = f" (replaces {short(old.id)}: {old.text})" if old else ""
    return f"[remembered {short(new.id)}{was}]"


def _choose(exc: AmbiguousError) -> str | None:
    """Ask which candidate a correction replaces: its id, "" for none, None to cancel."""
    click.echo("[which memory does this replace?]", err=True)
    for n, (_, text) in enumerate(exc.candidates, 1):
        click.echo(f"  {n}. {text}", err=True)
    click.echo("  0. none of them (keep them all)", err=True)
    answer = _read_line(0)
    answer = (answer or "").strip()
    if answer == "0":
        return ""
    if answer.isdigit() and 1 <= int(answer) <= len(exc.candidates):
        return exc.candidates[int(answer) - 1][0]
    return None


@click.command()
@click.option(
    "--plain", is_flag=True, hidden=True, help="accepted for older scripts; chat is plain"
)
@click.option("--temp", "temporary", is_flag=True, help="temporary: remember nothing")
@click.pass_obj
def chat(obj: Ctx, plain: bool, temporary: bool) -> None:
    """Chat line by line in this terminal (`memos-desktop` alone opens the app).

    Commands: /remember TEXT, /correct TEXT, /forget ID, /new, /help, /quit."""
    api = obj.api()
    conv: str | None = None
    click.echo("memos-desktop chat. /quit to leave, /new for a new conversation.", err=True)
    n = 0
    while True:
        n += 1
        line = _read_line(n)
        if line is None:
            break
        line = line.strip()
        if not line:
            continue
        if line in ("/quit", "/exit"):
            break
        if line == "/new":
            conv = None
            continue
        if line.startswith("/"):
            try:
                report = _slash(api, line)
            except click.UsageError as exc:
                click.echo(f"error: {exc.format_message()}", err=True)
                continue
            except MemosError as exc:
                click.echo(f"error: {exc}", err=True)
                continue
            if report is not None:
                click.echo(report, err=True)
                continue
        turn = api.chat(line, conv, temporary=temporary)
        _stream_turn(turn, as_json=False)
        conv = turn.conversation_id


COMMANDS = (ask, chat)
