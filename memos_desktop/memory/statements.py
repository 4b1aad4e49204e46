"""The rule reader: what a person says -> typed, normalised statements worth remembering.

Design rules:
- No model: sentences are cut into clauses, each clause is normalised (contractions expanded,
  fillers and tags like "by the way" dropped, "he/she" resolved to the relation named just
  before) and classified by patterns. The text stays the person's own words, in the **first
  person** ("I live in Porto", "My sister Ana is a nurse"), so it is grounded by construction
  and matches how the person asks ("Where do I live?").
- Questions, greetings, thanks, small talk, moods of the moment, one-off requests and
  hypotheticals are never statements; a clause in doubt is left out (the raw exchange is kept
  as an episode anyway).
- A compound sentence yields one statement per clause ("My name is Dana and I live in Porto"
  -> two), so a later correction of one part never touches the other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from memos_desktop.memory import lexicon, slots
from memos_desktop.memory.slots import Claim
from memos_desktop.store.records import MemoryType


@dataclass(frozen=True)
class Statement:
    text: str  # normalised, first person, no final full stop
    type: MemoryType
    claims: tuple[Claim, ...] = ()
    replaces: tuple[str, ...] = ()  # values said to be no longer true ("..., not Porto")

    @property
    def key(self) -> str:
        return self.claims[0].key if self.claims else ""


# --- normalising -----------------------------------------------------------------------------

# titles, and the short words of an address ("ul. Balicka", "Apt. 4")
_ABBREV = re.compile(
    r"\b(Mr|Mrs|Ms|Dr|St|Prof|Jr|Sr|etc|e\.g|i\.e|ul|al|Ave|Rd|Apt|Blvd|approx|vs)\.", re.I
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+|;\s*|\s+-\s+")
_SUBJ = (
    r"(?:I|i|I'm|i'm|im|I've|i've|I'd|I'll|my|My|we|We|we're|We're|our|Our|he|He|she|She|"
    r"they|They|he's|she's|they're)"
)
_QSTART = (
    r"(?:is|are|do|does|did|can|could|would|should|will|what|what's|where|when|who|why|how|"
    r"which|any|please|Please|Is|Are|Do|Does|Did|Can|Could|Would|Should|Will|What|What's|"
    r"Where|When|Who|Why|How|Which|Any)"
)
_VERB3 = r"(?:lives|works|is|has|loves|likes|hates|moved|started|teaches|studies|plays|speaks)"
_VERB1 = r"(?:live|work|have|love|like|hate|joined|started|left|moved|play|speak|own)"
# "I'm Bartosz Nowicki, but everyone calls me Bartek": a clause of its own
_ANYONE = r"(?:everyone|everybody|people|nobody|no one)"
_CLAUSE = re.compile(
    rf",\s*(?=(?:and |but |so |also |plus )?(?:{_SUBJ}|{_QSTART}|{_ANYONE})\b)"
    rf"|\s+(?:and|but|so|because|plus|although|though|while)\s+(?=(?:{_SUBJ}|{_QSTART}|"
    rf"{_ANYONE})\b)"
    rf"|\s+and\s+(?={_VERB3}\b|{_VERB1}\b)",
)
_CONTRACTIONS = [
    (r"\bi'm\b|^im\b", "I am"),
    (r"\bi've\b", "I have"),
    (r"\bi'd\b", "I would"),
    (r"\bi'll\b", "I will"),
    (r"\bwe're\b", "we are"),
    (r"\bwe've\b", "we have"),
    (r"\bthey're\b", "they are"),
    (r"\byou're\b", "you are"),
    (r"\b(he|she|it|that|there|what|who|where|how|here)'s\b", r"\1 is"),
    (r"\bcan't\b|\bcannot\b", "cannot"),
    (r"\bwon't\b", "will not"),
    (r"\b(do|does|did|is|are|was|were|have|has|had|would|should|could|must)n't\b", r"\1 not"),
    (r"\bname's\b", "name is"),
    (r"\b(\w+)'s (called|named)\b", r"\1 is \2"),
    (r"\bgonna\b", "going to"),
    (r"\bwanna\b", "want to"),
]
_CONTRACTIONS_RX = [(re.compile(a, re.I), b) for a, b in _CONTRACTIONS]
_LEAD = re.compile(
    r"^(?:oh|ah|well|so|also|and|but|anyway|anyways|btw|by the way|actually|fyi|plus|"
    r"just so you know|for the record|for your information|(?:please )?remember(?: that)?|"
    r"please note(?: that)?|note that|do not forget(?: that)?|i should mention(?: that)?|"
    r"just to let you know|just letting you know|you should know(?: that)?|"
    r"i want you to know(?: that)?|fun fact|ok|okay|yeah|yes|no|um|uh|hmm|great|cool|nice|"
    r"thanks|thank you|hi|hello|hey|morning|good morning|good evening|good afternoon|"
    r"quick update|update|correction|in fact|to be honest|honestly|basically|oh and|"
    r"and also|one more thing|one thing)\b[\s,:!.-]*",
    re.I,
)
_TRAIL = re.compile(
    r"[\s,]+(?:lol|haha+|hehe|by the way|btw|though|thanks|thank you|if that matters|"
    r"just so you know|fyi|:\)|:-\)|:d)$",
    re.I,
)
_NOT_TAIL = re.compile(r",?\s+(?:and )?(?:not|instead of) (?:in |at |a |an )?(?P<v>[A-Z][\w-]*)$")
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf]+")


def _normalise(clause: str) -> tuple[str, tuple[str, ...]]:
    c = _EMOJI.sub("", clause).strip().strip(" ,")
    for rx, to in _CONTRACTIONS_RX:
        c = rx.sub(to, c)
    for _ in range(4):
        new = _LEAD.sub("", c).strip()
        if new == c:
            break
        c = new
    c = c.rstrip(" .!")
    for _ in range(2):
        c = _TRAIL.sub("", c).rstrip(" .!,")
    replaces: tuple[str, ...] = ()
    m = _NOT_TAIL.search(c)
    if m:
        replaces = (m.group("v").casefold(),)
        c = c[: m.start()].rstrip(" ,")
    c = re.sub(r"\bi\b", "I", c)
    c = re.sub(r"\s+", " ", c)
    if c:
        c = c[0].upper() + c[1:]
    return c, replaces


def clauses(text: str) -> list[tuple[str, bool]]:
    """(clause, is the clause asked as a question) in order."""
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    text = _ABBREV.sub(lambda m: m.group(1), text)
    out: list[tuple[str, bool]] = []
    for sentence in _SENTENCE.split(text):
        s = sentence.strip()
        if not s:
            continue
        asked = s.endswith("?")
        if re.match(r"^(?:when|whenever|if|every time|each time)\b", s, re.I):
            out.append((s, asked))  # a condition belongs to its clause
            continue
        parts = [p for p in _CLAUSE.split(s) if p and p.strip()]
        for i, p in enumerate(parts):
            out.append((p.strip(), asked and i == len(parts) - 1))
    return out


# --- classifying -----------------------------------------------------------------------------

_QUESTION = re.compile(
    r"^(?:what|what is|where|when(?! (?:I|you|we)\b)|who|whom|whose|why|how|which|is|are|am|"
    r"was|were|(?:do|does|did)(?! not\b)|can|could|would|should|will|shall|may|might|have|has|"
    r"had|any (?:tips|ideas|"
    r"suggestions|advice|recommendations)|what about|how about|I wonder|I was wondering|"
    r"tell me what|remind me what|do you know|do you remember)\b",
    re.I,
)
_SMALLTALK = frozenset(
    """
    hi hello hey hiya yo morning evening afternoon night good thanks thank you ty cheers ok
    okay k cool nice great awesome perfect alright fine sure yes yeah yep no nope nah lol haha
    hahaha hehe wow bye goodbye later see soon sounds got it never mind nevermind oh ah hmm
    um well really right there so much a lot that helps helped lovely brilliant amazing
    welcome all too again for now interesting true indeed exactly agreed noted understood
    excellent fantastic super ha one
    """.split()
)
_TRANSIENT = re.compile(
    r"^I am (?:so |very |really |a bit |a little |just |kind of |quite |feeling |not |"
    r"pretty |super |too )*(?:tired|exhausted|hungry|thirsty|bored|fine|ok|okay|good|great|"
    r"well|back|here|sorry|excited|confused|curious|lost|sure|ready|done|stressed|worried|"
    r"sad|happy|annoyed|angry|cold|hot|sleepy|down|glad|afraid|kidding|joking|listening|"
    r"wondering|thinking|busy|free|home|awake|up|late|on my way|in a hurry|not sure|"
    r"grumpy|nervous|fed up|sick of|impressed|surprised|serious|the best|right|wrong|"
    r"feeling)\b",
    re.I,
)
_NOT_MEMORY = re.compile(
    r"^(?:I (?:do not|don't) know|I think so|I agree|I see|I guess|I mean|I understand|"
    r"I know|let me|let us|let's|I have a question|I need (?:help|some help|advice)|"
    r"I want to know|I would like to know|I was just|I just wanted|I hope|I wish|"
    r"imagine|suppose|that is|this is|it is|you are|you were|that was|it was|this was|"
    r"I did not (?:ask|mean|say)|I asked|I said|I meant|I am asking|I was asking|"
    r"I would like (?:you to|a|an|some|to know)|I want (?:a|an|some|you to)|I need (?:a|an|"
    r"you to|to know)|can you|could you|would you|will you|I am not sure)\b",
    re.I,
)
_HYPOTHETICAL = re.compile(r"^(?:if|unless|suppose|imagine)\b.*\b(?:would|could|might)\b", re.I)
_IMPERATIVE = re.compile(
    r"^(?:please |pls |kindly )?(?:always|never|do not|don't|stop|avoid|keep|use|call|address|"
    r"reply|"
    r"respond|answer|talk|speak|be|give|write|tell|make|remind|show|list|send|explain|"
    r"translate|summari[sz]e|suggest|recommend|help|find|check|describe|draft|create|plan|"
    r"compose|rewrite|fix|stay|start|include|add|mention|assume|treat|address|refer|format|"
    r"only|from now on|in future|going forward|whenever|when you|every time|each time|"
    r"next time)\b",
    re.I,
)
# "no emojis in your answers pls", "no bullet points please": what the answers are not to have
_NO_IN_ANSWERS = re.compile(
    r"^(?:please |pls )?no (?:more )?(?:[\w-]+ ){0,2}(?:emojis?|exclamation marks?|bullet points|"
    r"jargon|markdown|tables|lists)\b|^(?:please |pls )?no (?:[\w-]+ ){1,3}(?:in|with) your "
    r"(?:answers|replies|responses|messages)\b",
    re.I,
)
_STANDING = re.compile(
    r"\b(?:always|never|from now on|in (?:the )?future|going forward|from today|whenever|"
    r"every time|each time|by default|ever|next time|call me|with me|to me|me like|"
    r"my (?:full )?name|when I ask|when you|unless I|keep (?:your |the |my |all )?(?:answers|"
    r"replies|responses|explanations|messages|it)|(?:answer|reply|respond|write|talk|"
    r"speak) (?:in|to me)|in (?:bullet points|portuguese|english|french|spanish|german|"
    r"italian|short sentences)|use (?:metric|imperial|british|american|celsius|fahrenheit|"
    r"24-hour|the metric|my)|sources|emojis?|exclamation marks?|units|spelling|"
    r"formal|informal)\b",
    re.I,
)
_ONE_OFF = re.compile(r"\b(?:this|that|it|these|those)\b(?! from now on)", re.I)
_TIME = re.compile(
    r"\b(?:yesterday|today|tonight|tomorrow|this (?:morning|afternoon|evening|weekend|week|"
    r"month|year|summer|winter|spring|autumn)|last (?:night|week|weekend|month|year|summer|"
    r"winter|spring|autumn|monday|tuesday|wednesday|thursday|friday|saturday|sunday|time)|"
    r"next (?:week|weekend|month|year|summer|winter|spring|autumn|monday|tuesday|wednesday|"
    r"thursday|friday|saturday|sunday|time)|on (?:monday|tuesday|wednesday|thursday|friday|"
    r"saturday|sunday)|(?:in|on|since) (?:january|february|march|april|may|june|july|august|"
    r"september|october|november|december)|on the \d+|\d+(?:st|nd|rd|th)? of \w+|at \d+ ?(?:am|"
    r"pm)?|in (?:19|20)\d\d|ago|soon|later|earlier|recently|just now)\b",
    re.I,
)
_EVENT_WORDS = re.compile(
    r"\b(?:appointment|interview|exam|test|wedding|party|flight|trip|holiday|vacation|"
    r"surgery|operation|concert|presentation|meeting|match|game|marathon|race|birthday party|"
    r"honeymoon|visit|visiting|flying|travelling|traveling|going to (?!be\b)|getting married|"
    r"went|visited|saw|met|won|lost|finished|passed|failed|broke|bought|sold|spent|had|"
    r"got back|came back|arrived|left for|celebrated|starts?|began|ran|joined|graduated|born)\b",
    re.I,
)
_PREF_WORDS = re.compile(
    r"\b(?:like|likes|love|loves|enjoy|adore|prefer|hate|dislike|fan of|into|favou?rite|"
    r"rather|my thing|cannot stand|not (?:really )?an? .* person|with milk|with no sugar|black)\b",
    re.I,
)
_NAME_IS_REL = re.compile(r"^[A-Z][\w'-]+ (?:is|was) (?:my|our) ", re.I)


HEDGE = re.compile(
    r"\b(?:might|may|maybe|perhaps|probably|thinking (?:about|of)|considering|planning to|"
    r"plan to|hope to|want to|would like to|wish|not sure)\b",
    re.I,
)


def hedged(text: str) -> bool:
    """A statement of what may be, not what is ("I might move to Lisbon")."""
    return bool(HEDGE.search(text))


def _smalltalk(clause: str) -> bool:
    words = re.findall(r"[a-z']+", clause.casefold())
    return not words or all(w in _SMALLTALK for w in words)


def _personal(clause: str) -> bool:
    return bool(
        slots.subject_of(clause)
        or re.search(r"\b(?:my|our|me|mine)\b", clause, re.I)
        or re.search(r"\b(?:I|we|We)\b", clause)
        or _NAME_IS_REL.match(clause)
    )


def classify(clause: str, asked: bool = False) -> MemoryType | None:
    """The memory type of a normalised clause, or None when it is not a memory."""
    if not clause or asked or _QUESTION.match(clause):
        return None
    if _smalltalk(clause) or _TRANSIENT.match(clause) or _NOT_MEMORY.match(clause):
        return None
    if _HYPOTHETICAL.match(clause):
        return None
    if _NO_IN_ANSWERS.match(clause):
        return "instruction"
    if _IMPERATIVE.match(clause):
        if re.match(r"^(?:please )?(?:call me|address me as|stop \w+ing)\b", clause, re.I):
            return "instruction"
        if _STANDING.search(clause) and not (
            _ONE_OFF.search(clause) and not re.search(r"always|never|from now on", clause, re.I)
        ):
            return "instruction"
        if re.match(r"^(?:please )?(?:do not|don't|never|always)\b", clause, re.I):
            return "instruction"
        return None
    if re.match(r"^(?:when|whenever|if) (?:I|you)\b", clause, re.I) and _STANDING.search(clause):
        return "instruction"
    if not _personal(clause):
        return "preference" if re.search(r"\bmy thing\b", clause, re.I) else None
    return None if _ONLY_SUBJECT.match(clause) else _statement_type(clause)


_ONLY_SUBJECT = re.compile(r"^(?:I|We|My \w+)$")


def _statement_type(clause: str) -> MemoryType:
    cl = slots.claims(clause)
    lasting = [c for c in cl if not c.weak]
    if lasting:
        if any(slots.is_preference(c) for c in lasting):
            return "preference"
        if all(c.attribute == "when" and not c.value.startswith("every") for c in lasting):
            return "event"  # a dated occasion; "every Thursday" is a routine, a fact
        return "fact"
    if _PREF_WORDS.search(clause) and not _TIME.search(clause):
        return "preference"
    if _TIME.search(clause) and _EVENT_WORDS.search(clause):
        return "event"
    if re.search(
        r"\b(?:am|are|is) (?:flying|going|visiting|seeing|having|meeting|getting|"
        r"running|travelling|traveling|starting|moving)\b",
        clause,
    ):
        return "event"
    if _TIME.search(clause) and re.search(r"\b(?:am|are|is|was|were) \w+ing\b", clause):
        return "event"
    if re.search(
        r"\b(?:appointment|interview|exam|wedding|flight|surgery|operation|"
        r"concert|presentation)\b",
        clause,
        re.I,
    ):
        return "event"
    return "fact"


# --- reading ---------------------------------------------------------------------------------

_HAVE_A = re.compile(
    rf"^(?:I|We) (?:have|have got|got) (?:a|an|one) (?:(?:little|older|younger|new) )?"
    rf"({'|'.join(sorted(lexicon.RELATIONS, key=len, reverse=True))})\b"
)
_PRONOUN = re.compile(r"^(?:He|She|They|he|she|they)\b")
# A clause of the person's own with its "I" left out, as people write in chat ("switched
# bouldering to Tuesdays", "got an iPhone 15 now", "just started learning Spanish"): a verb
# in the past tense first. Words ending in -ed that are seldom verbs there are not.
_PAST = (
    r"(?:(?!(?:need|speed|indeed|hundred|tired|bored|red|bed|shed|seed|feed|wed|fed|bred|led|"
    r"sled|weed|deed|freed|used|supposed|interested|excited|married|scared|worried|confused|"
    r"stressed|surprised|pleased|amazed|annoyed|obsessed)\b)[a-z]{3,}ed|got|went|sold|bought|"
    r"made|took|left|quit|began|became|found|lost|met|had|did|came|won|broke|ran|wrote|paid|"
    r"spent|built|kept|sent|brought|drove|flew|grew|gave|saw)"
)
_DROPPED_I = re.compile(rf"^(?:(?:just|finally|recently|also|already|then) )?{_PAST}\s+\w", re.I)
# ... and a new thing of theirs told without a verb ("new flat in Bronowice, flat 27")
_NEW_THING = re.compile(r"^(?:a )?new (?=\w+ (?:in|at|on|is|from|for|so|with|,)|\w+$)", re.I)
_CONTINUES = re.compile(rf"^(?:{_VERB3}|{_VERB1})\b", re.I)


def without_i(clause: str) -> bool:
    """Is ``clause`` the person's own with its "I" left out ("switched bouldering to
    Tuesdays", "got an iPhone 15 now"), not small talk ("Got it")?"""
    return bool(_DROPPED_I.match(clause)) and not _smalltalk(clause)


def read(text: str) -> list[Statement]:
    """The statements worth remembering in one user message, in order."""
    out: list[Statement] = []
    last_subject: tuple[str, str] | None = None  # (subject, phrase as written)
    for raw, asked in clauses(text):
        clause, replaces = _normalise(raw)
        if _NO_IN_ANSWERS.match(raw.strip()):
            clause = raw.strip()[0].upper() + raw.strip()[1:]  # its "no" is what is asked
        if not clause:
            continue
        if _PRONOUN.match(clause) and last_subject and last_subject[0] != "self":
            clause = _PRONOUN.sub(last_subject[1], clause, count=1)
        elif _CONTINUES.match(clause) and last_subject:
            clause = f"{last_subject[1]} {clause[0].lower()}{clause[1:]}"
        elif not asked and without_i(clause):
            clause = f"I {clause[0].lower()}{clause[1:]}"
        elif _NEW_THING.match(clause) and not asked:
            clause = _NEW_THING.sub("My new ", clause, count=1)
        head = slots.subject_of(clause)
        have = _HAVE_A.match(clause)
        if have is not None:  # "I have a daughter. She is 11."
            last_subject = (lexicon.RELATIONS[have.group(1).casefold()], f"My {have.group(1)}")
        elif head is not None:
            last_subject = (head[0], head[1])
        kind = classify(clause, asked)
        if kind is None:
            continue
        claims = slots.claims(clause) if kind != "instruction" else _instruction_claims(clause)
        out.append(Statement(canonical(clause, claims), kind, claims, replaces))
    return out


def _instruction_claims(clause: str) -> tuple[Claim, ...]:
    m = re.match(r"^(?:please |just )?(?:call me|address me as) (?P<v>[A-Z][\w' -]+)", clause, re.I)
    return (Claim("self", "nickname", m.group("v").casefold()),) if m else ()


def canonical(clause: str, claims: tuple[Claim, ...]) -> str:
    """The stored text: the clause, except "I am Dana" -> "My name is Dana"."""
    m = re.match(r"^I am (?P<n>[A-Z][\w'-]+)$", clause)
    if m and claims and claims[0].attribute == "name":
        return f"My name is {m.group('n')}"
    return clause


def render(claim: Claim) -> str:
    """A plain first-person sentence for one claim (used when a compound memory is split and
    a part has no clause of its own)."""
    rel, _, name = claim.subject.partition(":")
    if claim.subject == "self":
        who = "I"
    elif rel in lexicon.RELATIONS.values():
        who = f"My {rel} {name.title()}".strip()
    else:
        who = claim.subject.title()
    be = "am" if claim.subject == "self" else "is"
    v = claim.value
    templates = {
        "car": f"{'My' if who == 'I' else who + chr(39) + 's'} car is {_a(v)}",
        "residence": f"{who} {'live' if who == 'I' else 'lives'} in {v.title()}",
        "employer": f"{who} {'work' if who == 'I' else 'works'} at {v}",
        "occupation": f"{who} {be} {_a(v)}",
        "name": f"{'My' if who == 'I' else who + chr(39) + 's'} name is {v.title()}",
        "age": f"{who} {be} {v}",
        "diet": f"{who} {be} {v}",
        "marital": f"{who} {be} {v}",
        "origin": f"{who} {be} from {v.title()}",
    }
    return templates.get(claim.attribute, f"{who} {claim.attribute} {v}".strip())


# Attributes whose current value a change states only as a change ("I moved to Braga").
_STATE = frozenset("residence age car employer occupation diet".split())
_CONTENT = re.compile(r"[a-z0-9]+")


def current_state(text: str) -> str | None:
    """The state a change leaves, as a plain sentence ("I moved to Braga last month" -> "I
    live in Braga"), or None when the text already says it that way or holds no such claim.
    A small model answers "Where do I live?" from "I live in Braga", not from "I moved"."""
    for raw, asked in clauses(text):
        if asked:
            continue
        clause, _ = _normalise(raw)
        have = {str(lexicon.NUMBER_WORDS.get(w, w)) for w in _CONTENT.findall(clause.casefold())}
        for c in slots.claims(clause):
            if c.negated or c.weak or c.attribute not in _STATE or not c.value:
                continue
            said = render(c)
            if not set(_CONTENT.findall(said.casefold())) <= have:
                return said
    return None


def _a(v: str) -> str:
    return (
        v
        if v in ("retired", "unemployed", "self-employed")
        else (f"an {v}" if v[:1] in "aeiou" else f"a {v}")
    )
