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
from typing import TYPE_CHECKING, Any

import click

from memos_desktop.cli.common import Ctx, emit_json, read_stdin_text, short
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


OPTIONS_HELP = "max_tokens, temperature, top_p, top_k, min_p, repeat_penalty, seed"


def model_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``-m``, ``--system`` and ``-o``: the model and its settings for this call."""
    opts = [
        click.option(
            "-m",
            "--model",
            help="the chat model for this call: a catalog id, a .gguf path, or openai:NAME "
            "(a model of the [openai] server)",
        ),
        click.option("--system", default="", help="an instruction added to the system prompt"),
        click.option(
            "-o",
            "--option",
            "options",
            multiple=True,
            metavar="NAME=VALUE",
            help=f"a sampling option, repeatable: {OPTIONS_HELP}",
        ),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


@click.command()
@click.argument("question", required=False)
@model_options
@click.option("-c", "--continue", "continue_", is_flag=True, help="continue the last conversation")
@click.option("--cid", help="continue this conversation (its id, or the start of it)")
@click.option("--temp", "temporary", is_flag=True, help="temporary: remember nothing")
@click.option("--cube")
@click.option("--json", "as_json", is_flag=True, help="answer, used memories and stats as JSON")
@click.pass_obj
def ask(
    obj: Ctx,
    question: str | None,
    model: str | None,
    system: str,
    options: tuple[str, ...],
    continue_: bool,
    cid: str | None,
    temporary: bool,
    cube: str | None,
    as_json: bool,
) -> None:
    """One answer with memory, streamed to stdout.

    Text piped in is sent with the question as its context
    (`cat notes.txt | memos-desktop ask "summarise"`); with no QUESTION, what is piped in is
    the question. Memories are searched with the question alone."""
    context = "" if sys.stdin.isatty() else read_stdin_text()
    if not question:
        question, context = context, ""
    if not question.strip():
        raise click.UsageError("give a QUESTION, or pipe it in")
    if temporary and (continue_ or cid):
        raise click.UsageError("--temp remembers nothing, so it cannot continue a conversation")
    if model:
        obj.use_chat_model(model)
    api = obj.api()
    conv = None
    if continue_ or cid:
        found = api.find_conversation(cid)
        conv = found.id
        if found.cube_id and not cube:
            api.use_cube(found.cube_id)
    if cube:
        api.use_cube(cube)
    turn = api.chat(
        question, conv, temporary=temporary, system=system, context=context, options=options
    )
    _stream_turn(turn, as_json)


def _read_line(n: int, prompt: str = "> ") -> str | None:
    """The next line of input as text (None at the end); NotTextError when it is not."""
    if sys.stdin.isatty():
        try:
            line = input(prompt)
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


CONTINUE_LINE = "\\"
BLOCK = '"""'


def _read_message(n: int) -> tuple[str | None, int]:
    """The next message (None at the end) and the line count so far. A line ending in a
    backslash goes on on the next line; a line that is just \"\"\" starts a block that the
    next such line ends. The lines are joined with newlines."""
    line = _read_line(n)
    if line is None:
        return None, n
    text = line.rstrip("\r\n")
    if text.strip() == BLOCK:
        parts: list[str] = []
        while True:
            n += 1
            more = _read_line(n, "... ")
            if more is None or more.rstrip("\r\n").strip() == BLOCK:
                return "\n".join(parts), n
            parts.append(more.rstrip("\r\n"))
    parts = []
    while text.endswith(CONTINUE_LINE):
        parts.append(text[: -len(CONTINUE_LINE)])
        n += 1
        more = _read_line(n, "... ")
        if more is None:
            text = ""
            break
        text = more.rstrip("\r\n")
    parts.append(text)
    return "\n".join(parts), n


@click.command()
@click.option("--plain", is_flag=True, help="line by line in this terminal (the default here)")
@model_options
@click.option("-c", "--continue", "continue_", is_flag=True, help="continue the last conversation")
@click.option("--cid", help="continue this conversation (its id, or the start of it)")
@click.option("--temp", "temporary", is_flag=True, help="temporary: remember nothing")
@click.pass_obj
def chat(
    obj: Ctx,
    plain: bool,
    model: str | None,
    system: str,
    options: tuple[str, ...],
    continue_: bool,
    cid: str | None,
    temporary: bool,
) -> None:
    """Chat line by line in this terminal (`memos-desktop` alone opens the app).

    \b
    Multi-line messages: end a line with a backslash to go on on the next one,
    or put the message between two lines that are just \"\"\".
    Commands: /remember TEXT, /correct TEXT, /forget ID, /new, /help, /quit."""
    if temporary and (continue_ or cid):
        raise click.UsageError("--temp remembers nothing, so it cannot continue a conversation")
    if model:
        obj.use_chat_model(model)
    api = obj.api()
    conv: str | None = None
    if continue_ or cid:
        found = api.find_conversation(cid)
        conv = found.id
        if found.cube_id:
            api.use_cube(found.cube_id)
    click.echo("memos-desktop chat. /quit to leave, /new for a new conversation.", err=True)
    n = 0
    while True:
        n += 1
        line, n = _read_message(n)
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
        if line.startswith("/") and "\n" not in line:
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
        turn = api.chat(line, conv, temporary=temporary, system=system, options=options)
        _stream_turn(turn, as_json=False)
        conv = turn.conversation_id


COMMANDS = (ask, chat)
