"""What kind of answer a question asks for, by how it asks ("How old is my dad?" a number,
"When ...?" a time, "What colour ...?" a colour, "Where ...?" and "What's ... called?" a
name), and whether a text holds one beyond the question's own words. Used by the check of a
base model's answers (``completion.supported``: "She's going to be a sheep." does not say
when) and by the note told as the person said it (``note_answers.quoted_answer``). Patterns,
English only."""

from __future__ import annotations

import re

from memos_desktop.memory.lexicon import NUMBER_WORDS, RELATIONS
from memos_desktop.memory.reader import FUNCTION_WORDS

NUMBER_ASKED = re.compile(
    r"^how (?:old|many|much|long|far|tall|often)\b|\bage\b|"
    r"^what(?:'s| is) (?:my|our|the) [\w ]*number\b",
    re.I,
)
# Of those, the ones only a number answers ("How long should your answers be?" -> "Short.")
COUNT_ASKED = re.compile(r"^how (?:old|many)\b|\bage\b", re.I)
TIME_ASKED = re.compile(
    r"^(?:when|what time|(?:what|which) (?:day|date|month|year|time)s?)\b(?! ?(?:format|zone)s?\b)|"
    r"^at what time\b",
    re.I,
)
# ("What time format do I want?" asks for no time)
CLOCK_ASKED = re.compile(r"^(?:what|at what) time\b(?! ?(?:format|zone)s?\b)", re.I)
_CLOCK = re.compile(
    r"\b\d{1,2}[:.]\d{2}\b|\b\d{1,2}\s*(?:am|pm|a\.m\.|p\.m\.|o'clock|h)\b|"
    r"\b(?:at|by|around|about|until|till|from|before|after) \d{1,2}\b(?![./]\d)"
    r"(?!\s*(?:st|nd|rd|th)\b)"
    r"(?!\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))|"
    r"\b(?:half|quarter) (?:past|to)\b",
    re.I,
)
_DAY_TIMES = frozenset("morning evening afternoon night noon midnight lunchtime".split())
PLACE_ASKED = re.compile(r"^where\b|^(?:what|which) (?:city|town|country|place|part)\b", re.I)
# Asked for by what it is called ("What's my cat's name?", "What's Kuba's surname?"), not
# who someone is ("Who is Kuba?" -> "Your best friend."); a name either way.
CALLED_ASKED = re.compile(r"\b(?:name|named|called)\s*\??$|\b(?:sur)?name\b", re.I)
NAME_ASKED = re.compile(rf"{CALLED_ASKED.pattern}|^who\b", re.I)
COLOUR_ASKED = re.compile(r"\bcolou?rs?\b", re.I)
# The words that only say what kind of answer is wanted: a note need not repeat them ("My
# dad is still working at 63" says how old he is).
KIND_WORDS = frozenset(
    """old age many much long far tall often time day date month year city town country place
    part colour color number""".split()
)
# Words that carry no topic of their own: "When did I get married?" and "We got married";
# "Where did I go to university?" and "I went to AGH".
LIGHT_WORDS = frozenset(
    """get got gets getting go goes going went gone besides except apart other else cant dont
    doesnt didnt wont isnt any anything anyone anybody""".split()
)
TIME_WORDS = frozenset(
    """monday tuesday wednesday thursday friday saturday sunday weekend weekday morning evening
    afternoon night noon midnight today tomorrow yesterday ago daily weekly monthly yearly
    spring summer autumn winter christmas easter january february march april may june july
    august september october november december""".split()
)
# An amount said without digits: "twice a week", "half an hour", "a couple of years" ("his
# final year" is none).
AMOUNT_WORDS = frozenset("once twice thrice half quarter few couple several dozen".split())
COLOURS = frozenset(
    """red orange yellow green blue purple violet pink brown black white grey gray silver gold
    golden beige navy teal turquoise maroon ginger cream tan khaki ivory lilac lavender
    magenta cyan burgundy crimson scarlet auburn blond blonde chestnut bronze copper
    multicoloured multicolored striped spotted tabby""".split()
)
_AMOUNTS = frozenset(NUMBER_WORDS) | AMOUNT_WORDS | TIME_WORDS
_DIGIT = re.compile(r"\d")
_WORD = re.compile(r"[\w'-]+")
_ORDINARY_FIRST = frozenset(
    """younger older little big best new old last next every our my his her their its we
    also still always never usually sometimes""".split()
)


def _words(text: str) -> set[str]:
    """The words of a text, casefolded, and the plural's singular of each ("Tuesdays")."""
    out = {re.sub(r"'s$", "", w.casefold()) for w in _WORD.findall(text.replace("\u2019", "'"))}
    return out | {w[:-1] for w in out if w.endswith("s") and len(w) > 3}


def names(text: str) -> set[str]:
    """Capitalised words of a text, casefolded: not "I", not a sentence's ordinary first word
    ("Younger brother Michal" names Michal)."""
    out: set[str] = set()
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        words = _WORD.findall(sentence.replace("\u2019", "'"))
        for i, w in enumerate(words):
            base = re.sub(r"'s$", "", w)
            low = base.casefold()
            if not base[:1].isupper() or base == "I" or low.startswith(("you", "i'")):
                continue
            if i == 0 and (low in FUNCTION_WORDS or low in RELATIONS or not base[1:].islower()):
                continue  # "The car is ...", "Younger ...": a sentence's first word
            if i == 0 and low in _ORDINARY_FIRST:
                continue
            if low in TIME_WORDS or low.removesuffix("s") in TIME_WORDS:
                continue  # "Sunday", "Fridays", "May": a time, not a name
            out.add(low)
    return out


def missing(question: str, answer: str) -> bool:
    """Does ``answer`` leave out the kind of thing ``question`` asks for, where any answer
    must say one: a time or a number to "When ...?" / "How many ...?", a colour to "What
    colour ...?", a name to "What's ... called?" ("Kuba is a sound engineer." to "What's
    Kuba's surname?"). Not for "Where" and "Who", which a description may answer."""
    q = question.strip()
    if TIME_ASKED.search(q) or COUNT_ASKED.search(q) or COLOUR_ASKED.search(q):
        return found(q, answer) is False
    if not CALLED_ASKED.search(q) or PLACE_ASKED.search(q) or not _of_someone(q):
        return False
    # A name typed in lower case still follows "called", "named" or "is" ("Your sister is
    # joanna."); "is a sound engineer" names no one.
    return found(q, answer) is False and not _says_name(answer)


def _of_someone(question: str) -> bool:
    """Is the name asked for a person's or a pet's (the person's own, a relative's, someone
    named), not a thing's ("the name of the street I live on" may be typed in lower case)?"""
    words = _words(question)
    return bool(
        words & RELATIONS.keys()
        or names(question)
        or re.search(r"\bmy (?:\w+ )?name\b", question, re.I)
    )


_SAYS_NAME = re.compile(r"\b(?:called|named|name is|name's|is)\s+([\w'-]+)", re.I)


def _says_name(text: str) -> bool:
    """Does a word that may be a name follow "called", "named" or "is" ("is joanna"; not "is
    a", "is on 18 December", "is going")?"""
    for m in _SAYS_NAME.finditer(text):
        w = m.group(1).casefold()
        if w in FUNCTION_WORDS or w in ("not", "going", "getting") or w[:1].isdigit():
            continue
        if w in TIME_WORDS or w in NUMBER_WORDS:
            continue
        return True
    return False


def found(question: str, text: str) -> bool | None:
    """Does ``text`` hold the kind of thing ``question`` asks for, beyond the question's own
    words? None when the question does not ask for a kind (what it asks is any new word)."""
    q = question.strip()
    asked = _words(q)
    low = _words(text) - asked
    if CLOCK_ASKED.search(q):
        # "What time ...?" is a time of day: "at 8", "6:30", "half past six", "in the
        # evening"; not "on 18 December"
        return bool(_CLOCK.search(text) or low & _DAY_TIMES)
    if TIME_ASKED.search(q):
        return bool(_DIGIT.search(text) or low & TIME_WORDS)
    if NUMBER_ASKED.search(q):
        return bool(_DIGIT.search(text) or low & _AMOUNTS)
    if COLOUR_ASKED.search(q):
        return bool(low & COLOURS)
    if PLACE_ASKED.search(q) or NAME_ASKED.search(q):
        return bool(names(text) - asked)
    return None
