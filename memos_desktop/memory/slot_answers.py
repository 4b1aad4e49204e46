"""Questions that ask for one slot of a memory ("Where do I live?" -> self / residence): said
from the memory that holds the slot's value, and kept away from notes about something else.

A small base model answers from whichever note is nearest or most alike, and often takes
another subject's ("What is my name?" -> "Your name is Rosa." from "My mother's name is
Rosa"). When the question asks for exactly one attribute of one subject, the memories say which
of them hold it: the reader's patterns (``memory/slots.py``) read the same subject and
attribute from a memory ("My sister Ines lives in Lisbon" -> sister:ines / residence) as from
the question ("Where does my sister live?" -> sister / residence).

Design rules:
- Patterns only, as in ``slots.py``: a question they do not read is answered as before, by the
  model. Only plain questions about one subject and one attribute are read; anything else
  ("What do I do on Sundays?", "Where did we go in June?") yields nothing.
- A slot is answered without the model only when the memories hold one value for it (of a
  single-valued attribute, the latest memory's: a later one replaces an earlier one), and
  no newer memory that the patterns do not read as another slot shares its words (it may be
  a change they missed). The answer is that memory as a plain fact about "you" (what the model
  is shown and would copy), or for a relative's name "Your sister is called Ines.".
- Otherwise the model answers, but from notes that may hold the slot: a note read as being
  about another subject, or only about other single-valued attributes of the same subject
  ("Your mother's name is Rosa." for "Where does my mother live?"), is left out. A note the
  patterns cannot read is always kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from memos_desktop.memory import completion, slots, statements
from memos_desktop.memory.lexicon import RELATIONS, SYNONYMS
from memos_desktop.memory.reader import FUNCTION_WORDS, READ_KEY, stem
from memos_desktop.memory.slots import Claim
from memos_desktop.store.records import MemoryItem


@dataclass(frozen=True)
class Asked:
    """What a question asks for: one attribute of one subject."""

    subject: str  # "self", "sister", "sister:ines", "leo"
    attribute: str  # "residence", "name", "favourite-book", "middle-name"
    obj: str = ""  # a multi-valued attribute's object
    phrase: str = ""  # the subject as asked ("my best friend"), for the answer
    words: frozenset[str] = frozenset()  # the question's content words (stems)

    def memory_keys(self) -> list[str]:
        """The memory keys (``Claim.key``) the reader may have stored this slot under, and for
        a relative the key of their name ("My husband is called Rui" says who "Rui" is in
        "Rui is a firefighter")."""
        rel, _, name = self.subject.partition(":")
        subjects = [self.subject] + ([rel, name] if name else [])
        tail = f":{self.obj}" if self.obj else ""
        keys = [f"{s}:{self.attribute}{tail}" for s in subjects]
        if rel in RELATIONS.values():
            keys.append(f"{rel}:name")
        if self.attribute == "surname":  # the last word of a full name
            keys += [f"{s}:name" for s in subjects]
        return list(dict.fromkeys(keys))


# --- reading the question --------------------------------------------------------------------

_REL = "|".join(sorted((re.escape(r) for r in RELATIONS), key=len, reverse=True))
_ADJ = r"(?:best|older|younger|little|big|eldest|youngest|oldest|twin|new|baby|elder) "
_NAME = r"(?-i:[A-Z])[\w'-]+"
_STOP_NAMES = frozenset("I It This That There The What Where When Who Why How Which".split())


def _subject(possessive: bool) -> str:
    """A subject: I/we, my (best) sister (Ines), a name; with ``possessive``, my/our, my
    sister's, Ines's."""
    s = "'s" if possessive else ""
    own = r"(?P<self>my|our)" if possessive else r"(?P<self>i|we)"
    return (
        rf"(?:(?P<rel>(?:my|our) (?:{_ADJ})?(?:{_REL}))(?: (?P<relname>{_NAME}))?{s}|"
        rf"{own}|(?P<name>{_NAME}){s})"
    )


_S, _P = _subject(False), _subject(True)
_NOW = r"(?: now| these days| at the moment| nowadays)?"
_QUESTIONS: list[tuple[str, str]] = [
    ("residence", rf"where (?:do|does) {_S} (?:live|stay|reside){_NOW}"),
    ("residence", rf"(?:which|what) (?:city|town|country|village) (?:do|does) {_S} live in{_NOW}"),
    ("residence", rf"where (?:am|is|are) {_S} (?:living|based){_NOW}"),
    ("residence", rf"where (?:did|has|have) {_S} (?:just |recently )?move(?:d)? to"),
    ("surname", rf"what (?:is|was) {_P} (?:surname|family name|last name)"),
    ("name", rf"what (?:is|was) {_P} (?:(?P<adj>[a-z]+) )?name"),
    ("name", rf"what (?:is|are) {_S} called"),
    ("name", rf"who (?:is|are) {_S}"),
    ("name", rf"what is the name of {_S}"),
    ("spouse", rf"who (?:am|is|are) {_S} married to"),
    ("occupation", rf"what (?:is|was) {_P} (?:job|occupation|profession){_NOW}"),
    ("occupation", rf"what (?:do|does) {_S} do(?: for (?:work|a living))?{_NOW}"),
    ("occupation", rf"what (?:do|does) {_S} work as{_NOW}"),
    ("occupation", rf"what (?:job|work) (?:do|does) {_S} (?:do|have){_NOW}"),
    ("employer", rf"where (?:do|does) {_S} work{_NOW}"),
    ("employer", rf"(?:who|which company) (?:do|does) {_S} work (?:for|at){_NOW}"),
    ("employer", rf"(?:who|what) is {_P} employer{_NOW}"),
    ("birthday", rf"when (?:is|was) {_P} birthday"),
    ("birthday", rf"when was {_S} born"),
    ("birthday", rf"what is {_P} (?:date of birth|birth date|birthdate)"),
    ("birthplace", rf"where was {_S} born"),
    ("origin", rf"where (?:am|is|are) {_S} (?:originally )?from"),
    ("origin", rf"where (?:do|does) {_S} come from"),
    ("age", rf"(?:how old|what age) (?:am|is|are) {_S}{_NOW}"),
    (
        "car",
        rf"(?:what|which) (?:(?:kind|make|model|type|brand) of )?car (?:do|does) {_S} "
        rf"(?:drive|have|own){_NOW}",
    ),
    ("car", rf"what (?:is|colou?r is) {_P} car{_NOW}"),
    ("car", rf"what (?:do|does) {_S} drive{_NOW}"),
    ("commute", rf"how (?:do|does) {_S} (?:get|go|travel|commute) to work{_NOW}"),
    ("commute", rf"how (?:do|does) {_S} commute{_NOW}"),
    ("diet", rf"what (?:kind of )?diet (?:do|does) {_S} (?:follow|have|keep){_NOW}"),
    ("diet", rf"what is {_P} diet{_NOW}"),
    ("study", rf"what (?:do|does) {_S} study{_NOW}"),
    ("children", rf"how many (?:children|kids) (?:do|does) {_S} have"),
    (
        "when",
        rf"when is {_P} (?P<what>[\w -]+?) (?:appointment|meeting|class|lesson|exam|"
        rf"interview|check-up|checkup|session|training)",
    ),
    (
        "when",
        rf"when (?:do|does) {_S} (?:go |have |do |take )?(?P<what>[\w-]+ing|[\w-]+ "
        rf"(?:class|lessons?|training))",
    ),
    ("phone", rf"what (?:is|was) {_P} (?:phone|mobile|telephone) number"),
    ("email", rf"what (?:is|was) {_P} e-?mail(?: address)?"),
    ("address", rf"what (?:is|was) {_P} (?:home |postal )?address"),
    ("favourite", rf"(?:what|which|who) (?:is|are) {_P} favou?rite (?P<what>[a-z][a-z -]*)"),
]
_COMPILED = [(a, re.compile(rf"^{rx}$", re.I)) for a, rx in _QUESTIONS]
# Names that are the same slot as "name"; any other ("middle name") is a slot of its own.
_SAME_NAME = frozenset({"first", "full", "real", "given"})


def asked(question: str) -> Asked | None:
    """The slot a question asks for, or None when it is not a plain question about one."""
    q = " ".join(question.replace("\u2019", "'").split()).rstrip(" ?.!")
    q = re.sub(r"^(what|who|where|when|how)'s\b", r"\1 is", q, flags=re.I)
    for attribute, rx in _COMPILED:
        m = rx.match(q)
        if m is None:
            continue
        g = m.groupdict()
        if g.get("self"):
            subject, phrase = "self", ""
        elif g.get("rel"):
            word = g["rel"].split()[-1].casefold()
            name = g.get("relname")
            subject = RELATIONS[word] + (f":{name.casefold()}" if name else "")
            phrase = g["rel"] + (f" {name}" if name else "")
        elif g.get("name") and g["name"] not in _STOP_NAMES:
            if attribute == "name":
                return None  # "Who is Leo?" asks who, not a name
            subject, phrase = g["name"].casefold(), g["name"]
        else:
            continue
        if attribute == "name" and subject == "self" and q.casefold().startswith("who"):
            return None  # "Who am I?"
        if g.get("adj") and g["adj"].casefold() not in _SAME_NAME:
            attribute = f"{g['adj'].casefold()}-name"
        obj = ""
        if attribute == "favourite":
            what = " ".join(g["what"].casefold().split())
            attribute = "favourite-" + SYNONYMS.get(what, what).replace(" ", "-")
        elif attribute == "when":
            obj = slots.obj_key(g["what"])
        return Asked(subject, attribute, obj, phrase, frozenset(content_words(q)))
    return None


# --- what memories say -----------------------------------------------------------------------

# "Since the move I cycle to work", "These days my favourite food is ...": a leading phrase
# the reader's patterns stop at, before the subject.
_LEADING = re.compile(r"^(?:[A-Za-z]+,? ){1,4}?(?=(?:I|we|We|my|My|our|Our)\b)")


def claims_of(text: str) -> list[Claim]:
    """The claims the reader's patterns find in a memory; when they find none, the same after
    a short leading phrase ("Since the move", "These days")."""
    text = re.sub(r"^\s*User:\s*", "", text)  # a raw episode: what the person said
    out = [c for s in statements.read(text) for c in s.claims]
    if out:
        return out
    m = _LEADING.match(text.strip())
    if m is None:
        return []
    rest = text.strip()[m.end() :]
    return [c for s in statements.read(rest[0].upper() + rest[1:]) for c in s.claims]


def _single(attribute: str) -> bool:
    """One value at a time: the reader's single-valued attributes, a name of any kind, and
    when a given thing happens ("my dentist appointment", "swimming")."""
    return (
        slots.single(attribute) or attribute.endswith("-name") or attribute in ("when", "surname")
    )


class Memories:
    """The claims of the candidate memories, and which names are which relatives ("My sister
    Ines lives in Lisbon": Ines is the sister)."""

    def __init__(self, items: Iterable[MemoryItem]) -> None:
        self.items: dict[str, MemoryItem] = {}
        self.claims: dict[str, list[Claim]] = {}
        self.links: set[tuple[str, str]] = set()
        for item in items:
            if item.id in self.items or item.status != "active":
                continue
            if item.type == "episode" or item.key == READ_KEY:
                continue
            self.items[item.id] = item
            cl = claims_of(item.text)
            self.claims[item.id] = cl
            for c in cl:
                rel, _, name = c.subject.partition(":")
                if name and rel in RELATIONS.values():
                    self.links.add((rel, name))
                elif c.attribute == "name" and c.subject in RELATIONS.values() and c.value:
                    self.links.add((c.subject, c.value))

    def same(self, asked: str, said: str) -> bool:
        """Is ``said`` (a claim's subject) the subject ``asked`` about?"""
        if slots.same_subject(asked, said):
            return True
        a, b = asked.partition(":")[0], said.partition(":")[0]
        return (a, said) in self.links or (b, asked) in self.links

    def names_of(self, ask: Asked) -> set[str]:
        """The words that name the subject asked about, when it is not the person: the
        relation's words, their name and the names linked to them ("wife", "agnieszka"),
        as stems; empty for the person."""
        if ask.subject == "self":
            return set()
        rel, _, name = ask.subject.partition(":")
        words = {rel, name} | {w for w, r in RELATIONS.items() if r == rel}
        words |= {n for r, n in self.links if r == rel} | {r for r, n in self.links if n == rel}
        words |= {w for w, r in RELATIONS.items() for r2, n in self.links if n == rel and r == r2}
        return {n for w in words if w for n in name_words(w)}

    def value(self, ask: Asked, c: Claim) -> str:
        """The value ``c`` gives the asked slot, or ""."""
        if not self.same(ask.subject, c.subject) or c.negated or c.weak:
            return ""
        if ask.attribute == "name" and ask.subject != "self":
            if c.attribute == "name" and c.value:
                return c.value
            _, _, name = c.subject.partition(":")
            if name:
                return name
            return next((n for r, n in self.links if r == c.subject), "")
        if ask.attribute == "surname" and c.attribute == "name":
            # "I am Bartosz Nowicki": a full name's last word ("Ines" alone says none)
            words = c.value.split()
            return words[-1] if len(words) > 1 else ""
        if c.attribute != ask.attribute or (ask.obj and c.obj != ask.obj):
            return ""
        return c.value or c.obj

    def fits(self, ask: Asked, text: str, item_id: str = "") -> bool:
        """May a memory (its text and id) hold the asked slot? Not if it is read as being
        about other subjects only, or only about other single-valued attributes of the asked
        one."""
        cl = self.claims.get(item_id)
        if cl is None:
            cl = claims_of(text)
        if not cl:
            return True
        mine = [c for c in cl if self.same(ask.subject, c.subject)]
        if not mine:
            return False
        if any(self.value(ask, c) for c in mine) or not _single(ask.attribute):
            return True
        # A description ("Our daughter Zosia is 4 and loves dinosaurs") may say anything.
        return not all(
            _single(c.attribute) and c.attribute not in (ask.attribute, "description") for c in mine
        )


_WORD = re.compile(r"[a-z0-9']+")


def name_words(text: str) -> set[str]:
    """The stems of a text's words, any script, without "'s" ("Michał's" -> "michał")."""
    t = re.sub(r"'s\b", "", text.casefold().replace("\u2019", "'"))
    return {stem(w) for w in re.findall(r"\w+", t)}


def content_words(text: str) -> set[str]:
    """The stems of a text's words that are not function words."""
    return {stem(w) for w in _WORD.findall(text.casefold()) if w not in FUNCTION_WORDS}


_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|me|my|we|we're|our|us|you|your|you're)\b", re.I)
# Words that say something changed ("Joanna relocated to Poznan", "kuba quit the cafe").
CHANGED = re.compile(
    r"\b(?:moved|relocated|switched|changed|quit|left|replaced|sold|swapped|no longer|"
    r"any ?more|instead|now|new|since)\b",
    re.I,
)


def _may_change(ask: Asked, mem: Memories, other: MemoryItem, item: MemoryItem, said: str) -> bool:
    """Could ``other`` (newer than ``item``, the memory holding the slot; ``said``: the
    whole message it was read from, or its text) change it? When it shares with both the
    question and ``item`` the words of what is asked, or names the relative or person asked
    about and says something changed, and is not read as being about another subject or
    another single-valued attribute ("Lately the book I love most is Solaris" may change "My
    favourite book is Dune"; "I work night shifts" says nothing of "I am a nurse")."""
    named = ask.subject != "self" and bool(
        content_words(ask.phrase or ask.subject.rpartition(":")[2]) & content_words(said)
    )
    if not ask.words & content_words(said) & content_words(item.text) and not (
        named and CHANGED.search(said)
    ):
        return False
    if ask.subject == "self" and not _FIRST_PERSON.search(said):
        return False  # "Rui's birthday is on 3 May" says nothing of the person's
    cl = claims_of(other.text)
    mine = [c for c in cl if mem.same(ask.subject, c.subject)]
    if cl and not mine:
        return False
    return not any(_single(c.attribute) and c.attribute != ask.attribute for c in mine)


@dataclass(frozen=True)
class MemoryAnswer:
    """An answer said from one memory, without the model."""

    text: str
    item: MemoryItem


def answer(
    ask: Asked,
    mem: Memories,
    recent: Sequence[MemoryItem] = (),
    note_of: Callable[[MemoryItem], str | None] | None = None,
) -> MemoryAnswer | None:
    """The answer to ``ask`` from the memory that holds its value (of a single-valued
    attribute held with several values, the latest), or None when none does, several
    relatives or values could be meant, or a newer memory in ``recent`` (the question's best
    hits; ``note_of`` gives the whole message a memory was read from) may have changed it
    without being read as this slot."""
    found: dict[str, MemoryItem] = {}
    for item_id, cl in mem.claims.items():
        for c in cl:
            v = mem.value(ask, c)
            if v:
                item = mem.items[item_id]
                old = found.get(v)
                if old is None or item.created_at > old.created_at:
                    found[v] = item
    if not found:
        return None
    if len(found) > 1:
        # Of a single-valued attribute the latest memory holds the current value (a change
        # the reconciler did not pair with the old one); several relatives of one kind, or
        # several values of a multi-valued attribute, are no one answer.
        if not _single(ask.attribute) or (ask.attribute == "name" and ask.subject != "self"):
            return None
        times = sorted((i.created_at for i in found.values()), reverse=True)
        if times[0] == times[1]:
            return None
    value, item = max(found.items(), key=lambda vi: vi[1].created_at)
    for other in recent:
        if other.id == item.id or other.created_at <= item.created_at:
            continue
        if other.key == READ_KEY or other.status != "active":
            continue
        said = (note_of(other) if note_of else None) or other.text
        if other.type == "episode" and completion.note_text(other.text) is None:
            continue  # a question asked, no fact
        if _may_change(ask, mem, other, item, said):
            return None  # a later note, not read as this slot, may still change it
    if ask.attribute == "name" and ask.subject != "self":
        who = ask.phrase or f"my {ask.subject.partition(':')[0]}"
        said = completion.second_person(who)
        return MemoryAnswer(f"{said} is called {_as_written(value, item.text)}.", item)
    if ask.attribute == "surname":
        who = "your" if ask.subject == "self" else completion.second_person(ask.phrase) + "'s"
        said = f"{who} surname is {_as_written(value, item.text)}."
        return MemoryAnswer(said[0].upper() + said[1:], item)
    note = completion.note_text(item.text)
    return MemoryAnswer(note, item) if note else None


def _as_written(value: str, text: str) -> str:
    """``value`` (folded) as the memory writes it ("ines" -> "Ines")."""
    m = re.search(rf"(?<!\w){re.escape(value)}(?!\w)", text, re.I)
    return m.group(0) if m else value.title()
