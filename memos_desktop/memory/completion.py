"""Prompts for base (completion) models: short, few-shot, extractive answers from memory.

A base model does not follow instructions and knows no turns: given a chat transcript it writes
more transcript (new user turns, the system prompt again, stray turn-marker text). What it does
well is continue a pattern. So it gets one:

    <one line on what follows>
    Notes: <facts> / Question: <q> / Answer: <one line>     (worked examples, one says "I
    Notes: <facts> / Question: <q> / Answer: <one line>      don't know")
    Notes: <the person's memories> / Question: <theirs> / Answer:

and the answer ends at the end of its line, or at anything that starts a new part of the
pattern or a turn (:data:`STOPS`).

Design rules:
- The stable prefix (the line on what follows, the examples, "Notes:" and the core memories)
  is the leading system message, so its KV state is saved and restored like the chat prefix:
  nothing in it depends on the question.
- Memories are written as plain facts about "you", so that copying one is already the right
  answer: "User: I live in Porto" becomes "You live in Porto."; the person's questions and the
  assistant's own words are not facts and are left out.
- Stops are applied as the answer streams, with a holdback, so no part of a stop string is ever
  shown; see ``ChatService``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from memos_desktop.engines.base import CancelToken, ChatEngine, ChatMessage, SamplingParams
from memos_desktop.engines.chat_format import TURN_MARKERS
from memos_desktop.memory import asked_kind
from memos_desktop.memory.lexicon import RELATIONS, others_relation
from memos_desktop.memory.reader import FUNCTION_WORDS, stem
from memos_desktop.memory.statements import current_state

DONT_KNOW = "I don't know."
# Answers are one short line; the budget only bounds a model that runs on.
ANSWER_TOKENS = 64

HEADER = (
    "Short answers to a person's questions, written from the notes kept about them. An answer "
    "is one sentence and uses only the notes; a later note replaces an earlier one. When the "
    f'notes do not say, the answer is "{DONT_KNOW}"'
)

# Worked examples: each has notes that do not answer the question beside the one that does
# (one has none that does: "I don't know"; one has a note replaced by a later one; one is not
# a question but something the person tells, which is acknowledged). Their facts
# are about things a person rarely asks about, so that a question the memory cannot answer is
# less likely to be answered from an example.
EXAMPLES: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (
        ("You work as a baker.", "Your parrot is called Kiwi.", "Your uncle is called Bruno."),
        "What is my parrot called?",
        "Your parrot is called Kiwi.",
    ),
    (
        ("Your favourite fruit is mango.", "You play chess on Fridays."),
        "What is my favourite cheese?",
        DONT_KNOW,
    ),
    (
        ("You are learning to knit.",),
        "My sister is called Ana.",
        "Noted: your sister is called Ana.",
    ),
    (
        (
            "Your bike is a red Peugeot.",
            "Your brother lives in Oslo.",
            "You sold the Peugeot and now ride a blue Trek.",
        ),
        "What bike do I have?",
        "You ride a blue Trek.",
    ),
    (
        ("You are learning to knit.", "Your cousin Lea is a pilot."),
        "What does Lea do?",
        "Lea is a pilot.",
    ),
)

NOTES, QUESTION, ANSWER = "Notes:", "Question:", "Answer:"
# Text that ends an answer: the end of its line, a new part of the pattern, a turn marker.
STOPS: tuple[str, ...] = ("\n", QUESTION, NOTES, ANSWER, *TURN_MARKERS)


def block(notes: Sequence[str]) -> str:
    return "".join(f"- {n}\n" for n in notes)


def prefix_text(core_notes: Sequence[str]) -> str:
    """The stable part: header, examples, then the notes that are always there."""
    parts = [HEADER, ""]
    for notes, question, answer in EXAMPLES:
        parts.append(f"{NOTES}\n{block(notes)}{QUESTION} {question}\n{ANSWER} {answer}\n")
    core = "\n" + block(core_notes).rstrip("\n") if core_notes else ""
    return "\n".join(parts) + f"\n{NOTES}" + core


def question_text(
    notes: Sequence[str], history: Sequence[tuple[str, str]], query: str, *, any_notes: bool
) -> str:
    """The part after the prefix: this question's notes, the last exchanges, the question.
    ``any_notes``: whether the prefix already holds notes (else an empty list is said so)."""
    lines = [f"- {n}" for n in notes]
    for q, a in history:
        lines += [f"{QUESTION} {one_line(q)}", f"{ANSWER} {one_line(a)}"]
    lines += [f"{QUESTION} {one_line(query)}", ANSWER]
    return "\n".join(lines)


def one_line(text: str) -> str:
    return " ".join(text.split())


def sampling(given: SamplingParams | None) -> SamplingParams:
    """Greedy, short, with the stops; a caller's own settings are kept but always get the
    stops (no turn marker or new question is ever part of an answer)."""
    if given is None:
        # Greedy, with no repetition penalty: it would penalise the very words of the notes an
        # answer copies. Repetition is bounded by the one-line stop, the budget and the guard
        # in ChatService (a sentence said twice ends the answer).
        return SamplingParams.greedy(max_tokens=ANSWER_TOKENS, stop=STOPS)
    return with_stops(given, STOPS)


def with_stops(s: SamplingParams, stops: Sequence[str]) -> SamplingParams:
    return replace(s, stop=tuple(dict.fromkeys((*s.stop, *stops))))


# --- memories as plain facts ----------------------------------------------------------------

_SPEAKER = re.compile(r"^\s*(?:user|me|the user said)\s*:\s*", re.I)
_OTHER_SPEAKER = re.compile(r"^\s*(?:assistant|memos|model|ai|bot)\s*:", re.I)
_QUESTION_START = re.compile(
    r"^(?:what|where|when|who|whom|whose|why|how|which|do|does|did|is|are|am|was|were|can|"
    r"could|would|will|should|shall|have|has|had|may|might)\b",
    re.I,
)
# First person -> second person, whole words; the keys are lower case.
_SWAP = {
    "i'm": "you're",
    "i've": "you've",
    "i'll": "you'll",
    "i'd": "you'd",
    "i": "you",
    "me": "you",
    "my": "your",
    "mine": "yours",
    "myself": "yourself",
    "we": "you",
    "we're": "you're",
    "we've": "you've",
    "we'll": "you'll",
    "us": "you",
    "our": "your",
    "ours": "yours",
    "ourselves": "yourselves",
}
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_VERB_AFTER = {"am": "are", "was": "were"}
_THIRD = re.compile(r"^(?:the user|user)(?:'s\b|\s+(\w+))", re.I)
_IRREGULAR = {"is": "are", "has": "have", "was": "were", "does": "do", "goes": "go"}
_REMEMBER = re.compile(r"^(?:please\s+)?(?:remember|note|don't forget)(?:\s+that)?\s+", re.I)
# A request to the assistant: its "me" is the person, so it is quoted, not turned around.
_REQUEST = re.compile(
    r"^(?:please\b|always\b|never\b|don't\b|do not\b|(?:call|keep|remember|remind|write|use|"
    r"stop|answer|reply|tell|speak|give|avoid|be|make|help|note|address|show|ask)\b)",
    re.I,
)


# Asked without a question mark, as people type ("what do i do for a living", "remind me my
# locker code"): a question word and then not a subject pronoun ("What I love is..." and
# "When I was a kid..." tell), an auxiliary and a person, or a request to recall.
_ASKED = re.compile(
    r"^(?:(?:what|where|who|whose|which|why|how)(?:'?s\b|\s+(?!(?:i|we|you|he|she|they|it|my|"
    r"our|a|an|the)\b)\w)|when(?:'s\b|\s+(?:is|are|was|were|do|does|did|will|can|should)\b)|"
    r"(?:do|does|did|am|is|are|was|were|have|has|can|should) (?:i|my|we|our)\b|"
    r"(?:can you |could you )?(?:please )?(?:remind|tell) me\b|do you (?:know|remember)\b)",
    re.I,
)
_QUESTION_WORDS = 8  # "my mum's name?", "favourite movie?": short, with a question mark


def is_question(text: str) -> bool:
    """Is ``text`` something asked? A question mark after a question word or a short phrase
    ("my mum's name?"), or a question typed without one ("what do i do for a living", "remind
    me what my dad does")."""
    t = text.strip().replace("\u2019", "'")
    if t.endswith("?"):
        last = re.split(r"(?<=[.!?])\s+", t.rstrip("?"))[-1]
        return bool(
            _QUESTION_START.match(t) or _QUESTION_START.match(last) or _ASKED.match(last)
        ) or (len(t.split()) <= _QUESTION_WORDS and not re.match(r"^(?:i|we)\b", t, re.I))
    return bool(_ASKED.match(t)) and t[-1:] not in "!"


# A question asked the long way round: "Do you know my cat's name?", "Remind me what my dad
# does", "Tell me my blood type", "where do i live again?".
_WRAPPER = re.compile(
    r"^(?:(?:hey|so|ok|okay|and|btw|quick question)[,:]?\s+)*(?:(?:can|could|would) you\s+)?"
    r"(?:please\s+)?(?:(?:do|did) you (?:know|remember)|(?:remind|tell) me(?: again)?|"
    r"i (?:forgot|forget|can't remember|cannot remember|don't remember))(?:,?\s+of)?"
    r"\s+",
    re.I,
)
_TRAILING = re.compile(r"(?:,?\s+(?:again|please|pls|now then))+\s*(?=\??$)", re.I)
_EMBEDDED = re.compile(
    r"^(?P<wh>(?:what|where|when|who|which|how)(?: (?:many|much|long|old|often|kind of|sort of|"
    r"time|day|days|\w+))??) (?P<subj>(?:my|our) [\w'-]+(?: [\w'-]+)?|I|we|(?-i:[A-Z])[\w'-]+)"
    r" (?P<verb>is|are|am|was|were|\w+s|do|live|work|drive|play|study|like|have)\b(?P<rest>.*)$",
    re.I,
)


def plain_question(text: str) -> str:
    """A question as it would be asked plainly ("Remind me what my dad does" -> "What does
    my dad do?", "Do you know my cat's name?" -> "What is my cat's name?"), for the rules
    that read questions and the base model's prompt; other text is returned as it is."""
    t = " ".join(text.replace("\u2019", "'").split())
    m = _WRAPPER.match(t)
    if m is None:
        return _TRAILING.sub("", t)
    rest = _TRAILING.sub("", t[m.end() :]).rstrip(" ?.!")
    if not rest:
        return t
    if re.match(r"^(?:my|our|the)\b|^(?-i:[A-Z])[\w-]+'s\b", rest, re.I):
        return f"What is {rest}?"
    about = re.fullmatch(r"about ((?-i:[A-Z])[\w'-]+)", rest, re.I)
    if about:
        return f"Who is {about.group(1)}?"
    e = _EMBEDDED.match(rest)
    if e is None:
        return t
    wh, subj, verb, tail = e.group("wh"), e.group("subj"), e.group("verb"), e.group("rest")
    low = verb.casefold()
    if low in ("is", "are", "am", "was", "were"):
        out = f"{wh} {low} {subj}{tail}"
    elif low == "does" or (low.endswith("s") and not low.endswith("ss")):
        out = f"{wh} does {subj} {_base_verb(low) if low != 'does' else 'do'}{tail}"
    elif subj.casefold() in ("i", "we"):
        out = f"{wh} do {subj} {low}{tail}"
    else:
        return t
    return f"{out[0].upper()}{out[1:]}?"


def _base_verb(word: str) -> str:
    """ "lives" -> "live" (enough for the verb after "the user")."""
    w = word.lower()
    if w in _IRREGULAR:
        return _IRREGULAR[w]
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if re.search(r"(?:ss|sh|ch|x|z|o)es$", w):
        return w[:-2]
    if w.endswith("s") and not w.endswith("ss"):
        return w[:-1]
    return w


def second_person(text: str) -> str:
    """ "I live in Porto" -> "You live in Porto"; "The user lives in Porto" and "lives in Porto"
    -> "You live in Porto"; a request to the assistant ("Call me Mar") is quoted as the
    person's ("You asked me to call you Mar."); other text is kept as it is."""
    told = _REMEMBER.match(text)
    if told:  # "Remember that my pharmacy is X": a fact, told as a request
        text = text[told.end() :]
    elif _REQUEST.match(text):
        return request_note(text)
    first = text.split(maxsplit=1)[0] if text.split() else ""
    if first.islower() and (first in _IRREGULAR or re.fullmatch(r"[a-z]+[^su]s", first)):
        return "You " + _base_verb(first) + text[len(first) :]
    m = _THIRD.match(text)
    if m:
        if m.group(1) is None:  # "The user's ..."
            text = "Your" + text[m.end() :]
        else:
            text = "You " + _base_verb(m.group(1)) + text[m.end() :]
        return text[0].upper() + text[1:]
    s, _ = _swap(text)
    return s[0].upper() + s[1:] if s else s


# A request seen from the assistant's side: its "me" is the person, its "you" the assistant.
_TURN_AROUND = {
    "me": "you",
    "my": "your",
    "mine": "yours",
    "myself": "yourself",
    "i": "you",
    "i'm": "you're",
    "you": "me",
    "your": "my",
    "yours": "mine",
    "yourself": "myself",
}
# Words after which "you" is the subject of what follows.
_BEFORE_SUBJECT = frozenset(
    "when whenever if unless before after while until as because so and that then where".split()
)
_PLEASE = re.compile(r"^(?:please|kindly|just)\s+|[\s,]+please$", re.I)
_DONT = re.compile(r"^(?:don't|do not)\b", re.I)


def request_note(text: str) -> str:
    """A request to the assistant as a note in the assistant's words, which are the answer's
    ("Keep your answers short, please" -> "You asked me to keep my answers short."; "Please
    always use metric units with me" -> "You asked me to always use metric units with
    you.")."""
    t = one_line(text).rstrip(" .!")
    for _ in range(2):
        t = _PLEASE.sub("", t).strip()
    t = _DONT.sub("not", t)
    out: list[str] = []
    pos = 0
    prev = ""
    for w in _WORD.finditer(t):
        word = w.group(0)
        low = word.lower()
        # "when you give me times": that "you" does something, so it is "I".
        rep = "I" if low == "you" and prev in _BEFORE_SUBJECT else _TURN_AROUND.get(low, word)
        out += [t[pos : w.start()], rep]
        pos = w.end()
        prev = low
    out.append(t[pos:])
    said = "".join(out)
    return f"You asked me to {said[:1].lower()}{said[1:]}."


def _swap(text: str, prev: str = "") -> tuple[str, str]:
    """First person -> second person, word by word; ``prev`` is the word before ``text``.
    Returns the text and its last word (lower case)."""
    out: list[str] = []
    pos = 0
    for w in _WORD.finditer(text):
        out.append(text[pos : w.start()])
        word = w.group(0)
        low = word.lower()
        if low in _SWAP and word != "US":
            rep = _SWAP[low]
        elif prev == "i" and low in _VERB_AFTER:
            rep = _VERB_AFTER[low]
        else:
            rep = word
        first = not "".join(out).strip()
        if word[0].isupper() and rep is not word and (not re.match(r"i\b", low) or first):
            rep = rep[0].upper() + rep[1:]  # "I" is upper case anywhere: "you" only first
        out.append(rep)
        prev = low
        pos = w.end()
    out.append(text[pos:])
    return "".join(out), prev


# An answer in the person's voice ("My husband is called Rui."): a base model often answers
# as the speaker of the question. Turned around ("Your husband is called Rui."), unless it
# starts with what the assistant itself would say ("I don't know", "I think", "I'll").
_OWN_VOICE = re.compile(r"^(?:i|i'm|i've|my|we|we're|we've|our)\b", re.I)
_ASSISTANT_SAYS = re.compile(
    r"^i(?:'m)?\s+(?:don't|do not|am not|'m not|not|think|believe|guess|know|remember|"
    r"should|would|will|can|could|cannot|can't|may|might|must|see|understand|hope|suggest|"
    r"recommend)\b|^i'(?:ll|d)\b|^i'm (?:not|sorry|afraid|glad|happy)\b",
    re.I,
)


class Voice:
    """Turns an answer in the person's voice into the assistant's, as it streams. Whole words
    only are released (the decision needs the first two)."""

    def __init__(self) -> None:
        self.pending = ""
        self.turn: bool | None = None  # decided on the first two words
        self.prev = ""
        self.first = True

    def feed(self, piece: str, *, final: bool = False) -> str:
        self.pending += piece
        if self.turn is None:
            words = self.pending.split()
            if len(words) < 3 and not final:
                return ""
            head = " ".join(words[:2])
            self.turn = bool(_OWN_VOICE.match(head)) and not _ASSISTANT_SAYS.match(head)
        cut = len(self.pending) if final else max(self.pending.rfind(" "), 0)
        out, self.pending = self.pending[:cut], self.pending[cut:]
        if self.turn and out:
            out, self.prev = _swap(out, self.prev)
            if self.first:
                out = out[0].upper() + out[1:]
        if out:
            self.first = False
        return out


def note_text(text: str) -> str | None:
    """A memory as a plain fact for the notes, or None when it holds none (a question, the
    assistant's own words)."""
    keep: list[str] = []
    for line in text.replace("\u2019", "'").splitlines():
        if not line.strip() or _OTHER_SPEAKER.match(line):
            continue
        line = _SPEAKER.sub("", line).strip()
        if line and not is_question(line):
            keep.append(line)
    if not keep:
        return None
    note = second_person(one_line(" ".join(keep)))
    if note[-1] not in ".!?":
        note += "."
    state = current_state(" ".join(keep))
    if state is not None:  # "You live in Braga. You moved to Braga last month."
        note = f"{second_person(state)}. {note}"
    return note


_PERSONAL = re.compile(r"\b(?:i|me|my|mine|myself|we|us|our|ours)\b", re.I)


def personal_question(text: str) -> bool:
    """A question about the person ("Where do I live?"): with no note, its answer is not known."""
    return is_question(text) and bool(_PERSONAL.search(text))


# --- answers the notes support ---------------------------------------------------------------


def ask_alone(
    engine: ChatEngine,
    messages: Sequence[ChatMessage],
    note: str,
    asked: str,
    params: SamplingParams,
    cancel: CancelToken,
) -> str | None:
    """The model's answer to ``asked`` given ``note`` alone (the prompt of ``messages`` with
    its last message replaced), if that note supports it."""
    text = question_text([note], [], asked, any_notes=True)
    voice = Voice()
    out = ""
    for chunk in engine.chat_stream((*messages[:-1], ChatMessage("user", text)), params, cancel):
        out += voice.feed(chunk.text, final=chunk.stats is not None)
    out = out.strip()
    if (
        out
        and not cancel.cancelled
        and out != DONT_KNOW
        and supported(out, note, asked)
        and not says_too_little(out, asked)
    ):
        return out
    return None


def given_text(messages: Sequence[ChatMessage]) -> str:
    """What a completion prompt gives to answer from: the core notes at the end of the prefix,
    then this question's notes, the last exchanges and the question. Not the worked examples:
    an answer taken from them ("Your grandfather is called Bruno.") is made up."""
    if not messages:
        return ""
    prefix = messages[0].content.rsplit(f"\n{NOTES}", 1)[-1] if len(messages) > 1 else ""
    return prefix + "\n" + messages[-1].content


_WH = re.compile(r"^(?:what|where|when|who|whom|whose|which|how)\b", re.I)
_TOKEN = re.compile(r"[\w'-]+")
# Said by any answer, whatever the notes hold.
# "She is 4 years old.": the unit of an age is no fact of its own.
_ANSWER_WORDS = FUNCTION_WORDS | {"yes", "you're", "yours", "yourself", "years", "old"}


def supported(answer: str, given: str, question: str) -> bool:
    """Do the notes support ``answer``? Like the reader's grounding test: every number and
    name it adds must be in ``given`` and most of the content words it adds (by stem), so an
    answer the model made up when the notes do not say ("Your shoe size is 10.") is told
    apart from one it copied. What it takes from the question does not count: "Your
    favourite ice cream flavour is strawberry." is judged on "strawberry". A question that
    asks what, where, who... needs an answer that adds something ("You go to the gym." does
    not); a yes/no answer ("Yes, you do.", "You do not drink alcohol.") may only repeat the
    question's words. An answer that gives someone else's relative for the person's own
    ("Agnieszka's brother Krzysztof." to "What's my brother's name?") is not supported, nor
    one without the kind of thing asked for (``asked_kind.missing``: "She's going to be a
    sheep." to "What time do I drop Zosia at kindergarten?")."""
    if others_relation(question, answer):
        return False
    if asked_kind.missing(question, answer):
        return False
    if not _numbers_about(answer, given, question):
        return False
    asked = {stem(w) for w in _TOKEN.findall(question.casefold())}
    have = {stem(w) for w in _TOKEN.findall(given.casefold())}
    new = [
        (i, w)
        for i, w in enumerate(_TOKEN.findall(answer))
        if w.casefold() not in _ANSWER_WORDS and stem(w.casefold()) not in asked
    ]
    yes_no = not _WH.match(question.strip())
    # "Yes, she is married." needs a note that says so, not two halves; so does the question
    # said back as an answer ("Kuba plays drums." to "Does Kuba play drums?")
    # (one side of a choice said back, "You're a morning person.", is judged as before)
    choice = re.search(r"\bor\b", question, re.I) is not None
    affirms = _YES.match(answer) or (not new and not choice and not _NO.search(answer))
    if yes_no and affirms and not _held(question, given):
        return False
    if not new:
        return yes_no
    found = [stem(w.casefold()) in have for _, w in new]
    for (i, w), ok in zip(new, found, strict=True):
        if not ok and (any(c.isdigit() for c in w) or (i > 0 and w[0].isupper())):
            return False  # a number or a name the notes do not hold
    return sum(found) / len(found) >= 0.6


def _numbers_about(answer: str, given: str, question: str) -> bool:
    """To a question asking for a number ("What's my flat number?", "How long is my
    commute?"), is each number of ``answer`` in a note about what is asked: one holding a
    word of the question beside the kind and function words ("112" of "Your parking spot is
    number 112" is no flat number; "63" of "Your dad is still working at 63" is the dad's
    age)? A number the question itself holds, or a question with no such word, passes."""
    if not asked_kind.NUMBER_ASKED.search(question.strip()):
        return True
    # what is asked beside whom (the relatives and names are the subject test's)
    light = _LIGHT | asked_kind.KIND_WORDS | _WH_WORDS | RELATIONS.keys()
    words = [w for i, w in enumerate(_TOKEN.findall(question)) if not (i and w[:1].isupper())]
    topic = _stems(" ".join(w for w in words if w.casefold() not in light and not w.isdigit()))
    if not topic:
        return True
    lines = [ln for ln in given.splitlines() if ln.strip()]
    for num in set(re.findall(r"\d+", answer)) - set(re.findall(r"\d+", question)):
        with_it = [ln for ln in lines if re.search(rf"(?<!\d){num}(?!\d)", ln)]
        if with_it and not any(topic & _stems(ln) for ln in with_it):
            return False
    return True


_WH_WORDS = frozenset("how what which when where who whose why".split())


_YES = re.compile(r"^\s*yes\b", re.I)
_NO = re.compile(r"^\s*no\b|\b(?:not|never|don't|doesn't|didn't|isn't|aren't|wasn't|can't)\b", re.I)
_LIGHT = FUNCTION_WORDS | asked_kind.LIGHT_WORDS | _ANSWER_WORDS


def _stems(text: str) -> set[str]:
    words = _TOKEN.findall(text.casefold().replace("\u2019", "'"))
    return {stem(RELATIONS.get(w, w)) for w in (re.sub(r"'s$", "", w) for w in words)}


def _held(question: str, given: str) -> bool:
    """Does one line of ``given`` (a note, not the question) hold every word of a yes/no
    ``question`` ("is my sister married?": "sister" and "married" in one note)?"""
    want = _stems(" ".join(w for w in _TOKEN.findall(question) if w.casefold() not in _LIGHT))
    if not want:
        return True
    lines = [
        line
        for line in given.splitlines()
        if line.strip() and not line.startswith((QUESTION, ANSWER))
    ]
    return any(want <= _stems(line) for line in lines)


_ANY = re.compile(r"\bany(?:thing|one|body|where)?\b", re.I)


def says_too_little(answer: str, question: str) -> bool:
    """Is ``answer`` a bare yes or no to a question that asks which ("Am I allergic to
    anything?" -> "Yes.", "Do I have any chronic conditions?" -> "Yes, I have a chronic
    condition.")? Nothing in it but the question's words."""
    q = question.strip()
    if _WH.match(q) or not _ANY.search(q):
        return False
    asked = {stem(w) for w in _TOKEN.findall(q.casefold())}
    return all(
        w.casefold() in _ANSWER_WORDS
        or w.casefold() in ("no", "not")
        or stem(w.casefold()) in asked
        for w in _TOKEN.findall(answer)
    )
