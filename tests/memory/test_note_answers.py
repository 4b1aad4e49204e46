"""Answers from what the person said, as they said it: questions typed the way people type
them, a note that holds every word of a question, who someone is, the instruction a question
names, a later note that denies a yes/no; and a base model's notes being the person's whole
message while all the reader found in it holds. The rules on memory records, then the packaged
Gemma through ``MemosAPI.chat`` with a real encrypted store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from memos_desktop.api import MemosAPI
from memos_desktop.engines.base import Embedder
from memos_desktop.memory import completion, statements
from memos_desktop.memory.note_answers import (
    covering_answer,
    instruction_answer,
    who_answer,
    yes_no_answer,
)
from memos_desktop.store.records import SearchFilters
from tests.memory.conftest import told_api
from tests.memory.test_slot_answers import _item
from tests.model_fixtures import GEMMA_BASE


def _note(item):  # type: ignore[no-untyped-def]
    return completion.note_text(item.text)


# --- questions as people type them -----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "what do i do for a living",
        "my mum's name?",
        "favourite movie?",
        "Remind me what my dad does",
        "Tell me my blood type",
        "whats the code for the allotment gate",
        "how many kids do I have",
        "is my sister married?",
        "Do I have a sister? what's she called",
    ],
)
def test_questions_are_questions_with_or_without_a_question_mark(text: str) -> None:
    assert completion.is_question(text)


@pytest.mark.parametrize(
    "text",
    [
        "What I love is hiking",
        "When I was a kid I lived in Rome",
        "What a day!",
        "I moved to Braga last month.",
        "Keep your answers short",
        "the car is a 2015 Skoda",
        "I love it, really?",
    ],
)
def test_statements_are_not_questions(text: str) -> None:
    assert not completion.is_question(text)


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("Remind me what my dad does", "What does my dad do?"),
        ("Do you know my cat's name?", "What is my cat's name?"),
        ("Tell me my blood type", "What is my blood type?"),
        ("where do i live again?", "where do i live?"),
        ("Can you remind me where my sister lives?", "Where does my sister live?"),
        ("Tell me what I do for work", "What do I do for work?"),
        ("do you know where Kuba works", "Where does Kuba work?"),
        ("Do you know who Kuba is?", "Who is Kuba?"),
        ("Tell me about Kuba", "Who is Kuba?"),
        # not a question asked the long way round: as it was
        ("Tell me a joke", "Tell me a joke"),
        ("remind me to call mum", "remind me to call mum"),
        ("Do you remember what I ate yesterday?", "Do you remember what I ate yesterday?"),
    ],
)
def test_a_question_asked_the_long_way_round_is_read_plainly(text: str, plain: str) -> None:
    assert completion.plain_question(text) == plain


# --- the rules, on memory records ------------------------------------------------------------


def test_a_note_holding_every_word_of_the_question_answers_it() -> None:
    music = _item("music-wise I'm into post-rock, Mogwai, that kind of thing", 1, "preference")
    code = _item("gym locker code is 4471, I keep forgetting it", 2, "episode")
    dog = _item("We have a beagle called Fasola", 3)
    hits = [music, code, dog]
    got = covering_answer("What kind of music am I into?", hits, _note)
    assert got is not None and got.item is music and "post-rock" in got.text
    got = covering_answer("What is my gym locker code?", hits, _note)
    assert got is not None and "4471" in got.text
    # a word the notes do not hold ("toy"), a question of one word, not a question
    assert covering_answer("What is Fasola's favourite toy?", hits, _note) is None
    assert covering_answer("Where do I live?", hits, _note) is None
    assert covering_answer("My gym locker code is new", hits, _note) is None
    # a later note on the same thing may have changed it: the model reads both
    moved = _item("the dentist moved me to Wednesday at 11:00", 5, "event")
    old = _item("dentist appointment next Tuesday at 8:30", 4, "event")
    assert covering_answer("When is my dentist appointment?", [old, moved], _note) is None
    assert covering_answer("When is my dentist appointment?", [old], _note) is not None
    # a question about the person is not answered from a note about someone else
    sister = _item("My sister plays the cello in an orchestra", 6)
    assert covering_answer("What do I play in the orchestra?", [sister], _note) is None
    said = _item("User: My sister plays the cello in an orchestra", 7, "episode")
    assert covering_answer("What do I play in the orchestra?", [said], _note) is None


def test_who_someone_is_comes_from_the_note_that_says_it() -> None:
    intro = _item("Kuba - my best friend since primary school - plays bass", 1)
    job = _item("kuba quit the cafe, he is a sound engineer now", 2)
    got = who_answer("Who is Kuba?", [job, intro], _note)
    assert got is not None and got.item is intro and "best friend" in got.text
    assert who_answer("Who is Kuba?", [job], _note) is None  # no relation or role in it
    assert who_answer("Who is Rafal?", [job, intro], _note) is None  # not named
    assert who_answer("Who is my best friend?", [intro], _note) is None  # a slot question


def test_the_instruction_a_question_names_answers_it() -> None:
    clock = _item("always use the 24-hour clock when you give me times", 1, "instruction")
    units = _item("use kilometres and Celsius, never miles", 2, "instruction")
    got = instruction_answer(
        "Which units should you use for distances? Kilometres?", [clock, units]
    )
    assert got is not None and got.item is units
    got = instruction_answer("How should you write times for me?", [units, clock])
    assert got is not None and got.item is clock
    assert got.text == "You asked me to always use the 24-hour clock when I give you times."


def test_a_later_note_denying_a_yes_no_answers_it() -> None:
    lots = _item("i drink way too much coffee, black, like 4 cups a day", 1, "preference")
    quit_ = _item("I've quit coffee completely, only yerba mate now", 2, "preference")
    got = yes_no_answer("Do I drink coffee?", [lots, quit_])
    assert got is not None and got.item is quit_ and got.text.startswith("No, ")
    got = yes_no_answer("Do I drink coffee?", [lots])
    assert got is not None and got.text.startswith("Yes, ")


def test_a_relative_introduced_by_name_is_their_name() -> None:
    (st,) = [s for s in statements.read("My wife is Agnieszka") if s.claims]
    assert st.key == "wife:name"
    (st,) = [s for s in statements.read("My husband is a nurse") if s.claims]
    assert st.key == "husband:occupation"


# --- the packaged Gemma, through MemosAPI.chat ------------------------------------------------

SAID = (
    "gym locker code is 4471, I keep forgetting it",
    "languages: polish obviously, english every day at work, and my german is rusty",
    "Kuba - my best friend since primary school - plays bass in a punk band",
)


@pytest.fixture
def told(embedder: Embedder, gemma_path: Path, sha_cache: Path) -> Iterator[MemosAPI]:
    with told_api(embedder, gemma_path, sha_cache, GEMMA_BASE, SAID) as api:
        yield api


def test_gemma_answers_from_the_whole_message(told: MemosAPI) -> None:
    # the reader kept only "I keep forgetting it" of the first message: the note is all of it
    turn = told.chat("remind me my gym locker code")
    said = "".join(turn)
    assert "4471" in said, said
    assert turn.stats is not None and turn.stats.completion_tokens == 0  # said from the note
    turn = told.chat("Who is Kuba?")
    said = "".join(turn)
    assert "best friend" in said.lower(), said
    # the base model's prompt holds the whole message, not the reader's piece ("My german is
    # rusty")
    prompt, _ = _prompt_of(told, "Which languages do I speak?")
    assert "polish obviously, english every day at work" in prompt, prompt


def test_questions_asked_before_are_not_memories_for_an_answer(told: MemosAPI) -> None:
    for _ in range(2):
        turn = told.chat("What's my gym locker code?")
        "".join(turn)
        assert turn.used and not any(u.text.startswith("User: What") for u in turn.used), [
            u.text for u in turn.used
        ]
    # the exchange is still kept, as an episode
    kept = told.store.memories.list(SearchFilters(types=("episode",)), limit=200)
    assert "User: What's my gym locker code?" in [i.text for i in kept]


def test_the_names_of_someone_asked_about_cover_their_links_and_any_script() -> None:
    from memos_desktop.memory.slot_answers import Memories, asked, name_words

    mem = Memories([_item("My wife is Agnieszka", 1), _item("My brother Michał lives in Łódź", 2)])
    wife = asked("How old is my wife?")
    assert wife is not None and {"wife", "agnieszka"} <= mem.names_of(wife)
    michal = asked("Where does Michał live?")
    assert michal is not None and "michał" in mem.names_of(michal)
    assert mem.names_of(michal) & name_words("- Michał's flat is in Łódź.")
    me = asked("How old am I?")
    assert me is not None and mem.names_of(me) == set()


def _prompt_of(api: MemosAPI, question: str) -> tuple[str, str]:
    """The base model's prompt for ``question`` ("" when answered without it), the answer."""
    seen: list[str] = []
    engine = api.engine
    stream = engine.chat_stream

    def spy(messages, *a, **k):  # type: ignore[no-untyped-def]
        seen.append(messages[-1].content)
        return stream(messages, *a, **k)

    engine.chat_stream = spy  # type: ignore[method-assign]
    try:
        said = "".join(api.chat(question, temporary=True))
    finally:
        engine.chat_stream = stream  # type: ignore[method-assign]
    return (seen[-1] if seen else ""), said


@pytest.mark.parametrize("how", ["forget", "edit", "purge"])
def test_a_message_whose_memory_was_forgotten_edited_or_purged_is_no_note(
    told: MemosAPI, how: str
) -> None:
    (piece,) = [
        i
        for i in told.store.memories.list(SearchFilters(types=("fact",)), limit=50)
        if "german" in i.text.casefold()
    ]
    assert "polish obviously" in _prompt_of(told, "Which languages do I speak?")[0]
    if how == "forget":
        told.forget(piece.id)
    elif how == "edit":
        told.update(piece.id, text="My Spanish is rusty but good enough for ordering beer")
    else:
        told.purge([piece.id])
    prompt, said = _prompt_of(told, "Which languages do I speak?")
    # the whole message would say it again: only what still holds is a note
    assert "german" not in prompt.casefold() and "german" not in said.casefold(), (prompt, said)
    assert "polish obviously" not in prompt, prompt


def test_an_instruction_answers_only_when_no_other_note_says_more() -> None:
    clock = _item("always use the 24-hour clock when you give me times", 1, "instruction")
    emoji = _item("User: no emojis in your answers pls", 2, "episode")  # not read as one
    assert instruction_answer("Should you use emojis when you answer me?", [clock, emoji]) is None
    short = _item("keep your answers under three sentences please", 3, "instruction")
    longer = _item("User: you can go a bit longer with answers now, up to five", 4, "episode")
    assert instruction_answer("How long should your answers be?", [short, longer]) is None
    got = instruction_answer("How long should your answers be?", [short, clock])
    assert got is not None and got.item is short


def test_the_instruction_for_a_kind_of_unit_is_found_below_the_first_hits() -> None:
    speech = _item("I am supposed to give a speech, help", 1)
    clock = _item("always use the 24-hour clock when you give me times", 2, "instruction")
    talk = _item("I am giving a talk on API testing in Wrocław on 12 February", 3)
    pets = _item("we have a beagle called Fasola", 4)
    units = _item("use kilometres and Celsius, never miles or Fahrenheit", 5, "instruction")
    hits = [speech, clock, talk, pets, units]
    # "Celsius" is a temperature; "give" says how, not what
    got = instruction_answer("How should you give me temperatures?", hits)
    assert got is not None and got.item is units, got
    got = instruction_answer("How should you give me distances?", hits)
    assert got is not None and got.item is units, got
    # below the first hits, only one that names what is asked
    got = instruction_answer("How should you reply to me?", hits)
    assert got is not None and got.item is clock, got


def test_the_form_the_person_wants_things_in_is_an_instruction_asked_about() -> None:
    clock = _item("always use the 24-hour clock when you give me times", 1, "instruction")
    got = instruction_answer("what time format do i want", [clock])
    assert got is not None and got.item is clock
    # wanting something else is no question about the assistant
    assert instruction_answer("what do I want for my birthday?", [clock]) is None
