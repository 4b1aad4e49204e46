"""The attribute model: which subject and attribute a statement is about ("I live in Porto" ->
self / residence = porto), so that a correction finds the memory it contradicts.

Design rules:
- A claim is (subject, attribute, value), read from one normalised clause by patterns. The
  subject is ``self`` (I, we), a relation with an optional name (``sister:ana``), or a name
  (``tiago``). The key (``subject:attribute[:object]``) is what the reader stores on a memory.
- Single-valued attributes (residence, occupation, employer, diet, name, age, ...) conflict
  whenever the value changes; multi-valued ones (allergies, languages, likes) carry their
  object in the key and conflict only about the same object ("not allergic to cats").
- Patterns only: no model. What they do not know yields no claim, and the caller falls back to
  embedding similarity with a margin (``memory/targets.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from memos_desktop.memory.lexicon import (
    DEMONYMS,
    DIETS,
    GROUPS,
    JOB_SUFFIXES,
    JOBS,
    MARITAL,
    NOT_JOBS,
    NUMBER_WORDS,
    OCCASIONS,
    RELATIONS,
    SYNONYMS,
)
from memos_desktop.memory.slot_patterns import NAME as _NAME
from memos_desktop.memory.slot_patterns import PATTERNS as _P
from memos_desktop.memory.slot_patterns import REL_WORDS as _REL_WORDS

# attribute -> single-valued? Multi-valued attributes put their object in the key.
SINGLE = frozenset(
    """
    residence occupation employer diet name nickname age birthday birthplace origin phone email
    address marital car children spouse description location schedule study worklocation
    commute
    """.split()
)
# Attributes that change with another: a new job (occupation) makes the old job's employer
# stale too, but a new employer does not change what the person does ("I now work at the
# health centre" after "I work as a nurse at the hospital": still a nurse).
CHANGES_WITH = {"occupation": frozenset({"occupation", "employer"})}
# Multi-valued attributes that speak about the same objects: "I barely drink tea now" changes
# "I prefer tea over coffee".
SAME_OBJECTS = {"food": "taste", "preference": "taste"}

# --- claims --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    subject: str  # "self", "sister", "sister:ana", "ana"
    attribute: str
    value: str = ""
    obj: str = ""  # multi-valued attributes: the object (allergen, language, liked thing)
    negated: bool = False
    weak: bool = False  # a generic pattern ("my flat is ..."): needs similarity to act on

    @property
    def key(self) -> str:
        k = f"{self.subject}:{self.attribute}"
        return f"{k}:{self.obj}" if self.obj else k

    @property
    def person(self) -> str:
        """The name in the subject, if any."""
        if ":" in self.subject:
            return self.subject.split(":", 1)[1]
        return "" if self.subject == "self" or self.subject in RELATIONS.values() else self.subject


def parse_key(key: str) -> Claim | None:
    """A claim from a stored key (``sister:ana:occupation``) made by the reader."""
    parts = key.split(":")
    if len(parts) < 2:
        return None
    if parts[0] in RELATIONS.values() and len(parts) >= 3 and parts[1] not in _ATTRS:
        subject, rest = f"{parts[0]}:{parts[1]}", parts[2:]
    else:
        subject, rest = parts[0], parts[1:]
    if not rest or not (rest[0] in _ATTRS or rest[0].startswith(("favourite-", "device-"))):
        return None
    return Claim(subject, rest[0], obj=":".join(rest[1:]))


def same_subject(a: str, b: str) -> bool:
    """Exactly the same subject, or one names the relation only ("sister" vs "sister:ana"), or
    one names the person only ("ana" vs "sister:ana")."""
    if a == b:
        return True
    ra, _, na = a.partition(":")
    rb, _, nb = b.partition(":")
    a_rel, b_rel = ra in RELATIONS.values(), rb in RELATIONS.values()
    if a_rel and b_rel:
        if (
            ra != rb
            and not (ra in GROUPS and rb in GROUPS[ra])
            and not (rb in GROUPS and ra in GROUPS[rb])
        ):
            return False
        return not na or not nb or na == nb
    if a_rel != b_rel:  # a relation and a bare name
        rel_name = na if a_rel else nb
        bare = b if a_rel else a
        return bare not in ("self",) and rel_name == bare
    return False


def same_person(a: str, b: str) -> bool:
    """The same named person, one side by name only ("leo" and "son:leo"): a name settles who
    it is, unlike a bare relation ("sister" could be either sister)."""
    if a == b:
        return True
    na, nb = a.partition(":")[2], b.partition(":")[2]
    if ":" in a and ":" not in b:
        return b not in RELATIONS.values() and b != "self" and na == b
    if ":" in b and ":" not in a:
        return a not in RELATIONS.values() and a != "self" and nb == a
    return False


def conflicts(new: Claim, old: Claim) -> bool:
    """Does ``new`` contradict (or restate) ``old``: same subject and attribute, and for a
    multi-valued attribute the same object?"""
    if not same_subject(new.subject, old.subject):
        return False
    if new.attribute == "replaced":  # "I replaced my Fairphone with ...": what names it
        return bool(new.obj) and mentions(old.value or old.obj, new.obj)
    if new.attribute != old.attribute:
        a, b = SAME_OBJECTS.get(new.attribute), SAME_OBJECTS.get(old.attribute)
        return a is not None and a == b and bool(new.obj) and new.obj == old.obj
    if single(new.attribute):
        # "I don't live in Paris" says nothing about "I live in Lyon"; "I sold the Yaris"
        # is about "a grey Toyota Yaris"
        if new.negated and old.value and new.value and new.value != old.value:
            return mentions(old.value, new.value)
        return True
    return bool(new.obj) and new.obj == old.obj


def mentions(value: str, what: str) -> bool:
    """Every word of ``what`` (an object key or a value) is a word of ``value``."""
    have = set(re.findall(r"\w+", value.casefold()))
    want = set(re.findall(r"[^\W_]+", what.casefold()))
    return bool(want) and want <= have


def single(attribute: str) -> bool:
    return attribute in SINGLE or attribute.startswith(("favourite-", "device-"))


def replaced_with(attribute: str) -> frozenset[str]:
    """The attributes of an old memory that a change of ``attribute`` makes stale."""
    return CHANGES_WITH.get(attribute, frozenset({attribute}))


# --- patterns ------------------------------------------------------------------------------

_SUBJECT = re.compile(
    rf"^(?:(?P<self>I|We)\b|(?:My|Our) (?:(?:best|older|younger|little|big|eldest|youngest|"
    rf"oldest|twin|new) )?(?P<rel>{_REL_WORDS})(?P<poss>'s)?(?: (?P<relname>{_NAME}))?\b|"
    # "younger brother Michał studies ...", typed without "my": a relative with their name
    rf"(?i:best|older|younger|little|big|eldest|youngest|oldest|twin) (?P<arel>{_REL_WORDS}) "
    rf"(?P<arelname>{_NAME})\b|"
    rf"(?P<name>{_NAME})(?=(?:'s)? (?:is|was|works|lives|has|moved|relocated|became|turned|got|"
    rf"quit|left|started|finished|graduated|retired|does|speaks|likes|loves|hates|studies|"
    rf"teaches|plays|drives|bought|sold)\b))",
)
_OWN = re.compile(
    r"^(My|Our)\s+(?=(?:new |full |first |real )?(?:name|birthday|email|e-mail|phone|number|"
    r"mobile|address|job|favou?rite|car|age|diet|allergy|allergies|nickname|laptop|computer|"
    r"tablet|watch|camera|bike|bicycle)\b)",
    re.I,
)
_STOP_NAMES = frozenset(
    "I It This That There The He She They We You My Our Your His Her Their What Where When "
    "Who Why How Which Please Also Actually Yesterday Today Tomorrow Last Next Then".split()
)
_ART = re.compile(r"^(?:the|a|an|my|our|his|her|their|some)\s+", re.I)
_TAIL = re.compile(
    r"\s+(?:now|too|as well|again|anymore|any more|after all|actually|these days|"
    r"nowadays|at the moment|very much|a lot|so much|really)$",
    re.I,
)
_CUT = re.compile(
    r"\s+(?:in|on|at|with|when|because|but|than|since|for|from|every|each|and|or|so|"
    r"who|which|that|last|next|this|yesterday|today|tomorrow|ago)\b.*$",
    re.I,
)


def clean_value(v: str, *, cut: bool = False) -> str:
    v = v.strip(" ,.;:!")
    for _ in range(3):
        v = _TAIL.sub("", v)
    if cut:
        v = _CUT.sub("", v)
    v = _ART.sub("", v)
    return v.strip(" ,.;:!").casefold()


def obj_key(v: str) -> str:
    """The object part of a key: a few content words, singular, synonyms folded."""
    words = [w for w in re.findall(r"[\w-]+", clean_value(v, cut=True)) if w not in _ART_WORDS]
    words = [SYNONYMS.get(w, w) for w in words[:3]]
    if words and words[0] == "to" and len(words) > 1:
        words = words[1:]
    words = [w for w in words if w not in _ADVERBS] or words
    last = words[-1] if words else ""
    if len(last) > 3 and last.endswith("s") and not last.endswith(("ss", "is", "us")):
        words[-1] = words[-1][:-1]
    return "-".join(words)


_ART_WORDS = frozenset("the a an my our his her their some".split())
_ADVERBS = frozenset("fluently well little bit of some really very much basic".split())


def _num(v: str) -> str:
    v = v.casefold().strip()
    return str(NUMBER_WORDS[v]) if v in NUMBER_WORDS else v


def is_job(phrase: str) -> bool:
    words = re.findall(r"[a-z-]+", phrase.casefold())
    if not words:
        return False
    head = words[-1]
    if head in NOT_JOBS or any(w in NOT_JOBS for w in words[:1]):
        return False
    return head in JOBS or " ".join(words[-2:]) in JOBS or head.endswith(JOB_SUFFIXES)


def subject_of(clause: str) -> tuple[str, str, str] | None:
    """(subject, the subject phrase as written, the rest of the clause) or None."""
    own = _OWN.match(clause)
    if own is not None:  # "My name is Dana": an attribute of the person
        return "self", own.group(1), "'s " + clause[own.end() :].strip()
    m = _SUBJECT.match(clause)
    if m is None:
        return None
    if m.group("self"):
        return "self", m.group(0), clause[m.end() :].strip()
    if m.group("rel"):
        rel = RELATIONS[m.group("rel").casefold()]
        name = m.group("relname")
        rest = clause[m.end() :].strip()
        if m.group("poss"):  # "my sister's name is Ana": the relation, possessive kept
            return rel, m.group(0)[: -len("'s")] if not name else m.group(0), "'s " + rest
        if name and name in _STOP_NAMES:
            return rel, m.group(0)[: -len(name)].strip(), f"{name} {rest}".strip()
        return (f"{rel}:{name.casefold()}" if name else rel), m.group(0), rest
    if m.group("arel") and m.group("arelname").split()[0] not in _STOP_NAMES:
        rel, name = RELATIONS[m.group("arel").casefold()], m.group("arelname")
        return f"{rel}:{name.casefold()}", m.group(0), clause[m.end() :].strip()
    name = m.group("name")
    if name is None or name.split()[0] in _STOP_NAMES:
        return None
    return name.casefold(), name, clause[m.end() :].strip()


_ATTRS = SINGLE | frozenset(
    "allergy intolerance food preference favourite language learning hobby pet former when "
    "replaced device".split()
)


_LEADING_TIME = re.compile(
    r"^(?:(?:last|next|this) \w+|yesterday|today|tonight|tomorrow|recently|lately|now|"
    r"these days|nowadays|"
    r"(?:in|on|since) [A-Z]?\w+(?: \d+)?|\w+ (?:days|weeks|months|years) ago)[\s,]+(?=[A-Z])"
)


_MOVED = re.compile(
    rf"^(?:My|Our|The) (?P<o>[\w -]*?(?:{'|'.join(sorted(OCCASIONS))}|[\w-]+ing)s?) (?:was |"
    r"has been |got |is |'s |have been )?(?:moved|"
    r"rescheduled|postponed|pushed back|pushed|changed|shifted) to (?P<v>.+)",
    re.I,
)


_ADVERB = re.compile(
    r"\b(?:also|actually|now|still|really|just|recently|currently|finally|officially) ", re.I
)
_KIDS = re.compile(r"\b(?P<v>no|one|two|three|four|five|six|seven|\d+) (?:kids|children)\b", re.I)


def claims(clause: str) -> tuple[Claim, ...]:
    """The claims of one normalised clause ("I live in Porto" -> self/residence=porto)."""
    clause = _LEADING_TIME.sub("", clause)
    moved = _MOVED.match(clause)
    if moved is not None:  # "My dentist appointment moved to Monday"
        what = " ".join(w for w in moved.group("o").split() if w.casefold() not in OCCASIONS)
        return (Claim("self", "when", clean_value(moved.group("v")), obj=obj_key(what)),)
    head = subject_of(clause)
    if head is None:
        return ()
    subject, _, rest = head
    rest = _ADVERB.sub("", rest).strip()
    first, sep, second = rest.partition(" and ")
    if sep and not second.startswith("I "):
        # "I sold the Yaris and bought a Clio": two verbs of one subject, when the second
        # half is a claim of its own ("I like fish and chips" is one object)
        more = _match(subject, second)
        if more and more[0].attribute != "description":
            return tuple(_match(subject, first) + more)
    out = _match(subject, rest)
    if not out and subject == "self":
        kids = _KIDS.search(rest)
        if kids:
            out.append(Claim(subject, "children", _num(kids.group("v"))))
    if len(out) == 1 and out[0].attribute == "occupation" and " at " in rest:
        at = clean_value(rest.split(" at ", 1)[1], cut=True)
        if re.fullmatch(r"\d{1,3}", at):
            # "My dad is an electrician, still working at 63": an age, not a workplace
            out.append(Claim(subject, "age", at))
        elif at:
            out.append(Claim(subject, "employer", at))
    return tuple(out)


def _match(subject: str, rest: str) -> list[Claim]:
    out: list[Claim] = []
    for kind, rx in _P:
        m = rx.match(rest)
        if m is None:
            continue
        claim = _claim(kind, subject, m)
        if claim is None:
            continue
        out.extend(claim)
        if kind not in ("occupation_as", "employer"):
            break
        if kind == "employer":
            break
    return out


# A name as written: one or two capitalised words ("Agnieszka", "Ines Costa").
_A_NAME = re.compile(r"(?-i:[A-Z][a-z\u00c0-\u024f'-]+)(?: (?-i:[A-Z][a-z\u00c0-\u024f'-]+))?")


def _claim(kind: str, subject: str, m: re.Match[str]) -> list[Claim] | None:
    v = m.group("v") if "v" in m.re.groupindex else ""
    rel = subject.split(":", 1)[0]
    if kind == "former":
        return [Claim(subject, "former", obj=obj_key(v))]
    if kind == "residence":
        return [Claim(subject, "residence", clean_value(v, cut=True))]
    if kind == "residence_neg":
        return [Claim(subject, "residence", clean_value(v, cut=True), negated=True)]
    if kind == "origin":
        return [Claim(subject, "origin", clean_value(v, cut=True))]
    if kind == "born":
        if re.match(r"(?:last|this|yesterday|today|\w+ (?:days|weeks) ago)\b", v, re.I):
            return None  # a birth just now: an event, not an attribute
        what = clean_value(v)
        attr = "birthday" if re.search(r"\d", what) else "birthplace"
        return [Claim(subject, attr, what)]
    if kind == "name":
        return [Claim(subject, "name", v.casefold())]
    if kind == "selfname":
        if subject != "self":
            return None
        low = v.casefold()
        if low in DEMONYMS:
            return [Claim(subject, "origin", low)]
        if low in JOBS or low in DIETS or low in MARITAL:
            return None
        return [Claim(subject, "name", low)]
    if kind == "nickname":
        return [Claim(subject, "nickname", v.casefold())]
    if kind == "relname":
        r = RELATIONS[m.group("rel").casefold()]
        name = m.group("v") if "v" in m.re.groupindex and m.group("v") else subject
        return [
            Claim(f"{r}:{name.casefold()}" if subject != "self" else r, "name", name.casefold())
        ]
    if kind == "spouse":
        return [Claim(subject, "marital", "married"), Claim(subject, "spouse", v.casefold())]
    if kind == "marital":
        return [Claim(subject, "marital", v.casefold())]
    if kind in ("allergy", "allergy_neg"):
        return [Claim(subject, "allergy", obj=obj_key(v), negated=kind.endswith("neg"))]
    if kind == "intolerance":
        return [Claim(subject, "intolerance", obj=obj_key(v))]
    if kind == "diet":
        return [Claim(subject, "diet", DIETS[v.casefold()])]
    if kind == "diet_neg":
        return [Claim(subject, "diet", DIETS[v.casefold()], negated=True)]
    if kind == "diet_eat":
        return [Claim(subject, "diet", f"eats {v.casefold()}")]
    if kind in ("food", "food_neg"):
        return [Claim(subject, "food", obj=obj_key(v), negated=kind == "food_neg")]
    if kind == "age":
        return [Claim(subject, "age", _num(v))]
    if kind in ("birthday", "phone", "email", "address"):
        return [Claim(subject, kind, clean_value(v))]
    if kind == "occupation_as":
        return [Claim(subject, "occupation", clean_value(v, cut=True))]
    if kind == "occupation_be":
        val = clean_value(v, cut=True)
        if val in ("retired", "unemployed", "self-employed") or is_job(val):
            return [Claim(subject, "occupation", val)]
        return None
    if kind == "employer":
        val = clean_value(v, cut=True)
        return [Claim(subject, "employer", val)] if val else None
    if kind == "employer_neg":
        val = clean_value(v, cut=True)
        if not val or val.split()[0].endswith("ing") or val in ("job", "my job"):
            return None  # "I quit smoking"
        return [Claim(subject, "employer", val, negated=True)]
    if kind == "worklocation":
        return [Claim(subject, "worklocation", clean_value(v))]
    if kind == "commute":
        mode = {
            "cycle": "bike",
            "cycles": "bike",
            "bikes": "bike",
            "walks": "walk",
            "drives": "car",
            "drive": "car",
            "ride": "bike",
        }.get(v.casefold(), v.casefold())
        return [Claim(subject, "commute", mode)]
    if kind == "study":
        return [Claim(subject, "study", clean_value(v, cut=True))]
    if kind == "children":
        return [Claim(subject, "children", _num(v))]
    if kind == "pet":
        pet = RELATIONS.get(m.group("v").casefold(), m.group("v").casefold())
        out = [Claim(subject, "pet", obj=pet)]
        if m.group("n"):
            out.append(Claim(f"{pet}:{m.group('n').casefold()}", "name", m.group("n").casefold()))
        return out
    if kind == "replaced":
        return [Claim(subject, "replaced", clean_value(v, cut=True), obj=obj_key(m.group("o")))]
    if kind == "device":
        return [Claim(subject, f"device-{m.group('o').casefold()}", clean_value(v, cut=True))]
    if kind == "when":
        what = " ".join(w for w in m.group("o").split() if w.casefold() not in OCCASIONS)
        return [Claim(subject, "when", clean_value(v), obj=obj_key(what or m.group("o")))]
    if kind == "prefer":
        out = [Claim(subject, "preference", obj=obj_key(v))]
        if m.group("o"):
            out.append(Claim(subject, "preference", obj=obj_key(m.group("o")), negated=True))
        return out if all(c.obj for c in out) else None
    if kind == "car_neg":
        return [Claim(subject, "car", clean_value(v), negated=True)]
    if kind == "car":
        return [Claim("self" if subject == "self" else subject, "car", clean_value(v, cut=True))]
    if kind == "language":
        langs = re.split(r",\s*|\s+and\s+", clean_value(v))
        return [
            Claim(subject, "language", obj=obj_key(x.replace("a bit of", "")))
            for x in langs
            if x.strip()
        ]
    if kind in ("learning", "learning_neg"):
        return [Claim(subject, "learning", obj=obj_key(v), negated=kind == "learning_neg")]
    if kind == "hobby":
        return [Claim(subject, "hobby", (m.group("when") or "").strip(), obj=obj_key(v))]
    if kind == "favourite":
        what = SYNONYMS.get(m.group("n").strip().casefold(), m.group("n").strip().casefold())
        return [Claim(subject, f"favourite-{what.replace(' ', '-')}", clean_value(v))]
    if kind in ("like", "like_neg"):
        o = obj_key(v)
        return [Claim(subject, "preference", obj=o, negated=kind == "like_neg")] if o else None
    if kind == "car_be":
        if rel != "car":
            return None
        return [Claim("self", "car", clean_value(v))]
    if kind == "location":
        if subject == "self" or rel in RELATIONS.values():
            return None
        return [Claim(subject, "location", clean_value(v), weak=True)]
    if kind == "description":
        if subject == "self":
            return None
        said = v.strip().rstrip(".!")
        if rel in RELATIONS.values() and ":" not in subject and _A_NAME.fullmatch(said):
            return [Claim(subject, "name", said.split()[0].casefold())]  # "My wife is Agnieszka"
        if clean_value(v) in DEMONYMS:
            return [Claim(subject, "origin", clean_value(v))]
        return [Claim(subject, "description", clean_value(v), weak=True)]
    return None


def with_subject(claim: Claim, subject: str) -> Claim:
    return replace(claim, subject=subject)


# The attributes that make a statement a preference rather than a fact.
PREFERENCE_ATTRS = frozenset({"diet", "food", "preference"})


def is_preference(c: Claim) -> bool:
    return c.attribute in PREFERENCE_ATTRS or c.attribute.startswith("favourite-")
