"""Answering: the completion prompt for base models, what the stream shows, stopped messages
sent again, and the packaged Gemma answering from memory after a restart."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from memos_desktop.api import MemosAPI
from memos_desktop.config import Settings, resolve_paths
from memos_desktop.engines.base import CancelToken, ChatMessage, Embedder, SamplingParams
from memos_desktop.engines.llamacpp import LlamaCppEngine
from memos_desktop.memory import completion
from memos_desktop.memory.chat import sent_again
from memos_desktop.memory.reader import READ_KEY
from memos_desktop.memory.repeat_guard import RepeatGuard
from memos_desktop.memory.scheduler import Scheduler
from memos_desktop.store.profile import open_profile
from memos_desktop.store.records import NewMemory, SearchFilters
from tests.memory.conftest import make_api
from tests.model_fixtures import GEMMA_BASE

GREEDY = SamplingParams.greedy(max_tokens=8)


# --- the completion prompt ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("memory", "note"),
    [
        ("User: I live in Porto, near the river.", "You live in Porto, near the river."),
        ("User: I'm allergic to penicillin", "You're allergic to penicillin."),
        (
            "User: We went to Madeira for our anniversary.",
            "You went to Madeira for your anniversary.",
        ),
        ("User: I was born in Coimbra.", "You were born in Coimbra."),
        ("The user lives in Braga", "You live in Braga."),
        ("The user's sister is a nurse.", "Your sister is a nurse."),
        ("lives in Porto", "You live in Porto."),
        (
            "User: Remember that my pharmacy is Farmacia Central.",
            "Your pharmacy is Farmacia Central.",
        ),
        ("User: Call me Mar, not Marta.", "You asked me to call you Mar, not Marta."),
        ("Dana works at the US embassy", "Dana works at the US embassy."),
        ("User: Where do I live?", None),  # a question holds no fact
        ("User: Where do I live?\nAssistant: You live in Porto.", None),  # nor the model's words
        ("User: I live in Porto, do you know it?", "You live in Porto, do you know it?"),
    ],
)
def test_memories_become_plain_facts_about_you(memory: str, note: str | None) -> None:
    assert completion.note_text(memory) == note


def test_the_prompt_is_a_pattern_with_nothing_of_the_question_in_its_prefix() -> None:
    prefix = completion.prefix_text(["You live in Porto."])
    rest = completion.question_text(
        ["Your car is blue."], [("Hi", "Hello!")], "What colour is my car?", any_notes=True
    )
    assert prefix.count("Question:") == len(completion.EXAMPLES)
    assert completion.DONT_KNOW in prefix  # a worked example of not knowing
    assert prefix.endswith("Notes:\n- You live in Porto.")
    assert rest.endswith(
        "- Your car is blue.\nQuestion: Hi\nAnswer: Hello!\n"
        "Question: What colour is my car?\nAnswer:"
    )
    for marker in ("<start_of_turn>", "<|im_start|>", "<end_of_turn>"):
        assert marker not in prefix + rest
        assert marker in completion.STOPS
    assert {"\n", "Question:", "Notes:"} <= set(completion.STOPS)


def test_a_repeated_sentence_ends_the_answer_and_is_never_shown() -> None:
    g = RepeatGuard()
    pieces = ["You live", " in Porto.", " You", " live in", " Porto."]
    shown = "".join(g.feed(p) for p in pieces)
    assert shown == "You live in Porto. " and not g.done  # the repeat is held back...
    assert g.finish() == "" and g.done  # ...and, complete, never shown
    g = RepeatGuard()
    shown = "".join(g.feed(p) for p in [*pieces, " You"])
    assert shown == "You live in Porto. " and g.done
    g = RepeatGuard()
    shown = "".join(g.feed(p) for p in ["I'd write: 14/1/2014,", " 14/1/2014,", " 14/1/"])
    assert shown == "I'd write: 14/1/2014, " and g.done  # a clause twice in a row
    g = RepeatGuard()
    pieces = ["You live in Porto, Portugal.", " Ana lives in Lisbon, Portugal."]
    assert "".join(g.feed(p) for p in pieces) + g.finish() == "".join(pieces)
    g = RepeatGuard()
    pieces = ["Pi is 3.", "14. You live", " in Porto."]
    assert "".join(g.feed(p) for p in pieces) + g.finish() == "Pi is 3.14. You live in Porto."


@pytest.mark.parametrize(
    ("said", "shown"),
    [
        (["My", " husband", " is called", " Rui."], "Your husband is called Rui."),
        (["I", "'m 34", " years old."], "You're 34 years old."),
        (["I was", " born in Coimbra."], "You were born in Coimbra."),
        (["We went to Madeira for our anniversary."], "You went to Madeira for your anniversary."),
        (["I", " don", "'t know."], "I don't know."),
        (["I think", " you live in Porto."], "I think you live in Porto."),
        (["I", "'ll call you Mar."], "I'll call you Mar."),
        (["Rui."], "Rui."),
    ],
)
def test_answers_are_said_in_the_assistants_voice(said: list[str], shown: str) -> None:
    v = completion.Voice()
    assert "".join(v.feed(p) for p in said) + v.feed("", final=True) == shown


def test_a_base_model_gets_the_completion_prompt_and_keeps_its_kv_prefix(
    completion_api: MemosAPI,
) -> None:
    api = completion_api
    api.add(NewMemory(text="The user's name is Noor", layer="user", pinned=True))
    api.add(NewMemory(text="User: Where is my passport?"))  # a question: left out
    api.add(NewMemory(text="User: My passport is in the blue drawer."))
    first = api.chat("Where is my passport?", sampling=GREEDY)
    "".join(first)
    second = api.chat("Where is my passport now?", first.conversation_id, sampling=GREEDY)
    "".join(second)
    assert api.engine.prompt_style == "completion"
    assert second.kv_restored and second.prefix_tokens == first.prefix_tokens
    texts = [u.text for u in second.used]
    assert "User: My passport is in the blue drawer." in texts
    assert "User: Where is my passport?" not in texts  # not reported: not in the prompt
    # The prompt itself (what the scheduler gave the engine).
    sched = Scheduler(api.store, api.engine.count_tokens, style="completion")
    hits = api.search("Where is my passport?").hits
    a = sched.assemble(api.cube, "Where is my passport?", hits, [], now=time.time())
    system, user = a.messages
    assert system.role == "system" and system.content.endswith("- Your name is Noor.")
    assert "- Your passport is in the blue drawer." in user.content
    assert "Where is my passport?\nAnswer:" in user.content
    assert user.content.count("Question:") == 1


# --- what the stream shows ---------------------------------------------------------------


def _text_of(api: MemosAPI, q: str, sampling: SamplingParams) -> tuple[str, str]:
    turn = api.chat(q, sampling=sampling, temporary=True)
    shown = "".join(turn)
    assert turn.stats is not None and shown == turn.answer
    return shown, turn.stats.finish_reason


def test_no_part_of_a_stop_string_is_ever_shown(api: MemosAPI) -> None:
    q = "Tell me something."
    full, _ = _text_of(api, q, SamplingParams.greedy(max_tokens=24))
    assert len(full) > 12
    # A stop string in the middle: the answer is what came before it.
    stop = full[6:10]
    cut, finish = _text_of(api, q, SamplingParams.greedy(max_tokens=24, stop=(stop,)))
    assert finish == "stop" and cut == full[: full.find(stop)]
    # The budget ends the answer inside what could have grown into a stop string: that tail
    # was held back and is not shown either.
    n = 8
    head, finish = _text_of(api, q, SamplingParams.greedy(max_tokens=n))
    assert finish == "length" and head and full.startswith(head)
    dangling = head[-3:] + "\x00never"
    shown, finish = _text_of(api, q, SamplingParams.greedy(max_tokens=n, stop=(dangling,)))
    assert finish == "length" and shown == head[:-3]


def test_turn_markers_are_always_stops(api: MemosAPI) -> None:
    from memos_desktop.memory.chat import ChatService

    svc = ChatService(api.store, api.engine, None, api.cube, api.user.id, lambda q, k: [])
    assert svc.style == "chat"  # the tiny model has a ChatML template
    s = svc.sampling(SamplingParams.greedy(5, stop=("END",)))
    assert s.max_tokens == 5 and "END" in s.stop
    assert {"<|im_start|>", "<|im_end|>", "<start_of_turn>", "<end_of_turn>"} <= set(s.stop)


# --- stopped messages sent again -------------------------------------------------------------


def _stopped(api: MemosAPI, text: str, conv: str | None = None) -> str:
    token = CancelToken()
    token.cancel()
    turn = api.chat(text, conv, sampling=GREEDY, cancel=token)
    "".join(turn)
    assert turn.stats is not None and turn.stats.finish_reason == "cancelled"
    assert turn.conversation_id is not None
    return turn.conversation_id


def _active(api: MemosAPI, word: str) -> list[str]:
    return [it.text for it in api.list() if word in it.text]


# What one told statement leaves: the fact the reader made of it, and the raw episode.
PASSPORT = ["My passport expires in March 2027", "User: My passport expires in March 2027."]


def test_a_stopped_message_sent_again_leaves_one_memory_and_one_job(api: MemosAPI) -> None:
    conv = _stopped(api, "My passport expires in March 2027.")
    assert sorted(_active(api, "passport")) == PASSPORT
    jobs = api.store.jobs.counts().get("queued")
    "".join(api.chat("My passport expires in March 2027.", conv, sampling=GREEDY))
    assert sorted(_active(api, "passport")) == PASSPORT  # once, not twice
    assert api.store.jobs.counts().get("queued") == jobs  # the stopped one's job was dropped
    msgs = api.messages(conv)
    kept = api.list()[0]
    assert {s.message_id for s in kept.sources} <= {msgs[2].id, msgs[3].id}


def test_an_edited_resend_replaces_and_a_new_message_keeps(api: MemosAPI) -> None:
    conv = _stopped(api, "My passport expires in March 2027")
    "".join(api.chat("my passport expires in march 2028!", conv, sampling=GREEDY))
    assert sorted(_active(api, "passport")) == [
        "My passport expires in march 2028",
        "User: my passport expires in march 2028!",
    ]
    conv2 = _stopped(api, "My locker code is 4512.")
    "".join(api.chat("What is the weather like today?", conv2, sampling=GREEDY))
    assert sorted(_active(api, "4512")) == [  # not sent again: kept
        "My locker code is 4512",
        "User: My locker code is 4512.",
    ]
    deleted = api.list(SearchFilters(statuses=("deleted",)))
    assert sorted(d.text for d in deleted) == [
        "My passport expires in March 2027",
        "User: My passport expires in March 2027",
    ]


@pytest.mark.parametrize(
    ("old", "new", "again"),
    [
        ("I live in Porto", "I live in Porto", True),
        ("I live in Porto", "i live in porto.", True),
        ("I live in Porto", "I live in Porto, near the river", True),
        ("I live in Porto", "What is the weather like?", False),
        ("Hi", "", False),
    ],
)
def test_sent_again(old: str, new: str, again: bool) -> None:
    assert sent_again(old, new) is again


# --- the packaged Gemma, end to end ----------------------------------------------------------

FACTS = ["I live in Porto.", "My car is blue.", "I work as a nurse.", "My dog is called Rex."]
QUESTIONS = {
    "Where do I live?": "porto",
    "What colour is my car?": "blue",
    "What is my job?": "nurse",
    "What is my dog called?": "rex",
}
UNCLEAN = re.compile(
    r"<[^>]*>|start_of_turn|end_of_turn|\b(?:Question|Answer|Notes|User|Assistant)\s*:|"
    r"parrot|Kiwi|Peugeot|Trek|Lea|short answers",
    re.I,
)


@pytest.fixture
def gemma_api(embedder: Embedder, gemma_path: Path, sha_cache: Path) -> Iterator[MemosAPI]:
    a = make_api(embedder, gemma_path, sha_cache, GEMMA_BASE)
    yield a
    a.close()


def _reopen(embedder: Embedder, gemma_path: Path, sha_cache: Path) -> MemosAPI:
    store = open_profile(resolve_paths(), "default", Settings())
    return MemosAPI(
        store,
        embedder,
        engine_factory=lambda: LlamaCppEngine(gemma_path, GEMMA_BASE, sha_cache_file=sha_cache),
    )


def test_four_facts_told_then_a_restart_then_the_right_answers(
    gemma_api: MemosAPI, embedder: Embedder, gemma_path: Path, sha_cache: Path
) -> None:
    conv = None
    for fact in FACTS:  # the app's own sampling: no sampling given
        turn = gemma_api.chat(fact, conv)
        said = "".join(turn)
        conv = turn.conversation_id
        assert turn.stats is not None and turn.stats.finish_reason == "stop", said
        assert said.strip() and not UNCLEAN.search(said), said
    gemma_api.close()
    api = _reopen(embedder, gemma_path, sha_cache)
    try:
        assert api.engine.prompt_style == "completion"
        for question, fact in QUESTIONS.items():
            turn = api.chat(question)
            answer = "".join(turn)
            stats = turn.stats
            assert stats is not None and stats.finish_reason == "stop", (question, answer)
            assert stats.completion_tokens < completion.ANSWER_TOKENS
            assert fact in answer.lower(), (question, answer)
            assert "\n" not in answer and not UNCLEAN.search(answer), (question, answer)
            assert turn.kv_restored  # the prefix state saved before the restart was reused
    finally:
        api.close()


def test_nothing_in_memory_means_i_do_not_know(gemma_api: MemosAPI) -> None:
    turn = gemma_api.chat("What is my shoe size?")
    assert "".join(turn) == completion.DONT_KNOW
    assert turn.stats is not None and turn.stats.finish_reason == "stop"
    # Not a question about the person: the model answers (and stops by itself).
    turn = gemma_api.chat("Hello there!")
    said = "".join(turn)
    assert turn.stats is not None and turn.stats.finish_reason == "stop"
    assert said != completion.DONT_KNOW and not UNCLEAN.search(said), said


@pytest.mark.parametrize(
    ("answer", "question", "ok"),
    [
        ("Your sister is called Ines.", "What is my sister called?", True),
        ("You go swimming on Thursdays.", "When do I swim?", True),
        ("Yes, you do.", "Do I drink alcohol?", True),
        ("You do not drink alcohol.", "Do I drink alcohol?", True),
        ("Your shoe size is 10.", "What is my shoe size?", False),  # a number not in the notes
        ("Your sister lives in Paris.", "Where does my sister live?", False),  # a name
        ("Your favourite ice cream flavour is strawberry.", "What is my favourite flavour?", False),
        ("You go to the gym.", "Which gym do I go to?", False),  # adds nothing to the question
        ("Your grandfather is called Bruno.", "What is my grandfather called?", False),  # example
    ],
)
def test_an_answer_the_notes_do_not_support_is_told_apart(
    answer: str, question: str, ok: bool
) -> None:
    prompt = completion.prefix_text(["Your name is Marta."])
    notes = ["Your sister Ines lives in Lisbon.", "You go swimming every Thursday."]
    messages = (
        ChatMessage("system", prompt),
        ChatMessage(
            "user",
            completion.question_text(notes, [], question, any_notes=True)
            + "\n- You do not drink alcohol.",
        ),
    )
    assert completion.supported(answer, completion.given_text(messages), question) is ok


def test_a_made_up_answer_becomes_i_do_not_know(gemma_api: MemosAPI) -> None:
    conv = None
    for fact in FACTS:
        turn = gemma_api.chat(fact, conv)
        "".join(turn)
        conv = turn.conversation_id
    for question in ("What is my shoe size?", "Which airline do I usually fly with?"):
        turn = gemma_api.chat(question)
        answer = "".join(turn)
        assert turn.used  # there were notes: the model answered, and was checked
        assert answer == completion.DONT_KNOW, (question, answer, turn.unsupported)
    turn = gemma_api.chat("Where do I live?")
    assert "porto" in "".join(turn).lower() and not turn.unsupported


def test_a_correction_told_in_chat_leaves_the_old_value_out_of_the_prompt(api: MemosAPI) -> None:
    """The raw episode keeps "I live in Porto" word for word; the memory read from it was
    superseded by "I moved to Braga", so the episode must not bring the old value back."""
    conv = None
    for said in ("I live in Porto, near the river.", "I moved to Braga last month."):
        turn = api.chat(said, conv)
        "".join(turn)
        conv = turn.conversation_id
    episodes = api.list(SearchFilters(types=("episode",)))
    assert len(episodes) == 2 and all(e.key == READ_KEY for e in episodes)
    turn = api.chat("Where do I live?")
    "".join(turn)
    texts = [u.text for u in turn.used]
    assert any("Braga" in t for t in texts), texts
    assert not any("Porto" in t for t in texts), texts
