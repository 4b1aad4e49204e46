"""A later note that changed what an answer says.

The reader and the reconciler supersede a memory when a new statement plainly replaces it
("I moved to Braga"). Many changes are told less plainly ("switched bouldering to Tuesdays
and Fridays", "dropped my pixel in the Vistula, got an iPhone 15 now", "we moved! new flat in
Bronowice"): both memories stay active, and a small model given both takes the older one as
readily as the newer. So an answer that a note supports is checked against what the person
said after that note.

Design rules:
- Only a question about how things are now ("Which days do I go bouldering?"), not about a
  past occasion ("What did I do last Saturday?"), which nothing later changes.
- The notes the answer took its words from are found among the question's hits (the
  oldest few); the later notes are searched for with that note's own words, so a change
  that shares no word with the question ("got an iPhone 15 now" for "what phone do I have")
  is found too.
- A later note changes it when it is about the same one (the person, or the same someone
  else), shares a word with the old answer, or one the question and the older note share
  ("pixel", "bouldering"; not "health" of "What health condition do I have?"), says that
  something changed (``CHANGED``: moved, switched, now, new, quit, ...), and lacks a word the
  answer took from the older note ("7" of "Pixel 7", "Wednesdays") without supporting the
  answer itself.
- The answer is never lost on a guess: the later note is said after it ("Later you told me
  ..."), so the person sees both, in the order they were told. (Asked again with the later
  note alone, the packaged model mostly said the old answer again, from its core notes.)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from memos_desktop.memory import asked_kind, completion, slots
from memos_desktop.memory.note_answers import asked_words
from memos_desktop.memory.slot_answers import CHANGED
from memos_desktop.memory.statements import without_i
from memos_desktop.store.records import MemoryItem

# Later notes looked for with each holding note's words, and how many holding notes.
SEARCHED = 8
HELD = 3

_ASKS = re.compile(r"^(?:what|what's|where|when|who|whom|whose|which|how)\b", re.I)
_PAST = re.compile(r"\b(?:did|was|were|went|had|used to|last|ago|yesterday)\b", re.I)


@dataclass(frozen=True)
class Change:
    item: MemoryItem  # the later memory
    note: str


def asks_now(question: str) -> bool:
    """A question asking for something (what, where, when...) as it is now, not a yes or no
    and not about a past occasion."""
    q = question.strip()
    return _ASKS.match(q) is not None and _PAST.search(q) is None


def _subject(text: str) -> str | None:
    read = slots.subject_of(" ".join(re.sub(r"^\s*User:\s*", "", text).split()))
    return read[0] if read else None


def holders(
    answer: str, question: str, notes: Iterable[tuple[MemoryItem, str]]
) -> list[tuple[MemoryItem, str]]:
    """The notes that the answer took words from, oldest first (an answer may mix two:
    "Mondays, Wednesdays and Saturdays")."""
    words = _answer_words(answer, question)
    holding = [(i, n) for i, n in notes if words & (_topic(i.text) | _topic(n))]
    return sorted(holding, key=lambda p: p[0].created_at)


def _topic(text: str) -> set[str]:
    """A text's content stems, numbers of one digit included ("Pixel 7")."""
    return (asked_words(text) | set(re.findall(r"\d+", text))) - asked_kind.LIGHT_WORDS


def _answer_words(answer: str, question: str) -> set[str]:
    """What the answer adds to the question (its content stems)."""
    return _topic(answer) - asked_words(question) - {"you", "your", "youre"}


def changes(
    answer: str,
    question: str,
    held: tuple[MemoryItem, str],
    later: Iterable[tuple[MemoryItem, str]],
) -> list[Change]:
    """The notes of ``later`` told after ``held`` that change what it says (newest first)."""
    item, note = held
    old = _answer_words(answer, question)
    have = _topic(item.text) | _topic(note)
    # what the answer or the question shares with ``held`` ("pixel", "bouldering")
    wanted = ((_topic(question) - asked_kind.KIND_WORDS) & have) | old
    kept = old & have  # what the answer took from ``held``
    whom = _subject(item.text) or "self"
    out: list[Change] = []
    seen: set[str] = {note}
    for new, text in sorted(later, key=lambda p: -p[0].created_at):
        if new.created_at <= item.created_at or text in seen or new.type == "instruction":
            continue
        seen.add(text)
        if (_subject(new.text) or whom) != whom or not CHANGED.search(new.text):
            continue  # about someone else ("Joanna relocated" is not the mum's move)
        words = _topic(new.text) | _topic(text)
        if not words & wanted or kept <= words:
            continue  # about something else, or it says what the answer took from ``held``
        if completion.supported(answer, text, question):
            continue  # the answer is its own ("a blue iPhone 15": "replaced it with an iPhone 15")
        out.append(Change(new, text))
    return out


def told_later(answer: str, note: str) -> str:
    """The answer, then the later note as the person told it."""
    if re.match(r"^You\b", note):
        return f"{answer.rstrip()} Later you told me {note[0].lower()}{note[1:]}"
    if without_i(note):  # "Switched bouldering to ..." -> "you switched bouldering to ..."
        return f"{answer.rstrip()} Later you told me you {note[0].lower()}{note[1:]}"
    return f"{answer.rstrip()} Later you told me: {note}"


def changed_answer(
    question: str,
    answer: str,
    hits: Sequence[MemoryItem],
    note_of: Callable[[MemoryItem], str | None],
    keep: Callable[[str], bool],
    search: Callable[[str], Sequence[MemoryItem]],
) -> tuple[str, MemoryItem, MemoryItem] | None:
    """``answer`` with what a note told after the one holding it changed, the memory it took
    its words from and the later one; None when nothing later changed it. ``keep``: a note
    the question may be answered from (whom it names); ``search(text)``: the memories like
    ``text``."""
    if not asks_now(question):
        return None
    pairs = [(i, n) for i in hits if (n := note_of(i)) and keep(n)]
    for held in holders(answer, question, pairs)[:HELD]:
        found = [i for i in search(held[0].text) if i.created_at > held[0].created_at]
        told = [(i, n) for i in found if (n := note_of(i)) and keep(n)]
        changed = changes(answer, question, held, [*pairs, *told])
        if changed:
            return told_later(answer, changed[0].note), held[0], changed[0].item
    return None
