"""Input that is not text, and the line chat's slash commands (issue 15, rows 7 and 11): exit
9 with a message, never a traceback, in every command; `chat --plain` reports a failed slash
command and goes on, and an empty /remember is refused instead of sent to the model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.faults.conftest import cli, ok

BAD = b"caf\xe9 \xff\xfe au lait"  # Latin-1 and stray bytes: not UTF-8


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        (("add", "-"), BAD),
        (("add", BAD), None),
        (("search", BAD), None),
        (("list", "--tag", BAD), None),
        (("chat", "--plain"), b"/help\n" + BAD + b"\n"),
    ],
    ids=["add stdin", "add arg", "search arg", "list option", "chat stdin"],
)
def test_input_that_is_not_text_exits_9_with_a_message(
    pdir: Path, args: tuple[str | bytes, ...], stdin: bytes | None
) -> None:
    before = json.loads(ok("list", "--json").out)
    r = cli(*args, input=stdin)
    assert r.code == 9, r.text
    assert "is not valid UTF-8 text" in r.err or "is not valid text" in r.err
    assert "nothing was changed" in r.err
    assert json.loads(ok("list", "--json").out) == before


def test_a_profile_name_that_is_not_text_exits_9(pdir: Path) -> None:
    r = cli("--profile", b"d\xe9faut", "list")
    assert r.code == 9 and "argument 2" in r.err


def test_chat_reports_failed_slash_commands_and_goes_on(pdir: Path) -> None:
    r = cli(
        "chat",
        "--plain",
        input="/forget bogus\n/remember\n/remember    \n/frobnicate now\n"
        "/remember Ada keeps bees\n/help\n/quit\n",
    )
    assert r.code == 0, r.text
    assert "no memory" in r.err  # /forget bogus: reported
    assert r.err.count("/remember needs some text") == 2
    assert "unknown command /frobnicate" in r.err
    assert "[add:" in r.err and "[commands:" in r.err  # the chat went on after the failures
    assert [i["text"] for i in json.loads(ok("list", "--json").out)] == ["Ada keeps bees"]
    # nothing went to the model: no conversation was recorded
    assert "conversation" not in r.out
