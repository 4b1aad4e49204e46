"""Answers one memory gives: a question about one slot ("Where does my sister live?"), the
instruction asked about, a yes/no a note says; and the notes a slot question may see. The
rules on memory records, then the packaged Gemma through ``MemosAPI.chat``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from memos_desktop.api import MemosAPI
from memos_desktop.engines.base import Embedder
from memos_desktop.memory import completion
from memos_desktop.memory.note_answers import choice_answer, instruction_answer, yes_no_answer
from memos_desktop.memory.slot_answers import (
    Asked,
    Memories,
    answer,
    asked,
    claims_of,
)
from memos_desktop.store.records import MemoryItem
from tests.memory.conftest import told_api
from tests.model_fixtures import GEMMA_BASE

# --- reading the question ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "subject", "attribute"),
    [
        ("Where do I live?", "self", "residence"),
        ("Which town do we live in now?", "self", "residence"),
        ("Where does my brother Tiago live?", "brother:tiago", "residence"),
        ("What's my name?", "self", "name"),
        ("What is my daughter's name?", "daughter", "name"),
        ("What is my dad called?", "father", "name"),
        ("Who is my best friend?", "friend", "name"),
        ("What is my middle name?", "self", "middle-name"),  # not the name
        ("What is my first name?", "self", "name"),
        ("What do I do for a living?", "self", "occupation"),
        ("Where does Ana work?", "ana", "employer"),
        ("When is my husband's birthday?", "husband", "birthday"),
        ("How old is Leo?", "leo", "age"),
        ("What car do I drive now?", "self", "car"),
        ("What is my favourite film?", "self", "favourite-movie"),
        ("What is my dog's favourite toy?", "dog", "favourite-toy"),
        ("How do I get to work?", "self", "commute"),
        ("What is the name of my dog?", "dog", "name"),
        ("Who am I married to?", "self", "spouse"),
        ("Where did I move to?", "self", "residence"),
        ("What do I drive?", "self", "car"),
        ("What's my date of birth?", "self", "birthday"),
        ("How many kids do I have?", "self", "children"),
        ("When is my dentist appointment?", "self", "when"),
        ("When do I go swimming?", "self", "when"),
    ],
)
def test_a_question_about_one_slot_is_read(question: str, subject: str, attribute: str) -> None:
    got = asked(question)
    assert got is not None and (got.subject, got.attribute) == (subject, attribute)


@pytest.mark.parametrize(
    "question",
    [
        "What do I do on Sunday mornings?",  # not the job
        "Who is Leo?",  # who, not a name
        "Who am I?",
        "Where did we go for our anniversary?",
        "What music do I like?",
        "Tell me where I live.",  # not a question the patterns read
        "Where do I live and work?",
    ],
)
def test_other_questions_are_left_to_the_model(question: str) -> None:
    assert asked(question) is None


def test_a_leading_phrase_does_not_hide_what_a_memory_says() -> None:
    (c,) = claims_of("Since the move I cycle to work")
    assert (c.subject, c.attribute, c.value) == ("self", "commute", "bike")
    (c,) = claims_of("These days my favourite food is vegetable curry")
    assert (c.attribute, c.value) == ("favourite-food", "vegetable curry")
    assert claims_of("Last weekend we visited the museum") == []


# --- answers from memory records ------------------------------------------------------------


def _item(text: str, at: float, type_: str = "fact", status: str = "active") -> MemoryItem:
    """A memory record as the store returns it; ``at`` is its creation time (and, with the
    text, its id)."""
    return MemoryItem(
        rowid=int(at),
        id=f"m{at}:{text}",
        cube_id="c",
        text=text,
        key="",
        type=type_,  # type: ignore[arg-type]
        layer="long_term",
        status=status,  # type: ignore[arg-type]
        source="user",
        confidence=1.0,
        importance=0.5,
        pinned=False,
        tags=(),
        sources=(),
        valid_from=None,
        valid_to=None,
        created_at=at,
        updated_at=at,
        last_used_at=None,
        use_count=0,
        version=1,
        supersedes=None,
        superseded_by=None,
        content_hash=str(at),
        embed_model="m",
    )


FAMILY = [
    _item("My name is Marta", 1),
    _item("My mother's name is Rosa", 2),
    _item("My sister Ines lives in Lisbon", 3),
    _item("I was born in Coimbra", 4),
    _item("I moved to Braga last month", 5),
    _item("Ines is getting married in September", 6, "event"),
]


def _said(question: str, items: list[MemoryItem], recent: list[MemoryItem] | None = None) -> str:
    ask = asked(question)
    assert ask is not None
    got = answer(ask, Memories(items), recent or [])
    return got.text if got else ""


def test_the_memory_holding_the_slot_answers_not_another_subjects() -> None:
    assert _said("What is my name?", FAMILY) == "Your name is Marta."
    assert _said("What is my mum called?", FAMILY) == "Your mum is called Rosa."
    assert _said("What is my sister's name?", FAMILY) == "Your sister is called Ines."
    assert _said("Where does my sister live?", FAMILY) == "Your sister Ines lives in Lisbon."
    assert _said("Where do I live?", FAMILY).startswith("You live in Braga.")
    # Ines is the sister: a memory about "Ines" is about the sister
    assert Memories(FAMILY).same("sister", "ines")


def test_no_value_two_values_or_a_newer_unread_note_leave_it_to_the_model() -> None:
    assert _said("Where does my mother live?", FAMILY) == ""  # memory does not say
    assert _said("What is my middle name?", FAMILY) == ""
    two = [*FAMILY, _item("My sister Ana is a teacher", 7)]
    assert _said("What is my sister's name?", two) == ""  # which sister?
    metro = _item("I commute by metro", 8)
    bike = _item("Since the move I cycle to work", 9)
    # a single-valued attribute: the latest memory holds the current value
    assert _said("How do I get to work?", [metro, bike]) == "Since the move you cycle to work."
    # told at the same moment: no latest
    assert _said("How do I get to work?", [bike, _item("I commute by metro", 9)]) == ""
    book = _item("My favourite book is Dune", 10, "preference")
    newer = _item("Lately the book I love most is Solaris by Lem", 11, "preference")
    assert _said("What is my favourite book?", [book]) == "Your favourite book is Dune."
    assert _said("What is my favourite book?", [book], [book, newer]) == ""
    gone = _item("My favourite book is Solaris", 12, "preference", status="superseded")
    assert _said("What is my favourite book?", [book, gone]) == "Your favourite book is Dune."


def test_a_relative_named_in_another_memory_is_the_same_subject() -> None:
    ask = asked("What is my husband's job?")
    assert ask is not None and "husband:name" in ask.memory_keys()  # fetched to know who he is
    told = [_item("My husband is called Rui", 1), _item("Rui is a firefighter", 2)]
    assert _said("What is my husband's job?", told) == "Rui is a firefighter."
    # without the memory that names him, "Rui" is someone else: no answer, and his note is
    # not one the question is about
    assert _said("What is my husband's job?", told[1:]) == ""
    mem = Memories(told)
    assert mem.fits(ask, told[1].text, told[1].id)
    assert not Memories(told[1:]).fits(ask, told[1].text, told[1].id)


def test_when_a_thing_happens_is_the_latest_memory_of_that_thing() -> None:
    told = [
        _item("I go swimming every Thursday", 1),
        _item("I have a dentist appointment on Friday", 2, "event"),
        _item("I moved my swimming to Wednesdays", 3, "event"),
    ]
    ask = asked("When do I go swimming?")
    assert ask is not None and ask.obj == "swimming"
    assert _said("When do I go swimming?", told) == "You moved your swimming to Wednesdays."
    assert "Friday" in _said("When is my dentist appointment?", told)


def test_a_slot_question_sees_only_notes_that_may_hold_the_slot() -> None:
    mem = Memories(FAMILY)
    ask = Asked("mother", "residence")
    kept = [i.text for i in FAMILY if mem.fits(ask, i.text, i.id)]
    # another subject's notes and the mother's name are out; nothing the patterns read is
    # about where she lives
    assert kept == []
    assert mem.fits(ask, "We visit her every summer")  # not read: kept
    assert mem.fits(Asked("self", "favourite-movie"), "I cannot stand horror films")
    assert not mem.fits(Asked("self", "middle-name"), "My name is Marta")


def test_the_instruction_asked_about_is_said_back() -> None:
    short = _item("Keep your answers short", 1, "instruction")
    metric = _item("Please always use metric units with me", 2, "instruction")
    fact = _item("I live in Porto", 3)
    got = instruction_answer("How long should your answers be?", [short, metric, fact])
    assert got is not None and got.text == "You asked me to keep my answers short."
    got = instruction_answer("Should you give me distances in miles or km?", [fact, metric])
    assert got is not None and got.text == "You asked me to always use metric units with you."
    # not about how the assistant is to behave, or no instruction among the first hits and
    # none below them naming what is asked
    assert instruction_answer("Can you tell me a joke?", [short]) is None
    assert instruction_answer("What should I cook tonight?", [short]) is None
    assert instruction_answer("How should you talk to me?", [fact, fact, fact, metric]) is None
    got = instruction_answer("Which units should you use?", [fact, fact, fact, metric])
    assert got is not None and got.item is metric


def test_a_yes_no_question_a_note_says_gets_yes_or_no() -> None:
    no = _item("I do not drink alcohol", 1, "preference")
    dog = _item("I also have a dog, a beagle named Bolt", 2)
    got = yes_no_answer("Do I drink alcohol?", [no, dog])
    assert got is not None and got.text == "No, you do not drink alcohol."
    got = yes_no_answer("Do I have a dog?", [no, dog])
    assert got is not None and got.text.startswith("Yes, you also have a dog")
    assert yes_no_answer("Do I drink wine?", [no, dog]) is None  # the note does not say
    vegan = _item("I am vegan now, not just vegetarian", 3, "preference")
    got = yes_no_answer("Am I vegan?", [vegan])  # the "not" denies vegetarian, not vegan
    assert got is not None and got.text.startswith("Yes, you are vegan")
    assert yes_no_answer("Do I prefer tea or coffee?", [no]) is None  # a choice
    # another person's note does not answer a question about the person
    sister = _item("My sister has a dog called Rex", 4)
    assert yes_no_answer("Do I have a dog?", [sister, no]) is None
    rui = _item("Rui does not drink alcohol", 5)
    assert yes_no_answer("Do I drink alcohol?", [rui]) is None


def test_a_choice_a_note_settles_is_answered() -> None:
    coffee = _item("I have switched to coffee", 2, "preference")
    tea = _item("I barely drink tea now", 3, "preference")
    got = choice_answer("Do I prefer tea or coffee?", [coffee, tea])
    assert got is not None and got.text == "Coffee: you barely drink tea now."  # against tea
    got = choice_answer("Do I prefer tea or coffee?", [coffee])
    assert got is not None and got.text == "Coffee: you have switched to coffee."
    both = _item("I like tea and coffee", 4, "preference")
    assert choice_answer("Do I prefer tea or coffee?", [both]) is None  # names both
    assert choice_answer("Do I drink tea?", [tea]) is None  # not a choice
    mum = _item("My mum has switched to coffee", 5, "preference")
    assert choice_answer("Do I prefer tea or coffee?", [mum]) is None  # someone else's


def test_requests_are_notes_in_the_assistants_words() -> None:
    assert completion.note_text("Keep your answers short, please.") == (
        "You asked me to keep my answers short."
    )
    assert completion.note_text("Don't tell me the ending of films") == (
        "You asked me to not tell you the ending of films."
    )


# --- the packaged Gemma, through MemosAPI.chat ----------------------------------------------

TOLD = (
    "My name is Marta.",
    "My mother's name is Rosa.",
    "My sister Ines lives in Lisbon.",
    "I was born in Coimbra.",
    "I don't drink alcohol.",
    "Keep your answers short, please.",
)


@pytest.fixture
def told(embedder: Embedder, gemma_path: Path, sha_cache: Path) -> Iterator[MemosAPI]:
    with told_api(embedder, gemma_path, sha_cache, GEMMA_BASE, TOLD) as api:
        yield api


FROM_MEMORY = [
    ("What is my name?", "marta", "My name is Marta"),
    ("What is my mum called?", "rosa", "My mother's name is Rosa"),
    ("Where does my sister live?", "lisbon", "My sister Ines lives in Lisbon"),
    ("What is my sister's name?", "ines", "My sister Ines lives in Lisbon"),
    ("Where was I born?", "coimbra", "I was born in Coimbra"),
    ("How long should your answers be?", "short", "Keep your answers short"),
    ("Do I drink alcohol?", "no, you do not drink", "I do not drink alcohol"),
]


def test_gemma_answers_from_the_memory_that_holds_it(told: MemosAPI) -> None:
    for question, fact, from_text in FROM_MEMORY:
        turn = told.chat(question)
        said = "".join(turn)
        assert fact in said.lower(), (question, said)
        assert turn.stats is not None and turn.stats.finish_reason == "stop"
        assert turn.stats.completion_tokens == 0, question  # said from memory, not generated
        assert [u.text for u in turn.used] == [from_text], (question, turn.used)
        # recorded like any answer
        msgs = told.store.conversations.messages(turn.conversation_id or "")
        assert [m.content for m in msgs] == [question, said]


def test_gemma_does_not_answer_a_slot_from_another_subjects_note(told: MemosAPI) -> None:
    for question in ("Where does my mother live?", "What is my middle name?"):
        turn = told.chat(question)
        said = "".join(turn)
        assert said == completion.DONT_KNOW, (question, said)
        # the model saw only notes that may hold the slot: not where Ines lives or where
        # the person was born
        retrieved = [u.text for u in turn.used if u.origin != "core"]
        assert not any("Coimbra" in t or "Ines" in t for t in retrieved), retrieved
    # the caller's own instruction, or text given with the question: the model answers
    q = "Where does my sister live?"
    for system, context in (("Answer in one word.", ""), ("", "Ines: hi!")):
        turn = told.chat(q, system=system, context=context)
        said = "".join(turn)
        assert turn.stats is not None and turn.stats.completion_tokens > 0, said
    turn = told.chat("What do you know about my family?")  # no slot: the model answers
    said = "".join(turn)
    assert turn.stats is not None and turn.stats.completion_tokens > 0, said
    assert turn.stats.finish_reason == "stop"
