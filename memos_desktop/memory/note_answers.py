"""Questions one note answers as it stands, said from that note without the model: how the
assistant was asked to behave ("How long should your answers be?" -> "You asked me to keep my
answers short."), a yes/no the note says in so many words ("Do I drink alcohol?" -> "No, you do
not drink alcohol."), a choice it settles ("Do I prefer tea or coffee?" with "I have switched
to coffee").

A small base model given the right note still answers these wrong: it does not see that a
request is the answer to a question about the assistant, answers "Yes." beside "You do not
drink alcohol.", or takes the first of two alternatives.

Design rules:
- Only the question's first few hits (:data:`RANKS`, not episodes) may answer, so the note is
  one the search found about this question; when none fits the rule, the model answers.
- Every word the rule needs must be in the note (a yes/no: all the question's content words;
  a choice: exactly one of the alternatives); the answer is the note itself, in the
  assistant's words, after the yes, no or choice.
- The questions are about the person ("Do I ..."), so a note the reader's patterns read as
  being about someone else ("My sister has a dog") never answers them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from memos_desktop.memory import asked_kind, completion, slots
from memos_desktop.memory.lexicon import (
    CATEGORIES,
    CATEGORY_WORDS,
    KINDS,
    RELATIONS,
    SYNONYMS,
    TOPIC_SYNONYMS,
    my_relations,
    own_relation,
)
from memos_desktop.memory.reader import FUNCTION_WORDS, READ_KEY, stem
from memos_desktop.memory.slot_answers import CHANGED, Memories, MemoryAnswer, content_words
from memos_desktop.store.records import MemoryItem

# How far down the question's hits (episodes left out) a note may be to answer it.
RANKS = 3


def _first(hits: Sequence[MemoryItem]) -> list[MemoryItem]:
    return [i for i in hits if i.type != "episode" and i.key != READ_KEY and i.status == "active"][
        :RANKS
    ]


def about_someone_else(text: str) -> bool:
    """Is the note read as being about another subject than the person ("My sister has a
    dog", "Rui works at a bank")? Unread notes are not."""
    said = re.sub(r"^\s*User:\s*", "", text)  # a raw episode: what the person said
    read = slots.subject_of(" ".join(said.split()))
    return read is not None and read[0] != "self"


# --- questions about what the assistant was asked to do --------------------------------------

# "Which units should you use with me?", "How long should your answers be?", "What did I ask
# you to call me?": the person asks how the assistant is to behave, which their standing
# instructions say.
_TO_YOU = re.compile(
    r"\b(?:should|must|shall) (?:you|your)\b|\byou (?:should|must)\b|"
    r"\b(?:did|do) I (?:ask|tell|want|need) you\b|\b(?:are|were) you (?:supposed|meant) to\b|"
    # the form the person wants things in ("what time format do I want")
    r"\b(?:format|units?)\b.*\bdo I (?:want|prefer|like|use)\b",
    re.I,
)


# How the assistant hands something over, not what: no word of what is asked.
_HANDING = frozenset(stem(w) for w in "give giving tell show use put send".split())
# A note said to the assistant ("no emojis in your answers pls").
_ADDRESSED = re.compile(r"\b(?:you|your|yours)\b", re.I)


def instruction_answer(question: str, hits: Sequence[MemoryItem]) -> MemoryAnswer | None:
    """A question about how the assistant is to behave, answered with the best-matching
    standing instruction among the question's first hits ("You asked me to keep my answers
    short."), or None."""
    if not completion.is_question(question) or not _TO_YOU.search(question):
        return None
    want = asked_words(question) - _HANDING  # "give" of "How should you give me temperatures?"
    best: tuple[int, int, MemoryAnswer] | None = None
    first = {i.id for i in _first(hits)}
    for rank, item in enumerate(hits):
        if item.type == "instruction" and item.status == "active":
            note = completion.note_text(item.text)
            if not note:
                continue
            # The instruction the question names ("temperatures" in "Use Celsius for
            # temperatures", "Celsius" a temperature), found anywhere among the hits; else
            # the best of the first: a question's words may be none of its own ("How long
            # should your answers be?" and "Keep replies short").
            shared = len(want & (asked_words(item.text) | kinds_named(item.text)))
            if not shared and item.id not in first:
                continue
            if best is None or shared > best[0]:
                best = (shared, rank, MemoryAnswer(note, item))
    if best is None:
        return None
    shared, _, said = best
    chosen = asked_words(said.item.text)
    for other in hits[: RANKS + 1]:
        if other.id == said.item.id or other.status != "active" or other.key == READ_KEY:
            continue
        words = asked_words(other.text) & want
        if not words or completion.note_text(other.text) is None:
            continue
        if other.type != "instruction" and not _ADDRESSED.search(other.text):
            continue  # "I call my mum on Sundays" says nothing of how to call the person
        if len(words) > shared or (other.created_at > said.item.created_at and words & chosen):
            # another note names more of what is asked ("no emojis in your answers pls", not
            # read as an instruction), or a later one may change it
            # ("you can go a bit longer with answers now"): the model reads them in order
            return None
    return said


# --- yes/no questions a note answers ---------------------------------------------------------

_YES_NO = re.compile(r"^(?:do|did|am|was|have|can) (?:i|we)\b(?P<rest>.*)$", re.I)
_NEGATION = frozenset(
    """not never no don't doesn't didn't haven't can't cannot won't isn't aren't wasn't
    barely rarely hardly seldom stopped quit longer""".split()
)
# How many words before what it denies a negation may stand ("I do not really drink wine").
_REACH = 3


def denied(text: str, stems: set[str]) -> bool:
    """Is the first word of ``text`` among ``stems`` denied by a negation just before it ("I
    do not drink alcohol", "I barely drink tea now"), rather than elsewhere in the text ("I
    am vegan now, not just vegetarian" does not deny "vegan")?"""
    words = re.findall(r"[\w']+", text.casefold())
    for i, w in enumerate(words):
        if stem(w) in stems:
            return any(x in _NEGATION for x in words[max(0, i - _REACH) : i])
    return False


def yes_no_answer(question: str, hits: Sequence[MemoryItem]) -> MemoryAnswer | None:
    """A yes/no question about the person ("Do I drink alcohol?") that a note says in so many
    words, with or without a negation ("I do not drink alcohol"): "No, you do not drink
    alcohol." Every content word of the question must be in the note; the newest such note of
    the first few hits speaks. A choice ("tea or coffee?") is not a yes/no question."""
    q = " ".join(question.split()).rstrip(" ?")
    m = _YES_NO.match(q)
    if m is None or re.search(r"\bor\b", q, re.I):
        return None
    want = content_words(m.group("rest"))
    if not want:
        return None
    said = [
        i
        for i in _first(hits)
        if i.type != "instruction"
        and want <= content_words(i.text)
        and not about_someone_else(i.text)
    ]
    if not said:
        return None
    item = max(said, key=lambda i: i.created_at)
    item = _denied_later(item, m.group("rest"), hits) or item
    note = completion.note_text(item.text)
    if not note:
        return None
    yes = "No" if denied(item.text, want) else "Yes"
    if re.match(r"^You(?:r|'re)?\b", note):
        note = note[0].lower() + note[1:]
    return MemoryAnswer(f"{yes}, {note}", item)


_YES_NO_NAMED = re.compile(
    r"^(?:is|does|did|was|has|can) (?P<name>(?-i:[A-Z])[\w'-]+) (?P<rest>.+)$", re.I
)


_NOT_NAMES = frozenset(("I", "It", "There", "This", "That"))


def named_yes_no_answer(
    question: str, hits: Sequence[MemoryItem], note_of: Callable[[MemoryItem], str | None]
) -> MemoryAnswer | None:
    """A yes/no question about someone the person named ("Is Dominika vegan?", "Does Kuba play
    bass?") that a note naming them says in so many words: "Yes, Dominika ... she's vegan".
    Every content word of the question must be in the note; the newest such note of the
    first few hits speaks."""
    q = " ".join(question.split()).rstrip(" ?")
    m = _YES_NO_NAMED.match(q)
    if m is None or re.search(r"\bor\b", q, re.I) or m.group("name") in _NOT_NAMES:
        return None
    name, want = m.group("name").casefold(), content_words(m.group("rest"))
    if not want:
        return None
    notes = _notes(hits, note_of, RANKS + 1)
    said = [
        (item, note)
        for item, note in notes[:RANKS]
        if name in _words_of(note) and want <= content_words(note)
    ]
    if not said:
        return None
    item, note = max(said, key=lambda f: f[0].created_at)
    for other, told in notes:
        # "Kuba quit the café": a later note may have changed it; the model reads both
        if other.created_at > item.created_at and name in _words_of(told) and CHANGED.search(told):
            return None
    return MemoryAnswer(f"{'No' if denied(note, want) else 'Yes'}, {note}", item)


def _denied_later(item: MemoryItem, asked: str, hits: Sequence[MemoryItem]) -> MemoryItem | None:
    """A later note among the first hits that denies what the question ends on ("I've quit
    coffee completely" after "I drink a lot of coffee", for "Do I drink coffee?"): it is the
    answer now."""
    words = [stem(w) for w in re.findall(r"[\w']+", asked.casefold()) if content_words(w)]
    if not words:
        return None
    last = {words[-1]}
    later = [
        i
        for i in _first(hits)
        if i.created_at > item.created_at
        and i.type != "instruction"
        and last <= content_words(i.text)
        and denied(i.text, last)
        and not about_someone_else(i.text)
    ]
    return max(later, key=lambda i: i.created_at) if later else None


# --- a choice between two things -------------------------------------------------------------

_CHOICE = re.compile(
    r"^(?:do|did|would|should|will|am) (?:i|we) (?:\w+ )?(?:\w+ )?(?P<a>[\w'-]+) or "
    r"(?:(?:a|an|the) )?(?P<b>[\w'-]+)$",
    re.I,
)


def choice_answer(question: str, hits: Sequence[MemoryItem]) -> MemoryAnswer | None:
    """A choice between two things ("Do I prefer tea or coffee?") that the latest of the first
    hits naming exactly one of them settles: for it ("I have switched to coffee"), or against
    it, which picks the other ("I barely drink tea now")."""
    q = " ".join(question.split()).rstrip(" ?")
    m = _CHOICE.match(q)
    if m is None:
        return None
    a, b = m.group("a"), m.group("b")
    sa, sb = stem(a.casefold()), stem(b.casefold())
    if sa == sb:
        return None
    votes: list[tuple[float, str, MemoryItem]] = []
    for item in _first(hits):
        words = {stem(w) for w in re.findall(r"[\w'-]+", item.text.casefold())}
        named = [(w, o) for w, s, o in ((a, sa, b), (b, sb, a)) if s in words]
        if len(named) != 1 or item.type == "instruction" or about_someone_else(item.text):
            continue
        word, other = named[0]
        against = denied(item.text, {stem(word.casefold())})
        votes.append((item.created_at, other if against else word, item))
    if not votes:
        return None
    _, pick, item = max(votes, key=lambda v: v[0])
    note = completion.note_text(item.text)
    if not note:
        return None
    if re.match(r"^You(?:r|'re)?\b", note):
        note = note[0].lower() + note[1:]
    return MemoryAnswer(f"{pick[0].upper()}{pick[1:]}: {note}", item)


# --- a question whose every word a note holds ------------------------------------------------

_ASKS_WHAT = re.compile(
    r"^(?:what|where|when|who|whose|which|how)\b|^(?:can you |could you )?(?:please )?"
    r"(?:remind|tell) me\b|^do you (?:know|remember)\b",
    re.I,
)
# Words of a question that say how it asks, not what about.
_HOW_ASKED = frozenset(
    """how why whose whom kind sort type again remind tell know remember please exactly
    actually ever usually currently still any anything something should would could can
    must shall may might""".split()
)
# Fewest words a question must have for a note holding them all to answer it: with one
# ("Where do I live?") that is a note that merely mentions it.
COVER_WORDS = 2


def asked_words(text: str) -> set[str]:
    """The stems of what a text is about: no function words, no "'s", contractions joined."""
    t = re.sub(r"'s\b", "", text.casefold().replace("\u2019", "'")).replace("'", "")
    return {
        # "mum" is "mother", "films" "movie", "office" "work"
        stem(RELATIONS.get(w, SYNONYMS.get(w, TOPIC_SYNONYMS.get(w, w))))
        for w in re.findall(r"\w+", t)
        if w not in FUNCTION_WORDS and w not in _HOW_ASKED and len(w) > 1
    }


def _notes(
    hits: Sequence[MemoryItem], note_of: Callable[[MemoryItem], str | None], n: int = RANKS
) -> list[tuple[MemoryItem, str]]:
    """The first ``n`` hits with a fact, as notes (episodes the reader could not read
    included: what was said is all there is of them; a message the reader read: whole,
    while what it read holds). Instructions are not facts. A note said again (a memory and
    the raw exchange it was read from) counts once, as the first hit that gives it."""
    out: list[tuple[MemoryItem, str]] = []
    for item in hits:
        if item.status != "active" or item.type == "instruction":
            continue
        note = note_of(item)
        if note and all(note != n for _, n in out):
            out.append((item, note))
        if len(out) >= n:
            break
    return out


def covering_answer(
    question: str, hits: Sequence[MemoryItem], note_of: Callable[[MemoryItem], str | None]
) -> MemoryAnswer | None:
    """A question (what, where, who... at least :data:`COVER_WORDS` words about something)
    that a note among the first hits answers by holding every one of its words and more
    ("What kind of music am I into?" -> "Music-wise you're into post-rock, Mogwai..."): said
    from that note (``note_of`` gives a memory's note). Of several, the newest speaks (a
    later note replaces an earlier one). A question about the person is not answered from a
    note about someone else."""
    q = " ".join(question.split())
    if not completion.is_question(q) or not _ASKS_WHAT.match(q):
        return None
    want = asked_words(q)
    if len(want) < COVER_WORDS:
        return None
    others = {stem(w.casefold()) for w in re.findall(r"(?<!^)\b(?-i:[A-Z])\w+", q)}
    others |= {w for w in want if w in RELATIONS.values()}
    # one note past the first few: a later one there may still change the answer
    first = [(item, note, asked_words(note)) for item, note in _notes(hits, note_of, RANKS + 1)]
    found = [
        (item, note, have)
        for item, note, have in first[:RANKS]
        if want <= have
        and have - want
        and not (about_someone_else(item.text) and not want & others)
    ]
    if not found:
        return None
    item, note, held = max(found, key=lambda f: f[0].created_at)
    for other, _, have in first:
        if other.created_at > item.created_at and want & have & held:
            return None  # a later note on the same thing may have changed it: the model reads both
    return MemoryAnswer(note, item)


# --- how many of a kind of relative ----------------------------------------------------------

_HOW_MANY = re.compile(
    r"^how many (?P<kind>[\w-]+) (?:do|have|did) (?:i|we) (?:have|got|own|have got)\s*\??$", re.I
)
_COUNTS = "no one two three four five six seven eight nine ten".split()


def _relation_of(word: str) -> str | None:
    w = word.casefold()
    for form in (w, w[:-1] if w.endswith("s") else w, w[:-3] + "y" if w.endswith("ies") else w):
        if form in RELATIONS:
            return RELATIONS[form]
    return None


def _listed(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def count_answer(question: str, hits: Sequence[MemoryItem]) -> MemoryAnswer | None:
    """ "How many kids do I have?": the person's relatives of that kind the hits name ("our
    daughter Zosia" is one), said as what they told ("You've told me about one daughter,
    Zosia."). Only relatives named count, each once; none named gives no answer (the model's,
    or "I don't know")."""
    m = _HOW_MANY.match(" ".join(question.split()))
    if m is None:
        return None
    rel = _relation_of(m.group("kind"))
    if rel is None:
        return None
    kinds = {rel, *KINDS.get(rel, ())}
    named: dict[str, tuple[str, MemoryItem]] = {}
    for item in hits:
        if item.status != "active" or item.type == "instruction":
            continue
        for r, name in sorted(Memories([item]).links):
            # each name once, by its own relation rather than the kind ("daughter", not "kid")
            if r in kinds and (name not in named or (named[name][0] in KINDS and r not in KINDS)):
                named[name] = (r, item)
    if not named or len(named) >= len(_COUNTS):
        return None
    n = _COUNTS[len(named)]
    rels = {r for r, _ in named.values()}
    if len(rels) == 1:
        (one,) = rels
        plural = one if len(named) == 1 else ("children" if one == "child" else one + "s")
        text = f"You've told me about {n} {plural}, {_listed([x.title() for x in named])}."
    else:
        said = _listed([f"your {r} {name.title()}" for name, (r, _) in named.items()])
        text = f"You've told me about {n}: {said}."
    first = next(iter(named.values()))[1]
    return MemoryAnswer(text, first)


# --- who someone is --------------------------------------------------------------------------

_WHO = re.compile(r"^(?:who|whos|who's|who is|who was)\s+(?P<name>(?-i:[A-Z])[\w'-]+)\s*\??$", re.I)
# Words that say who someone is to the person, besides the relations' own.
_ROLE_WORDS = frozenset(
    """colleague boss manager lead team neighbour friend partner flatmate roommate teacher
    doctor coach mentor student landlord in-law""".split()
)


def _words_of(text: str) -> set[str]:
    return {re.sub(r"'s$", "", w) for w in re.findall(r"[\w'-]+", text.casefold())}


def who_answer(
    question: str, hits: Sequence[MemoryItem], note_of: Callable[[MemoryItem], str | None]
) -> MemoryAnswer | None:
    """ "Who is Kuba?": who a person is to the person asking is in the note that names them
    with a relation or a role ("Kuba - my best friend since primary school - plays bass");
    of several, the earliest (where they were introduced). A note naming them without one
    ("Kuba quit the cafe") does not say who they are."""
    m = _WHO.match(" ".join(question.split()).replace("\u2019", "'"))
    if m is None or m.group("name") in ("I", "It", "This", "That", "There"):
        return None
    name = m.group("name").casefold()
    found = [
        (item, note)
        for item, note in _notes(hits, note_of)
        if name in _words_of(note) and _words_of(note) & (set(RELATIONS) | _ROLE_WORDS)
    ]
    if not found:
        return None
    item, note = min(found, key=lambda f: f[0].created_at)
    return MemoryAnswer(note, item)


# --- the note that answers, when the model's own answer is not supported ---------------------


def _others(q: str, want: set[str]) -> set[str]:
    """The names and relations a question asks about (beside the person)."""
    names = {stem(w.casefold()) for w in re.findall(r"(?<!^)\b(?-i:[A-Z])[\w-]+", q)}
    return names | {w for w in want if w in RELATIONS.values()}


def _with_links(have: set[str], links: Iterable[tuple[str, str]]) -> set[str]:
    """A note's stems, with the relatives it names by name ("You walk Fasola" holds "dog"
    when Fasola is the dog): ``links`` are (relation, name) pairs, ``Memories.links``."""
    return have | {rel for rel, name in links if any(stem(w) in have for w in name.split())}


# each kind's members, and the stems of the question words that ask for it
_KINDS = [
    (members, frozenset(stem(w) for w, k in CATEGORY_WORDS.items() if k == kind))
    for kind, members in CATEGORIES.items()
]


def kinds_named(text: str) -> set[str]:
    """The stems of the words that ask for a kind of thing ``text`` names one of ("sport",
    "hobby", "unwind" for "I love bouldering"; "breed" for "a beagle called Fasola")."""
    words = set(re.findall(r"[\w-]+", text.casefold()))
    return {w for members, asking in _KINDS if members & words for w in asking}


def _on_subject(q: str, others: set[str], item: MemoryItem, note: str, have: set[str]) -> bool:
    if not others <= have:
        return False  # not about everyone the question names
    if not others and about_someone_else(item.text):
        return False
    # "Agnieszka's brother" is not "my brother"
    return all(own_relation(rel, note) for rel in my_relations(q))


def on_topic(
    question: str,
    item: MemoryItem,
    note: str,
    *,
    links: Iterable[tuple[str, str]] = (),
) -> bool:
    """Is ``note`` (``item``'s) about whom and what ``question`` asks: everyone it names, each
    relative it calls the person's own as theirs, the person when it names no one else, and
    one word at least of what is asked beside them ("size" of "What is my shoe size?"; the
    words that only say what kind of answer is wanted aside)?"""
    q = " ".join(completion.plain_question(question).split())
    want = asked_words(q)
    others = _others(q, want)
    have = _with_links(asked_words(note) | asked_words(item.text), links)
    if not _on_subject(q, others, item, note, have):
        return False
    have |= kinds_named(f"{note} {item.text}")
    light = asked_kind.KIND_WORDS | asked_kind.LIGHT_WORDS | asked_kind.TIME_WORDS | _WHEN_WORDS
    topic = want - others - {stem(w) for w in light}
    return not topic or bool(topic & have)


_WHEN_WORDS = frozenset("last next this ago".split())  # "last winter" is not the topic


def quoted_answer(
    question: str,
    hits: Sequence[MemoryItem],
    note_of: Callable[[MemoryItem], str | None],
    *,
    links: Iterable[tuple[str, str]] = (),
) -> MemoryAnswer | None:
    """The note among the first hits that answers ``question``, when the model's own answer
    was not supported by the notes (or was "I don't know" beside them): said as what the
    person told ("You told me you love bouldering, ..."), or None.

    A note answers when it is about the subject asked about (the person, or the relative or
    name the question names), holds every word of what is asked (the words that only say what
    kind of answer is wanted aside: "old" in "How old is my dad?"), and holds that kind of
    answer (a number, a time, a name, a colour; for "what" and "which" any word the question
    does not have). A question that names nothing but its subject, or nothing at all, is not
    answered this way. Of several notes, the one holding most of the question's words and
    then the newest speaks (a later note replaces an earlier one)."""
    q = " ".join(completion.plain_question(question).split())
    if not completion.is_question(q):
        return None
    want = asked_words(q)
    if not want:
        return None
    others = _others(q, want)
    topic = want - others - {stem(w) for w in asked_kind.KIND_WORDS | asked_kind.LIGHT_WORDS}
    wh = _ASKS_WHAT.match(q) is not None
    found: list[tuple[int, float, MemoryItem, str]] = []
    for item, note in _notes(hits, note_of):
        have = _with_links(asked_words(note) | asked_words(item.text), links)
        if not _on_subject(q, others, item, note, have):
            continue
        have |= kinds_named(f"{note} {item.text}")
        shared = topic & have
        if not wh:
            if not topic or shared != topic:
                continue  # a yes/no: every word of it
        else:
            kind = asked_kind.found(q, note)
            if kind is False or (kind is None and (len(shared) < 2 and not others)):
                continue
            if kind is None and not have - want:
                continue  # nothing beyond the question's words
            if not topic and (kind is None or not others):
                continue
            if 3 * len(shared) < 2 * len(topic) and not (others and 2 * len(shared) >= len(topic)):
                # most of what is asked, one word of three aside; half of it beside the names
                # the note holds ("Which languages do I speak besides Polish and English?")
                continue
        found.append((len(want & have), item.created_at, item, note))
    if not found:
        return None
    _, _, item, note = max(found, key=lambda f: (f[0], f[1]))
    if re.match(r"^You(?:r|'re|'ve|'ll|'d)?\b", note):
        return MemoryAnswer(f"You told me {note[0].lower()}{note[1:]}", item)
    return MemoryAnswer(f"You told me: {note}", item)
