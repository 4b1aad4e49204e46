"""The chat screen, driven by Pilot on a real encrypted profile with the tiny GGUF model."""

from __future__ import annotations

from textual.widgets import Static

from memos_desktop.api import MemoryItem, MemosAPI, SearchFilters
from memos_desktop.tui.answer import AssistantMessage
from memos_desktop.tui.chat import ChatScreen, PromptInput
from memos_desktop.tui.memories import MemoryDetail
from memos_desktop.tui.widgets import UsedMemories, UserMessage
from tests.tui.conftest import AppFactory, wait_for


def chat_screen(app) -> ChatScreen:  # type: ignore[no-untyped-def]
    screen = app.screen
    assert isinstance(screen, ChatScreen)
    return screen


async def test_message_streams_an_answer_and_records_the_exchange(profile, make_app: AppFactory):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.status.state == "ready")
        await pilot.press(*"my cat is called Miso", "enter")
        await wait_for(pilot, lambda: app.status.state == "ready" and app.status.ttft_s)
        screen = chat_screen(app)
        users = list(screen.query(UserMessage))
        answers = list(screen.query(AssistantMessage))
        assert [str(u.render()) for u in users] == ["my cat is called Miso"]
        assert len(answers) == 1 and answers[0].source.strip() not in ("", "…")
        assert app.status.kv == "miss" and app.status.context_used > 0
        conv_id = screen.conversation_id
        assert conv_id is not None
        api: MemosAPI = app.session.api  # type: ignore[union-attr]
        msgs = api.messages(conv_id)
        assert [m.role for m in msgs] == ["user", "assistant"]
        assert msgs[1].content == answers[0].source
        # The exchange is stored as a memory at once, and the next answer can use it.
        assert any("Miso" in it.text for it in api.list())
        await pilot.press(*"what is my cat called", "enter")
        await wait_for(pilot, lambda: len(screen.query(AssistantMessage)) == 2)
        await wait_for(pilot, lambda: app.status.state == "ready")
        used = screen.query_one(UsedMemories)
        assert used.option_count >= 1
        assert any(
            "Miso" in str(used.get_option_at_index(i).prompt) for i in range(used.option_count)
        )
        assert app.status.kv == "hit"  # the stable prefix came from activation memory
        # Selecting a used memory opens it, with its source.
        await pilot.press("ctrl+g")
        miso = next(
            i for i in range(used.option_count) if "Miso" in str(used.get_option_at_index(i).prompt)
        )
        used.highlighted = miso
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MemoryDetail))
        fields = app.screen.query_one("#detail-fields", Static)
        await wait_for(pilot, lambda: "Miso" in str(fields.render()))
        assert "conversation" in str(fields.render())


async def test_escape_cancels_and_puts_the_prompt_back(profile, make_app: AppFactory):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.status.state == "ready")
        # Hold the session lock so the answer cannot finish before Escape: the worker waits
        # for it, then the engine sees the cancelled token at its first step.
        session = app.session
        assert session is not None
        with session.lock:
            await pilot.press(*"tell me a long story", "enter")
            assert app.status.state == "generating"
            await pilot.press("escape")
        await wait_for(pilot, lambda: app.status.state == "ready")
        screen = chat_screen(app)
        assert screen.query_one(PromptInput).value == "tell me a long story"
        assert screen.query_one(AssistantMessage).has_class("cancelled")


async def test_a_stopped_message_sent_again_leaves_one_memory(profile, make_app: AppFactory):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.status.state == "ready")
        session = app.session
        assert session is not None
        with session.lock:
            await pilot.press(*"my locker code is 4512", "enter")
            await pilot.press("escape")
        await wait_for(pilot, lambda: app.status.state == "ready")
        screen = chat_screen(app)
        assert screen.query_one(PromptInput).value == "my locker code is 4512"
        await pilot.press("enter")  # sent again, as it was put back
        await wait_for(pilot, lambda: len(screen.query(AssistantMessage)) == 2)
        await wait_for(pilot, lambda: app.status.state == "ready")
        api = session.api
        conv = screen.conversation_id
        assert conv is not None
        msgs = api.messages(conv)
        assert [m.role for m in msgs] == ["user", "assistant"] * 2  # both exchanges are kept
        stopped, again = {msgs[0].id, msgs[1].id}, {msgs[2].id, msgs[3].id}

        def cited(it: MemoryItem) -> set[str]:
            return {s.message_id for s in it.sources if s.message_id}

        # What the message left in memory comes from the second sending only...
        kept = [it for it in api.list() if "4512" in it.text]
        assert kept and all(cited(it) <= again for it in kept)
        # ...and what the stopped one had stored is forgotten, with the reason.
        gone = api.list(SearchFilters(statuses=("deleted",)))
        assert gone and all(cited(it) <= stopped for it in gone)
        assert len(gone) == len(kept)
        assert api.history(gone[0].id)[-1].reason == "the stopped message was sent again"


async def test_ctrl_n_starts_with_an_empty_prompt(profile, make_app: AppFactory):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.status.state == "ready")
        session = app.session
        assert session is not None
        screen = chat_screen(app)
        prompt = screen.query_one(PromptInput)
        # A stopped question is put back in the prompt; a new chat does not keep it.
        with session.lock:
            await pilot.press(*"tell me a long story", "enter")
            await pilot.press("escape")
        await wait_for(pilot, lambda: app.status.state == "ready")
        assert prompt.value == "tell me a long story"
        await pilot.press("ctrl+n")
        assert prompt.value == "" and screen.conversation_id is None
        # Nor a draft typed but not sent.
        await pilot.press(*"half a thought")
        await pilot.press("ctrl+n")
        assert prompt.value == ""
        # Nor the question of an answer stopped by the new chat itself.
        with session.lock:
            await pilot.press(*"another question", "enter")
            await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: app.status.state == "ready")
        assert prompt.value == "" and list(screen.query(UserMessage)) == []
        await pilot.press("up")  # the prompt history is still there
        assert prompt.value == "another question"


async def test_a_new_chat_while_an_answer_streams_leaves_it_behind(profile, make_app: AppFactory):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.status.state == "ready")
        session = app.session
        assert session is not None
        with session.lock:
            await pilot.press(*"first question", "enter")
            await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: app.status.state == "ready")
        screen = chat_screen(app)
        # The old answer finished (stopped) elsewhere: this new chat stays empty and new.
        assert screen.conversation_id is None
        assert list(screen.query(AssistantMessage)) == []
        assert list(screen.query(UserMessage)) == []
        await pilot.press(*"second question", "enter")
        await wait_for(pilot, lambda: len(screen.query(AssistantMessage)) == 1)
        await wait_for(pilot, lambda: app.status.state == "ready")
        api = session.api
        assert len(api.conversations()) == 2  # the stopped one is kept, marked cancelled
        assert screen.conversation_id != api.conversations()[-1].id


async def test_temporary_chat_writes_nothing(profile, make_app: AppFactory):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.status.state == "ready")
        await pilot.press("ctrl+t")
        assert app.status.temporary
        await pilot.press(*"a secret that must not be kept", "enter")
        await wait_for(pilot, lambda: app.status.state == "ready" and app.status.ttft_s)
        api: MemosAPI = app.session.api  # type: ignore[union-attr]
        assert api.conversations() == []
        assert api.list() == []
        assert chat_screen(app).conversation_id is None


async def test_prompt_history_and_slash_commands(profile, make_app: AppFactory):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.session is not None)
        await pilot.press(*"/remember I live in Lisbon", "enter")
        api: MemosAPI = app.session.api  # type: ignore[union-attr]
        await wait_for(pilot, lambda: any("Lisbon" in it.text for it in api.list()))
        await pilot.press(*"/correct I moved to Porto in May", "enter")
        await wait_for(pilot, lambda: any("Porto" in it.text for it in api.list()))
        lisbon = next(it for it in api.list(statuses_all()) if "Lisbon" in it.text)
        porto = next(it for it in api.list() if "Porto" in it.text)
        assert lisbon.status != "active" and lisbon.superseded_by == porto.id
        await pilot.press(*f"/forget {porto.id[:8]}", "enter")
        await wait_for(pilot, lambda: api.get(porto.id).status == "deleted")
        await pilot.press(*"/cube work", "enter")
        await wait_for(pilot, lambda: app.status.cube == "work")
        assert "work" in [c.name for c in api.list_cubes()] and api.cube.name == "work"
        prompt = chat_screen(app).query_one(PromptInput)
        await pilot.press("up")
        assert prompt.value == "/cube work"
        await pilot.press("up")
        assert prompt.value.startswith("/forget ")
        await pilot.press("down", "down")
        assert prompt.value == ""


def statuses_all():  # type: ignore[no-untyped-def]
    from memos_desktop.store.migrations import MEMORY_STATUSES
    from memos_desktop.store.records import SearchFilters

    return SearchFilters(statuses=tuple(MEMORY_STATUSES))


async def test_an_ambiguous_correction_asks_which_memory(profile, make_app: AppFactory):
    from memos_desktop.tui.dialogs import ChoiceScreen

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.status.state == "ready")
        api: MemosAPI = app.session.api  # type: ignore[union-attr]
        ana = api.add("My sister Ana is a nurse")[0].item
        eva = api.add("My sister Eva is a lawyer")[0].item
        await pilot.press(*"/correct My sister is a teacher now", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen))
        assert api.get(ana.id).status == api.get(eva.id).status == "active"  # nothing yet
        choices = app.screen.query_one("#choices")
        labels = [str(choices.get_option_at_index(i).prompt) for i in range(choices.option_count)]
        assert sorted(labels[:2]) == ["My sister Ana is a nurse", "My sister Eva is a lawyer"]
        assert len(labels) == 3 and labels[2].startswith("None of them")
        choices.highlighted = labels.index("My sister Eva is a lawyer")
        await pilot.press("enter")
        await wait_for(pilot, lambda: api.get(eva.id).status == "archived")
        assert api.get(ana.id).status == "active"
        teacher = api.get(api.get(eva.id).superseded_by)  # type: ignore[arg-type]
        assert teacher.text == "My sister is a teacher now"
