"""The CLI habits of issue 13 through the real command line (click's runner on the real main
group, a real encrypted profile): stdin as context, -m, --system, -o, -c/--cid, logs, and
multi-line input in `chat --plain`. The model is the tiny GGUF, served by a real
``llama_cpp.server`` on 127.0.0.1 (chat and embeddings) or loaded in-process for `-m PATH`."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from memos_desktop.cli import main
from tests.conftest import PASSPHRASE
from tests.fixtures.openai_server import Server, closed_port, serve


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def ok(*args: str, input: str | None = None) -> Result:
    r = run(*args, input=input)
    assert r.exit_code == 0, r.output + (r.stderr if r.stderr_bytes else "")
    return r


def ask_json(*args: str, input: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ok("ask", *args, "--json", input=input).stdout)
    return data


@pytest.fixture(scope="module")
def server(tiny_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("oai-cli") / "server.log"
    with serve(tiny_path, log) as s:
        yield s


def write_config(home: Path, text: str) -> None:
    cfg = home / "config" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(text, encoding="utf-8")


@pytest.fixture
def profile(server: Server, isolated_home: Path) -> Path:
    """A profile whose chat model and embedder are the server's (so no local model loads)."""
    write_config(
        isolated_home,
        '[models]\nchat = "openai:tiny"\nembedding = "openai:tiny"\n'
        f'[openai]\nbase_url = "{server.base_url}"\nn_ctx = {server.n_ctx}\n',
    )
    ok("init")
    return isolated_home


def conversation(cid: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ok("logs", "show", cid, "--json").stdout)
    return data


def test_stdin_is_the_context_of_the_question(profile: Path) -> None:
    notes = "Meeting notes: the zebra code is 4417.\nBring the blue folder.\n"
    a = ask_json("summarise", "-o", "max_tokens=4", input=notes)
    conv = conversation(a["conversation_id"])
    assert conv["conversation"]["title"] == "summarise"  # the question, not the notes
    user = conv["messages"][0]
    assert user["role"] == "user"
    assert user["content"] == notes.rstrip() + "\n\nsummarise"
    assert conv["messages"][1]["content"] == a["answer"]
    # Only stdin, no argument: what is piped in is the question.
    b = ask_json("-o", "max_tokens=3", input="What is the zebra code?\n")
    assert conversation(b["conversation_id"])["messages"][0]["content"] == (
        "What is the zebra code?\n"
    )
    r = run("ask", input="")
    assert r.exit_code == 2 and "give a QUESTION" in r.stderr


def test_a_real_pipe_into_a_real_process(profile: Path, tmp_path: Path) -> None:
    """`cat notes.txt | memos-desktop ask "summarise"` as a shell runs it: a real process
    whose stdin is a pipe from another one."""
    notes = tmp_path / "notes.txt"
    notes.write_text("The locker code is 8812.\n", encoding="utf-8")
    root = Path(__file__).resolve().parents[2]
    cmd = (
        f"cat {shlex.quote(str(notes))} | {shlex.quote(sys.executable)} -m memos_desktop.cli "
        "ask summarise --json -o max_tokens=3"
    )
    p = subprocess.run(
        ["sh", "-c", cmd],
        cwd=root,
        env=dict(os.environ, MEMOS_DESKTOP_PASSPHRASE=PASSPHRASE),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    answer = json.loads(p.stdout)
    user = conversation(answer["conversation_id"])["messages"][0]
    assert user["content"] == "The locker code is 8812.\n\nsummarise"


def test_options_set_the_answer_budget_and_bad_ones_are_refused(profile: Path) -> None:
    a = ask_json("Say something", "-o", "max_tokens=3", "-o", "temperature=0")
    assert a["stats"]["completion_tokens"] <= 3
    b = ask_json("Say something", "-o", "max_tokens=12", "-o", "temperature=0")
    assert b["stats"]["completion_tokens"] > 3  # the random model runs to the budget
    before = ok("logs", "list", "--json").stdout
    for bad, says in [
        ("colour=blue", "unknown option 'colour'"),
        ("max_tokens=lots", "must be a whole number"),
        ("temperature=-1", "between 0 and 2"),
    ]:
        r = run("ask", "hi", "-o", bad)
        assert r.exit_code == 9, r.output
        assert says in r.stderr and "->" in r.stderr
    assert ok("logs", "list", "--json").stdout == before  # nothing recorded


def test_system_prompt_is_sent(profile: Path) -> None:
    # The server's answer is noise; what shows --system took effect is the prompt size.
    a = ask_json("hello", "-o", "max_tokens=2")
    b = ask_json("hello", "-o", "max_tokens=2", "--system", "Answer in French. " * 20)
    assert b["stats"]["prompt_tokens"] > a["stats"]["prompt_tokens"] + 40


def test_continue_the_last_conversation_or_a_given_one(profile: Path) -> None:
    first = ask_json("My first question", "-o", "max_tokens=3")
    cid = first["conversation_id"]
    again = ask_json("And a follow-up", "-c", "-o", "max_tokens=3")
    assert again["conversation_id"] == cid
    other = ask_json("Something else entirely", "-o", "max_tokens=3")
    assert other["conversation_id"] != cid
    # --cid with the short id logs list shows: back to the first one.
    third = ask_json("Third in the first", "--cid", cid[:8], "-o", "max_tokens=3")
    assert third["conversation_id"] == cid
    texts = [m["content"] for m in conversation(cid)["messages"] if m["role"] == "user"]
    assert texts == ["My first question", "And a follow-up", "Third in the first"]
    r = run("ask", "x", "--cid", "ffffffffffff")
    assert r.exit_code == 4 and "no conversation" in r.stderr
    r = run("ask", "x", "-c", "--temp")
    assert r.exit_code == 2


def test_continue_with_nothing_to_continue(profile: Path) -> None:
    r = run("ask", "hello", "-c")
    assert r.exit_code == 4 and "no conversation to continue" in r.stderr


def test_model_per_call_a_gguf_path_or_a_server_model(
    profile: Path, tiny_path: Path, server: Server, isolated_home: Path
) -> None:
    a = ask_json("hi", "-m", str(tiny_path), "-o", "max_tokens=3")
    assert a["stats"]["prefix_tokens_reused"] >= 0 and a["answer"] is not None
    conv = conversation(a["conversation_id"])
    assert conv["messages"][1]["content"] == a["answer"]
    # In-process llama.cpp keeps activation memory; the server model does not.
    assert a["kv_restored"] is False
    again = ask_json("hi again", "-m", str(tiny_path), "-o", "max_tokens=3")
    assert again["kv_restored"] is True  # the same prefix's KV state, restored
    b = ask_json("hi", "-m", "openai:tiny", "-o", "max_tokens=3")
    assert b["kv_restored"] is False
    # -m is for this call only: the settings file still names the server model.
    cfg = (isolated_home / "config" / "config.toml").read_text()
    assert 'chat = "openai:tiny"' in cfg
    r = run("ask", "hi", "-m", "no-such-model")
    assert r.exit_code == 8 and "no-such-model" in r.stderr
    r = run("ask", "hi", "-m", "openai:gpt-9")
    assert r.exit_code == 8 and "does not serve 'gpt-9'" in r.stderr


def test_no_server_is_a_clear_error_from_ask(profile: Path, isolated_home: Path) -> None:
    port = closed_port()
    write_config(
        isolated_home,
        '[models]\nchat = "openai:tiny"\nembedding = "openai:tiny"\n'
        f'[openai]\nbase_url = "http://127.0.0.1:{port}"\n',
    )
    r = run("ask", "hello")
    assert r.exit_code == 8
    assert "searching by words only" in r.stderr  # the server's embedder is missing too
    assert f"no server at http://127.0.0.1:{port}: start it or change [openai] base_url" in (
        r.stderr
    )
    r = ok("models", "list")
    assert "openai:" not in r.stdout and "no server at" in r.stderr


def test_models_list_shows_the_servers_models(profile: Path) -> None:
    r = ok("models", "list")
    line = next(ln for ln in r.stdout.splitlines() if "openai:tiny" in ln)
    assert line.startswith("*") and "server" in line  # the active chat model
    rows = json.loads(ok("models", "list", "--json").stdout)
    served = [m for m in rows if m.get("source") == "server"]
    assert [m["id"] for m in served] == ["openai:tiny"] and served[0]["active"]
    ok("models", "use", "openai:tiny")
    r = run("models", "use", "openai:nope")
    assert r.exit_code == 8 and "does not serve" in r.stderr


def test_logs_list_search_show_export(profile: Path, tmp_path: Path) -> None:
    a = ask_json("Where did I park the bicycle?", "-o", "max_tokens=3")
    b = ask_json("Plan the garden for spring", "-o", "max_tokens=3")
    listed = ok("logs", "list").stdout.splitlines()
    assert [ln.split()[0] for ln in listed] == [b["conversation_id"][:8], a["conversation_id"][:8]]
    assert "Plan the garden for spring" in listed[0]
    found = json.loads(ok("logs", "search", "BICYCLE", "--json").stdout)
    assert [f["conversation"]["id"] for f in found] == [a["conversation_id"]]
    assert "bicycle" in ok("logs", "search", "bicycle").stdout
    r = ok("logs", "search", "submarine")
    assert r.stdout == "" and "no conversation mentions" in r.stderr
    shown = ok("logs", "show", a["conversation_id"][:8]).stdout
    assert "Where did I park the bicycle?" in shown
    md = ok("logs", "export", a["conversation_id"]).stdout
    assert md.startswith("# Where did I park the bicycle?")
    assert "## You" in md and "## Assistant" in md
    data = json.loads(ok("logs", "export", b["conversation_id"], "--format", "json").stdout)
    assert data["conversation"]["id"] == b["conversation_id"]
    assert [m["role"] for m in data["messages"]] == ["user", "assistant"]
    out = tmp_path / "all.json"
    out.write_text("old", encoding="utf-8")
    out.chmod(0o644)
    ok("logs", "export", "--all", "--format", "json", "--output", str(out))
    every = json.loads(out.read_text())
    assert {d["conversation"]["id"] for d in every} == {
        a["conversation_id"],
        b["conversation_id"],
    }
    assert out.stat().st_mode & 0o077 == 0  # plain text: the owner's only
    r = run("logs", "export")
    assert r.exit_code == 2
    r = run("logs", "show", "zzzz")
    assert r.exit_code == 4


def test_chat_plain_takes_multi_line_messages(profile: Path) -> None:
    script = 'first line \\\nsecond line\n"""\nblock one\n\nblock two\n"""\none line\n/quit\n'
    ok("chat", "--plain", "-o", "max_tokens=2", input=script)
    convs = json.loads(ok("logs", "list", "--json").stdout)
    assert len(convs) == 1
    users = [m["content"] for m in conversation(convs[0]["id"])["messages"] if m["role"] == "user"]
    assert users == ["first line \nsecond line", "block one\n\nblock two", "one line"]
    assert "backslash" in ok("chat", "--help").stdout
