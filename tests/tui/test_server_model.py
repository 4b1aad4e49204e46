"""The terminal app on a model of a real OpenAI-compatible server (``llama_cpp.server`` on
127.0.0.1 serving the tiny GGUF): the models screen lists the server's models, and the status
bar says where prompts go and that activation memory does not apply."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import DataTable

from memos_desktop.config import ModelSettings, OpenAISettings, Paths, Settings
from memos_desktop.engines.base import Embedder
from memos_desktop.tui.answer import AssistantMessage
from memos_desktop.tui.app import MemosApp
from memos_desktop.tui.chat import ChatScreen, PromptInput
from memos_desktop.tui.widgets import StatusBar
from tests.fixtures.openai_server import Server, serve
from tests.tui.conftest import AppFactory, keep_toasts, wait_for


@pytest.fixture(scope="module")
def server(tiny_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(tiny_path, tmp_path_factory.mktemp("oai-tui") / "server.log") as s:
        yield s


def server_app(profile: Paths, server: Server, embedder: Embedder) -> MemosApp:
    settings = Settings(
        models=ModelSettings(chat="openai:tiny"),
        openai=OpenAISettings(base_url=server.base_url, n_ctx=server.n_ctx),
    )
    # The real engine factory: the app builds the server engine from the settings.
    app = MemosApp(profile, settings, "default", embedder_factory=lambda: embedder)
    keep_toasts(app)
    return app


def bar_text(app: MemosApp) -> str:
    return str(app.screen.query_one(StatusBar).render())


async def test_the_app_chats_with_a_server_model_and_lists_the_servers_models(
    profile: Paths, server: Server, embedder: Embedder
) -> None:
    app = server_app(profile, server, embedder)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(pilot, lambda: app.status.state == "ready")
        text = bar_text(app)
        assert "openai:tiny" in text
        assert f"local server ({server.base_url})" in text and "no activation memory" in text
        assert "leaves this machine" not in text
        await pilot.press("f5")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ModelsScreen")
        table = app.screen.query_one(DataTable)
        await wait_for(
            pilot,
            lambda: any("openai:tiny" in str(table.get_row_at(i)) for i in range(table.row_count)),
        )
        row = next(
            [str(c) for c in table.get_row_at(i)]
            for i in range(table.row_count)
            if "openai:tiny" in str(table.get_row_at(i))
        )
        assert row[0] == "▶" and "server" in row  # the active model, on the server
        assert "1 on the server" in str(app.screen.query_one("#models-count").render())


async def test_a_remote_server_is_shown_as_leaving_this_machine(
    profile: Paths, make_app: AppFactory
) -> None:
    settings = Settings(
        models=ModelSettings(chat="openai:big"),
        openai=OpenAISettings(base_url="http://192.0.2.7:8000", allow_remote=True),
    )
    app = make_app(settings)  # the tiny local engine stands in: no connection is made
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(pilot, lambda: app.status.state == "ready")
        text = bar_text(app)
        assert "leaves this machine (http://192.0.2.7:8000)" in text
        assert "no activation memory" in text


async def test_escape_cancels_a_server_answer_and_the_next_one_streams(
    profile: Paths, server: Server, embedder: Embedder
) -> None:
    app = server_app(profile, server, embedder)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(pilot, lambda: app.status.state == "ready")
        session = app.session
        assert session is not None
        # Hold the session lock so the answer cannot finish before Escape (as in test_chat).
        with session.lock:
            await pilot.press(*"tell me a long story", "enter")
            assert app.status.state == "generating"
            await pilot.press("escape")
        await wait_for(pilot, lambda: app.status.state == "ready")
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        assert screen.query_one(PromptInput).value == "tell me a long story"
        assert screen.query_one(AssistantMessage).has_class("cancelled")
        conv = screen.conversation_id
        assert conv is not None
        msgs = session.api.messages(conv)
        assert msgs[-1].meta.get("cancelled") is True
        assert msgs[-1].meta["stats"]["finish_reason"] == "cancelled"
        # The stream was closed: the server answers the next message.
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(screen.query(AssistantMessage)) == 2)
        await wait_for(pilot, lambda: app.status.state == "ready")
        last = session.api.messages(conv)[-1]
        assert last.role == "assistant" and not last.meta.get("cancelled")
